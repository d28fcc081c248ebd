"""Weights & Biases mirror of a run record.

The record under results/ is the source of truth; W&B gets the same config, metrics and summary, laid out so
that dashboards (bench/dashboard.py) can rely on it:

- every curve (`train/*`, `test/*`, `val/*`, `throughput/*`, `lr`, `epoch`) has `iteration` as its x-axis
  (`define_metric`), whatever W&B's own step counter says;
- the config holds the nested dicts of config.json and, for filters and groupings, flat copies of the keys a
  comparison is made by (`wandb_config`, FLAT_CONFIG_KEYS): `spec`, `seed`, `dataset_name`, `recipe_name`,
  `recipe_scale`, and `variant_<axis>` for every variant axis (`variant_depth`, `variant_shortcut`, ...). Flat
  and without dots: W&B reads a dot in a config key as nesting (`a.b` is key `a`, field `b`);
- the summary holds the record's summary.json (`test_error`, `macs`, `params`, `train_img_s`, `status`, ...)
  plus `test_error_final` (the error at the end of a finished run) and `test_error_min` (the lowest at any
  evaluation point; intermediate ones may cover only the recipe's `eval_subset`), the same for `val_` with a
  validation split (`wandb_summary`), and W&B's own `test/error.min` and `test/error.last` (`define_metric`
  with summary="min,last" makes the summary of test/error a dict {"min": ..., "last": ...});
- job types: `train` for training runs, `perf` for the runs `bench perf` times, `report` for report uploads;
  tags such as `shortcut:A`, `dataset:cifar10`, `recipe:paper`.

W&B runs online when an API key is configured (WANDB_API_KEY or a netrc entry from `wandb login`), offline
otherwise: offline runs land in RESULTS/wandb/offline-run-*/ and go up with `wandb sync`. If W&B fails to
start or to log, training goes on and only a warning says why.

W&B ids: a run that truly starts anew (no record yet, or --force) gets the run id plus a timestamp, and the
record keeps it from the first summary.json on (`wandb_id`, and in every checkpoint); every later attempt
at the same unfinished run, resumed from a checkpoint or started over because it stopped before its first
one, continues that W&B run. Online, W&B resumes it server-side, and `Tracker.log` leaves out the steps
below the resumed run's `starting_step` (W&B would drop them with a warning). Offline runs cannot resume
(wandb issues #3841, #4624): each attempt writes an offline directory of its own under the same id, and
`wandb sync` of several keeps the last synced one. So each offline attempt's directory is made complete on
its own: `Tracker.replay` logs the rows the record kept from earlier attempts before training goes on.

Reports (`upload_report`) go to one W&B run per suite, recipe and scale, with an id derived from those; a
marker beside the report files (`REPORT_MARKER`) holds a fingerprint of what was uploaded, so that building
an unchanged report again uploads nothing, and a changed one updates the same W&B run.
"""

from __future__ import annotations

import hashlib
import json
import netrc
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import records
from .errors import UserError

PROJECT = os.environ.get("WANDB_PROJECT", "resnet-bench")
MAX_TAG = 64  # W&B refuses a run whose tags are longer (and then logs nothing for it)
MODES = ("online", "offline", "disabled")
JOB_TYPES = ("train", "perf", "report")

# The x-axis of every curve: the training iteration the row was logged at (train.train_loop's `iteration`).
STEP_METRIC = "iteration"
STEPPED_METRICS = ("train/*", "test/*", "val/*", "throughput/*", "lr", "epoch")
# The flat config keys W&B gets beside config.json's nested dicts (see `wandb_config`); `variant_<axis>` too.
FLAT_CONFIG_KEYS = ("spec", "seed", "dataset_name", "recipe_name", "recipe_scale")
VARIANT_PREFIX = "variant_"
# The summary key of a finished run's final test error, written at finish beside summary.json's (`wandb_summary`).
FINAL_TEST_ERROR = "test_error_final"
# Beside a report's files: what `upload_report` last uploaded (fingerprint, mode, W&B run id).
REPORT_MARKER = "wandb-upload.json"


def api_key_configured() -> bool:
    """Whether W&B has an API key here (WANDB_API_KEY, or a netrc entry from `wandb login`); no network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc(os.environ.get("NETRC") or None).hosts  # wandb reads $NETRC too
    except (OSError, netrc.NetrcParseError):
        return False
    return any(host.startswith(_api_hosts()) for host in hosts)


def _api_hosts() -> tuple[str, ...]:
    """The hosts `wandb login` writes a netrc entry for: W&B's API, the CoreWeave Forge address of it that
    wandb 0.31 logs in to by default, and WANDB_BASE_URL's host when another server is set."""
    configured = urlsplit(os.environ.get("WANDB_BASE_URL", "")).hostname
    return ("api.wandb.ai", "api.forge.coreweave.com") + ((configured,) if configured else ())


