"""The run records under RESULTS/runs/<run_id>/: the source of truth every report is built from.

    config.json      what was run: spec and its axes, recipe, dataset, seed, device, versions, git commit
    source.diff      the uncommitted changes of the checkout it ran from, when there were any
    metrics.jsonl    one JSON object per log or evaluation point (the curves of Figure 6)
    summary.json     final errors, params, MACs, throughput, peak memory, wall time, and `status`
    checkpoint.pt    model, optimizer, schedule and data position, for resuming

This module is the only code that writes there. Every JSON file is written to a temporary file and renamed
into place, so a crash leaves the previous complete version, never half of one. A write that finds the disk
(or the quota) full ends as `OutOfSpace` (errors.py), naming the folder, its free space and about what was
needed; the previous file stays as it was. The run id is a readable
prefix plus a hash of everything that decides the result (spec, dataset, the recipe's `identity()`: all its
fields but cadences such as the checkpoint interval, and the seed), so the same run asked twice gets the same id.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import provenance
from .errors import OutOfSpace, UserError, free_bytes, no_space

STATUSES = ("running", "interrupted", "failed", "diverged", "finished")
LOCK_TRIES, LOCK_TRIES_APART = 10, 0.1  # a lock another process looks at (holder()) is free again at once
# Runs in these states are results: asking for them again does nothing unless forced.
DONE = ("finished", "diverged")


def run_id(spec: str, dataset: str, recipe: dict, seed: int) -> str:
    identity = json.dumps({"spec": spec, "dataset": dataset, "recipe": recipe, "seed": seed}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9]+", "-", spec).strip("-")
    return f"{readable}_{dataset}_{recipe['name']}-x{recipe['scale']:g}_seed{seed}_{digest}"


@contextlib.contextmanager
def _atomic(path: Path, mode: str, needed: int | None = None, what: str | None = None):
    """A temporary file beside `path` that replaces it, flushed to disk, only if the writing succeeds. `needed`
    and `what`: about how many bytes it takes and what it is, for the message when the disk has no room."""
    with no_space_is(path.parent, needed, what or path.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp's files are 0600; records are shared (a team's results folder, Ray nodes): the umask decides
        os.chmod(handle.name, _file_mode())
        os.replace(handle.name, path)
    except BaseException as error:
        Path(handle.name).unlink(missing_ok=True)
        if no_space(error):
            raise OutOfSpace(path.parent, needed, what or path.name) from error  # free space: with the partial gone
        raise


@contextlib.contextmanager
def no_space_is(folder: Path, needed: int | None, what: str):
    """Within the block, a full disk or quota (ENOSPC, EDQUOT) ends as OutOfSpace naming `folder` and `what`."""
    try:
        yield
    except OSError as error:
        if no_space(error):
            raise OutOfSpace(folder, needed, what) from error
        raise


def _file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file here: 0666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json(path: Path, value: dict) -> None:
    with _atomic(path, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:  # only a hand edit can do this: writes are atomic
        raise UserError(f"{path} is not valid JSON ({error}); repair or delete it, or redo the run with --force") from None


def within(base: str | os.PathLike, *parts: str) -> Path:
    """`base/parts...`, refused unless it stays under `base`: a name that comes from a suite file or a request
    (`../x`, `a/b/../..`, an absolute path) never makes the project write elsewhere. The check is on the names,
    not on where symbolic links lead: a run or report folder linked to another disk is fine."""
    path = Path(base).joinpath(*parts)
    normal, root = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(base))
    if normal != root and not normal.startswith(root.rstrip(os.sep) + os.sep):
        raise UserError(f"{path} would lie outside {base}: {'/'.join(parts)!r} is not a plain name")
    return path


class RunRecord:
    def __init__(self, results_dir: str | os.PathLike, run_id: str):
        self.run_id = run_id
        self.dir = within(Path(results_dir) / "runs", run_id)
        self.config_path = self.dir / "config.json"
        self.metrics_path = self.dir / "metrics.jsonl"
        self.summary_path = self.dir / "summary.json"
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.source_diff_path = self.dir / provenance.DIFF_NAME
        self.lock_path = self.dir / ".lock"

    # ---- status --------------------------------------------------------------------------------------------
    def summary(self) -> dict | None:
        return read_json(self.summary_path)

    def status(self) -> str | None:
        summary = self.summary()
        return summary.get("status") if summary else None

    def write_config(self, config: dict) -> None:
        write_json(self.config_path, config)

    def write_source_diff(self, diff: str | None) -> None:
        """The uncommitted changes the run's code has (None: a clean checkout, and no stale diff is left)."""
        if diff is None:
            self.source_diff_path.unlink(missing_ok=True)
            return
        with _atomic(self.source_diff_path, "w") as handle:
            handle.write(diff)

    def write_summary(self, summary: dict) -> None:
        if summary.get("status") not in STATUSES:  # a bug in the writer, caught before it reaches the record
            raise ValueError(f"status {summary.get('status')!r} is not a run status; one of: {', '.join(STATUSES)}")
        write_json(self.summary_path, summary)

    # ---- curves ---------------------------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        # NaN and inf are not JSON: a diverged loss is recorded as null (the summary says why).
        clean = {key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in row.items()}
        line = json.dumps(clean) + "\n"
        try:
            with open(self.metrics_path, "a") as handle:
                handle.write(line)
                handle.flush()
        except OSError as error:  # a cut line is not read back (`metrics`), and the resume rewrites it
            if no_space(error):
                raise OutOfSpace(self.dir, len(line), "a row of metrics.jsonl") from error
            raise

    def metrics(self) -> list[dict]:
        """Complete lines only: a line cut by a crash is not a record."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        with open(self.metrics_path) as handle:
            for line in handle:
                if line.endswith("\n"):
                    rows.append(json.loads(line))
        return rows

    def reset_metrics(self) -> None:
        """Forget every row (a run starting from its first iteration)."""
        self.metrics_path.unlink(missing_ok=True)

    def truncate_metrics(self, last_iteration: int) -> None:
        """Forget rows after `last_iteration` (the resumed checkpoint): they will be recorded again."""
        kept = [row for row in self.metrics() if row["iteration"] <= last_iteration]
        with _atomic(self.metrics_path, "w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in kept)

    # ---- checkpoints ------------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        """Written beside the previous one, which it replaces only once complete: the disk needs room for both.
        torch reports a full disk (or quota) as a RuntimeError ("unexpected pos ...": fewer bytes written than
        it meant to), not an OSError: that too ends as OutOfSpace."""
        needed = state_bytes(state)
        free = free_bytes(self.dir)
        if free is not None and free < needed:
            raise OutOfSpace(self.dir, needed, "the checkpoint", free)
        try:
            with _atomic(self.checkpoint_path, "wb", needed, "the checkpoint") as handle:
                torch.save(state, handle)
        except RuntimeError as error:
            if "unexpected pos" not in str(error):
                raise
            raise OutOfSpace(self.dir, needed, "the checkpoint") from error

    def drop_checkpoint(self) -> None:
        self.checkpoint_path.unlink(missing_ok=True)

    def load_checkpoint(self) -> dict | None:
        """The last checkpoint, or None. An unreadable one is reported and set aside, and the run starts over."""
        if not self.checkpoint_path.is_file():
            return None
        try:
            return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:
            aside = self.checkpoint_path.with_name("checkpoint.unreadable.pt")
            os.replace(self.checkpoint_path, aside)
            print(f"warning: {self.checkpoint_path} cannot be loaded ({type(error).__name__}: {error}); "
                  f"moved to {aside.name}, starting this run from the beginning", file=sys.stderr)
            return None

    @contextlib.contextmanager
    def lock(self):
        """Hold the run for this process: a second process asking for the same run is refused (`RunHeld`), not
        interleaved. The lock file names its holder while it holds it; the kernel lets go of the lock when its
        holder dies. `holder()` looks by taking the lock for an instant: a refusal is retried for a second."""
        with no_space_is(self.dir, None, "the run's lock file"):
            self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            for attempt in range(LOCK_TRIES):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == LOCK_TRIES - 1:
                        handle.seek(0)
                        holder = handle.read().strip()
                        raise RunHeld(f"run {self.run_id} is being trained by another process right now"
                                      + (f" ({holder})" if holder else "")) from None
                    time.sleep(LOCK_TRIES_APART)
            try:
                with no_space_is(self.dir, None, "the run's lock file"):
                    handle.seek(0)
                    handle.truncate()
                    handle.write(f"{socket.gethostname()} pid {os.getpid()}")
                    handle.flush()
                yield
            finally:
                with contextlib.suppress(OSError):  # names no holder once let go
                    handle.seek(0)
                    handle.truncate()
                    handle.flush()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def holder(self) -> str | None:
        """Who trains this run right now ("HOST pid N"), or None when no process holds it. Looks without waiting."""
        if not self.lock_path.is_file():
            return None
        with open(self.lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return handle.read().strip() or "another process"
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None

    def clear(self) -> None:
        """Remove every record of this run (for --force)."""
        for path in (self.summary_path, self.metrics_path, self.checkpoint_path, self.config_path, self.source_diff_path):
            path.unlink(missing_ok=True)


class RunHeld(UserError):
    """The run is being trained by another process (another suite, another terminal, another node)."""


EXIT_HELD = 75  # `bench train`'s exit status for a run another process holds (EX_TEMPFAIL: try again later)


def state_bytes(state) -> int:
    """About the bytes `torch.save(state)` writes: its tensors' data (the pickled structure around them is small)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(value) for value in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_bytes(value) for value in state)
    return 0


class Unwritten(RunRecord):
    """The record as the ranks other than 0 of a data-parallel run hold it: they train, rank 0 writes."""

    def _nothing(self, *args, **kwargs) -> None:
        return None

    write_config = write_source_diff = write_summary = append_metrics = reset_metrics = truncate_metrics = _nothing
    save_checkpoint = drop_checkpoint = clear = _nothing
