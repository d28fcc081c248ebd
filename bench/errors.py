"""Errors that are the user's to fix (a bad option, missing data, a busy run, a full disk): the CLI prints
them as one line."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# What the kernel says when a write finds no room: the disk is full, or the user's quota is used up.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class UserError(ValueError):
    """Something in the request or its inputs is wrong; the message says what, and what is allowed."""


class OutOfSpace(Exception):
    """A write that the disk (or the quota) has no room for. Nothing recorded before it is lost (every record
    file is replaced atomically), and the same command resumes once there is room; the command exits 1."""

    def __init__(self, folder: str | Path, needed: int | None, what: str, free: int | None = None,
                 elsewhere: str = "--results-dir", resumes: bool = True):
        self.folder, self.needed, self.what = Path(folder), needed, what
        self.free = free = free if free is not None else free_bytes(self.folder)
        if free is None:
            room = f"no room for {what}"
        elif needed and needed > free:
            room = f"{megabytes(free)} free, {what} needs about {megabytes(needed)}"
        else:  # a quota (the file system's free space is not the quota's), or more than estimated
            room = f"{megabytes(free)} free on the disk, and {what} did not fit"
        super().__init__(f"out of space in {self.folder} (disk or quota): {room}; free some space (or pass another "
                         f"{elsewhere}) and run the same command again"
                         + (": it resumes from the last checkpoint" if resumes else ""))


def free_bytes(folder: str | Path) -> int | None:
    """Free bytes of the file system that holds `folder` (or its nearest existing parent); None if unknown."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def megabytes(count: int | None) -> str:
    return "? MB" if count is None else f"{count / 2**20:.1f} MB"


def no_space(error: BaseException) -> bool:
    """Whether an OSError says the disk or the quota is full."""
    return isinstance(error, OSError) and error.errno in NO_SPACE