def default_mode() -> str:
    return "online" if api_key_configured() else "offline"


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def wandb_config(config: dict) -> dict:
    """The config W&B gets for a run: config.json's dict as it is, plus flat keys to filter and group by.

    `dataset_name`, `recipe_name`, `recipe_scale` copy config.json's dataset.name, recipe.name, recipe.scale;
    `variant_<axis>` copies variant.<axis> (a list such as layers [3, 3, 3] as the string "3-3-3", so that it
    can be grouped on); `spec` and `seed` are flat in config.json already. Keys a config lacks are left out
    (the empty config of a rank that does not record)."""
    flat = dict(config)
    dataset, recipe = config.get("dataset") or {}, config.get("recipe") or {}
    for key, value in (("dataset_name", dataset.get("name")), ("recipe_name", recipe.get("name")),
                       ("recipe_scale", recipe.get("scale"))):
        if value is not None:
            flat[key] = value
    for axis, value in (config.get("variant") or {}).items():
        flat[VARIANT_PREFIX + axis] = "-".join(map(str, value)) if isinstance(value, list) else value
    return flat


def wandb_summary(summary: dict, rows: list[dict]) -> dict:
    """The summary W&B gets at the end of a run: summary.json's, plus for the test (and validation) error
    `<split>_error_final`, the error at the end of a finished run (absent otherwise), and `<split>_error_min`,
    the lowest over the recorded evaluation points (intermediate points may be measured on the first
    `eval_subset` images only, see the recipe). From the record's rows, so a resumed run counts the points
    its earlier attempts recorded."""
    extended = dict(summary)
    for split in ("test", "val"):
        errors = [row[f"{split}/error"] for row in rows if row.get(f"{split}/error") is not None]
        if errors:
            extended[f"{split}_error_min"] = min(errors)
        if summary.get("status") == "finished" and summary.get(f"{split}_error") is not None:
            extended[f"{split}_error_final"] = summary[f"{split}_error"]
    return extended


def define_metrics(run) -> None:
    """Curves against `iteration`, and test/error summarised by its minimum and last value."""
    run.define_metric(STEP_METRIC)
    for pattern in STEPPED_METRICS:
        run.define_metric(pattern, step_metric=STEP_METRIC)
    # A metric defined by name is its own definition, not merged with the glob's: the step metric is repeated.
    run.define_metric("test/error", step_metric=STEP_METRIC, summary="min,last")


class Tracker:
    def __init__(self, mode: str, wandb_id: str, name: str, config: dict, group: str, tags: list[str],
                 directory: Path, job_type: str = "train", record: records.RunRecord | None = None):
        if mode not in MODES:
            raise UserError(f"--wandb {mode} is not allowed; choose one of: {', '.join(MODES)}")
        if job_type not in JOB_TYPES:
            raise ValueError(f"job type {job_type!r} is not one of {JOB_TYPES}")
        self.mode = mode
        self.wandb_id = wandb_id
        self.run = None
        self.first_step = 0  # steps below it are not logged (a resumed online run has them already)
        self.log_seconds = 0.0  # time the training loop spent inside W&B's log calls
        # The run's record: its rows give the summary's minimum (`finish`), whichever attempt logged them.
        self.record = record
        if mode == "disabled":
            return
        try:
            import wandb

            directory.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=PROJECT, id=wandb_id, name=name, group=group, config=wandb_config(config),
                tags=[tag[:MAX_TAG] for tag in tags],
                job_type=job_type, dir=str(directory), mode=mode, resume="allow",
                # several at once in one process: a run array's seeds are a W&B run each
                reinit="create_new", settings=wandb.Settings(console="off", silent=True),
            )
            define_metrics(self.run)
            # A run W&B resumed server-side (online) keeps its steps; it drops any below `starting_step` (its
            # last step + 1) with a warning, so those are left out (`log`). Never set offline.
            self.first_step = self.run.starting_step if self.run.resumed else 0
        except Exception as error:  # no network, bad key, service crash: tracking is optional, the run is not
            warn(f"W&B could not start ({type(error).__name__}: {error}); training goes on and the record "
                 f"under results/ is complete")
            self.run = None

    @property
    def location(self) -> str | None:
        if self.run is None:
            return None
        return _where(self.run, self.mode)

    def log(self, metrics: dict, step: int) -> None:
        if self.run is None or step < self.first_step:
            return
        started = time.perf_counter()
        try:
            self.run.log(metrics, step=step)
        except Exception as error:
            warn(f"W&B logging failed ({type(error).__name__}: {error}); no more W&B logging for this run")
            self.run = None
        self.log_seconds += time.perf_counter() - started

    def replay(self, rows: list[dict]) -> None:
        """Log again the rows an earlier attempt recorded (the record's, up to the resumed checkpoint), each at
        its iteration, so that this attempt's offline directory holds the whole history: offline runs cannot
        resume, and `wandb sync` keeps one directory per id. Online, W&B has them already: nothing to do."""
        if self.mode != "offline":
            return
        log_seconds = self.log_seconds  # the training loop's logging cost, which this is not part of
        for row in rows:
            self.log(row, step=row["iteration"])
        self.log_seconds = log_seconds

    def finish(self, summary: dict, failed: bool) -> None:
        if self.run is None:
            return
        try:
            rows = self.record.metrics() if self.record else []
            self.run.summary.update(wandb_summary(summary, rows))
            self.run.finish(exit_code=1 if failed else 0)
        except Exception as error:
            warn(f"W&B could not finish the run ({type(error).__name__}: {error})")
        self.run = None


