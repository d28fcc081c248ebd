"""Weights & Biases mirror of a run record.

The record under results/ is the source of truth; W&B gets the same config, metrics and summary so that a
dashboard can group and filter runs by any variant axis (config keys `variant.family`, `variant.depth`, ...,
and tags such as `shortcut:A`). W&B runs online when an API key is configured (WANDB_API_KEY or a netrc
entry from `wandb login`), offline otherwise: offline runs land in RESULTS/wandb/offline-run-*/ and go up
with `wandb sync`. If W&B fails to start or to log, training goes on and only a warning says why.

Each attempt at a run that starts from scratch gets a W&B id of its own (the run id plus a timestamp), and a
resumed attempt continues the W&B run of its checkpoint: W&B drops steps at or below the last one it has,
so a re-done run must not reuse an id whose steps already reach the end.
"""

from __future__ import annotations

import netrc
import os
import sys
import time
from pathlib import Path

from .errors import UserError

PROJECT = os.environ.get("WANDB_PROJECT", "resnet-bench")
MODES = ("online", "offline", "disabled")


def default_mode() -> str:
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return "offline"
    return "online" if any(host.startswith("api.wandb.ai") for host in hosts) else "offline"


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class Tracker:
    def __init__(self, mode: str, wandb_id: str, name: str, config: dict, group: str, tags: list[str],
                 directory: Path):
        if mode not in MODES:
            raise UserError(f"--wandb {mode} is not allowed; choose one of: {', '.join(MODES)}")
        self.mode = mode
        self.wandb_id = wandb_id
        self.run = None
        self.log_seconds = 0.0  # time the training loop spent inside W&B's log calls
        if mode == "disabled":
            return
        try:
            import wandb

            directory.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=PROJECT, id=wandb_id, name=name, group=group, tags=tags, config=config,
                dir=str(directory), mode=mode, resume="allow",
                settings=wandb.Settings(console="off", quiet=True),
            )
        except Exception as error:  # no network, bad key, service crash: tracking is optional, the run is not
            warn(f"W&B could not start ({type(error).__name__}: {error}); training goes on and the record "
                 f"under results/ is complete")
            self.run = None

    @property
    def location(self) -> str | None:
        if self.run is None:
            return None
        return self.run.dir if self.mode == "offline" else self.run.url

    def log(self, metrics: dict, step: int) -> None:
        if self.run is None:
            return
        started = time.perf_counter()
        try:
            self.run.log(metrics, step=step)
        except Exception as error:
            warn(f"W&B logging failed ({type(error).__name__}: {error}); no more W&B logging for this run")
            self.run = None
        self.log_seconds += time.perf_counter() - started

    def finish(self, summary: dict, failed: bool) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(summary)
            self.run.finish(exit_code=1 if failed else 0)
        except Exception as error:
            warn(f"W&B could not finish the run ({type(error).__name__}: {error})")
        self.run = None


def upload_report(mode: str | None, name: str, tables: dict, images: dict, directory: Path, config: dict) -> None:
    """Mirror a built report to W&B as one run of job type `report`: each table a wandb.Table, each figure
    an image. Like training runs, offline without an API key; failures only warn (the files are on disk)."""
    mode = mode or default_mode()
    if mode not in MODES:
        raise UserError(f"--wandb {mode} is not allowed; choose one of: {', '.join(MODES)}")
    if mode == "disabled":
        return
    try:
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=PROJECT, job_type="report", name=name, config=config, dir=str(directory),
                         mode=mode, settings=wandb.Settings(console="off", quiet=True))
        for key, frame in tables.items():
            clean = frame.astype(object).where(frame.notna(), None)
            run.log({f"tables/{key}": wandb.Table(dataframe=clean)})
        for key, path in images.items():
            run.log({f"figures/{key}": wandb.Image(str(path))})
        run.finish()
    except Exception as error:
        warn(f"W&B report upload failed ({type(error).__name__}: {error}); the report files are complete")
