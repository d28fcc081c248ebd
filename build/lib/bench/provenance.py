"""Which code produced a run: the commit of the checkout the package runs from and, when the checkout has
uncommitted changes, those changes as a diff stored beside the run's records (`source.diff`).

A comparison of two variants is only a comparison of variants if both ran the same code. The runner records
a `Source` in config.json; the reports list the versions their runs came from and warn when they differ.
A version is the commit plus a hash of the diff, so two dirty runs of the same commit with different edits
count as two versions. Code installed from a wheel (not a git checkout) has no known version.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DIFF_NAME = "source.diff"
# Untracked files above this size (data, checkpoints left in the tree) are named in the diff, not copied.
MAX_UNTRACKED_BYTES = 1_000_000
MAX_UNTRACKED_TOTAL = 10_000_000  # past this, further untracked files are named only


@dataclass(frozen=True)
class Source:
    commit: str | None  # None: not running from a git checkout of this code
    diff: str | None = None  # None: the checkout is clean (or unknown)

    @property
    def dirty(self) -> bool:
        return self.diff is not None

    @property
    def diff_sha256(self) -> str | None:
        return hashlib.sha256(self.diff.encode()).hexdigest() if self.diff is not None else None

    @property
    def git_commit(self) -> str | None:
        """The commit as config.json has always recorded it: the hash, with '-dirty' for uncommitted changes."""
        if self.commit is None:
            return None
        return self.commit + ("-dirty" if self.dirty else "")

    def to_dict(self) -> dict:
        return {"commit": self.commit, "dirty": self.dirty, "diff": DIFF_NAME if self.dirty else None,
                "diff_sha256": self.diff_sha256}


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=30)


def source_of(directory: Path = PACKAGE_DIR, exclude: tuple[Path, ...] = ()) -> Source:
    """The Source of the code in `directory` (default: this package). Unknown (commit None) when it is not a
    tracked part of a git checkout, e.g. a wheel installed into a virtual environment inside some checkout.
    Untracked files under `exclude` (the run's results and data folders, when they sit inside the checkout
    unignored) are not code and are left out."""
    excluded = [Path(path).resolve() for path in exclude]
    try:
        tracked = _git(directory, "ls-files", "--error-unmatch", "--", "__init__.py")
        if tracked.returncode:
            return Source(None)
        head = _git(directory, "rev-parse", "HEAD")
        commit = head.stdout.strip() if head.returncode == 0 else ""
        top = Path(_git(directory, "rev-parse", "--show-toplevel").stdout.strip())
        parts = [_git(top, "diff", "HEAD", "--binary").stdout]
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0")
        copied = 0
        for name in sorted(filter(None, untracked)):
            path = (top / name).resolve()
            if any(path.is_relative_to(folder) for folder in excluded):
                continue
            size = path.stat().st_size if path.is_file() else 0
            if size > MAX_UNTRACKED_BYTES or copied + size > MAX_UNTRACKED_TOTAL:
                parts.append(f"# untracked file {name} ({size:,} bytes) is not copied here\n")
                continue
            copied += size
            # --no-index exits 1 when the files differ, which they do: the file against nothing
            parts.append(_git(top, "diff", "--no-index", "--binary", "--", "/dev/null", name).stdout)
    except (OSError, subprocess.SubprocessError):
        return Source(None)
    if not commit:
        return Source(None)
    diff = "".join(parts)
    return Source(commit, diff if diff else None)


def version(config: dict) -> str | None:
    """A short label of the code a recorded run came from: `abc1234def`, `abc1234def+diff 1a2b3c4d` for a
    dirty checkout, None when unknown. Records written before `source` existed have only `git_commit`."""
    source = config.get("source") or {}
    commit = source.get("commit") or (config.get("git_commit") or "").removesuffix("-dirty") or None
    if commit is None:
        return None
    label = commit[:10]
    if source.get("dirty"):
        label += f"+diff {source.get('diff_sha256', '')[:8]}"
    elif (config.get("git_commit") or "").endswith("-dirty"):
        label += "+diff (not stored)"
    return label