def report_wandb_id(name: str) -> str:
    """The W&B id of a report run: its name (suite, recipe, scale) in the characters W&B ids allow."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def report_fingerprint(name: str, tables: dict, images: dict, config: dict) -> str:
    """sha256 of what `upload_report` sends: the name, the config, each table's CSV and each image's bytes,
    in key order. matplotlib's Agg PNGs are byte-identical between two builds of the same records (their
    only metadata is the matplotlib version), so the image bytes are stable."""
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)

    part("name", name.encode())
    part("config", json.dumps(config, sort_keys=True, default=str).encode())
    for key in sorted(tables):
        part(f"table/{key}", tables[key].to_csv(index=False).encode())
    for key in sorted(images):
        part(f"image/{key}", Path(images[key]).read_bytes())
    return digest.hexdigest()


def upload_report(mode: str | None, name: str, tables: dict, images: dict, directory: Path, config: dict,
                  marker_dir: Path | None = None, quiet: bool = False) -> None:
    """Mirror a built report to W&B as one run of job type `report`: each table a wandb.Table, each figure
    an image. Like training runs, offline without an API key; failures only warn (the files are on disk).

    The run's id comes from `name` (`report_wandb_id`), resumed when it exists, so a rebuilt report updates
    its run. With `marker_dir` (the report's folder), REPORT_MARKER there records the fingerprint, mode and
    id of the last upload, and a report whose fingerprint was already uploaded in this mode is not sent again."""
    mode = mode or default_mode()
    if mode not in MODES:
        raise UserError(f"--wandb {mode} is not allowed; choose one of: {', '.join(MODES)}")
    if mode == "disabled":
        return
    wandb_id = report_wandb_id(name)
    marker = Path(marker_dir) / REPORT_MARKER if marker_dir is not None else None
    try:
        fingerprint = report_fingerprint(name, tables, images, config)
        previous = records.read_json(marker) if marker is not None else None
    except Exception as error:  # an unreadable figure or marker: upload, as before markers existed
        warn(f"W&B report marker unusable ({type(error).__name__}: {error}); uploading the report")
        fingerprint, previous = None, None
    if previous and fingerprint and previous.get("fingerprint") == fingerprint and previous.get("mode") == mode:
        if not quiet:
            print(f"W&B ({mode}): report unchanged since its upload as run {previous.get('wandb_id')}; not sent again")
        return
    try:
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=PROJECT, job_type="report", name=name, id=wandb_id, resume="allow", config=config,
                         dir=str(directory), mode=mode, settings=wandb.Settings(console="off", silent=True))
        for key, frame in tables.items():
            clean = frame.astype(object).where(frame.notna(), None)
            run.log({f"tables/{key}": wandb.Table(dataframe=clean)})
        for key, path in images.items():
            run.log({f"figures/{key}": wandb.Image(str(path))})
        where = _where(run, mode)
        run.finish()
        if not quiet:
            print(f"W&B ({mode}): report {'written' if mode == 'offline' else 'uploaded'} as run {wandb_id}: {where}")
    except Exception as error:
        warn(f"W&B report upload failed ({type(error).__name__}: {error}); the report files are complete")
        return
    if marker is not None and fingerprint:
        try:
            records.write_json(marker, {"fingerprint": fingerprint, "mode": mode, "wandb_id": wandb_id})
        except OSError as error:
            warn(f"could not write {marker} ({error}); the next build uploads the report again")


def _where(run, mode: str) -> str:
    """The run's page online; offline, the folder that `wandb sync` uploads later (the run's, above its files)."""
    if mode == "offline":
        return f"written for `wandb sync {Path(run.dir).parent}`"
    return run.url
