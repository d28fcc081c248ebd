"""A training's progress wherever its output goes: tqdm's bar on a terminal; elsewhere (`nohup`, `| tee`, a
cluster job's log, a suite child's log, rank 0 under torchrun) a plain line every `LINE_EVERY` seconds, since
a bar draws nothing there and a long run would print only its first lines.

A line says where the run is, the speed and the time left as this attempt measured them: a resumed run's
speed counts only the iterations trained since it resumed, and its ETA the iterations it has left, so a run
that resumed near its end neither claims the earlier attempts' speed nor their remaining time. The lines come
between log points too (a step costs one clock read): under torchrun a log point can be minutes apart.
"""

from __future__ import annotations

import sys
import time

LINE_EVERY = 30.0  # seconds between plain progress lines


def duration(seconds: float) -> str:
    """'45 s', '12.5 min', '3.2 h', '7.6 days': a time left or taken, in the unit a person reads."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class Progress:
    """The progress of one attempt at a run, from iteration `initial` to `total`, batches of `batch_size`."""

    def __init__(self, total: int, initial: int, batch_size: int, quiet: bool = False, stream=None):
        self.total, self.initial, self.batch_size = total, initial, batch_size
        self.stream = stream or sys.stdout
        self.bar, self.lines = None, False
        self.started = self.last_line = time.monotonic()
        self.logged_words = ""
        if quiet:
            return
        if _terminal(self.stream) and _terminal(sys.stderr):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)
        else:
            self.lines = True

    def step(self, iteration: int) -> None:
        """After each training step: the bar moves (tqdm redraws at most 10 times a second), or a line when
        LINE_EVERY has passed since the last one."""
        if self.bar is not None:
            self.bar.update(iteration - self.bar.n)
        elif self.lines and time.monotonic() - self.last_line >= LINE_EVERY:
            self.line(iteration)

    def logged(self, iteration: int, loss: float, error: float, lr: float, seeds: int = 1) -> None:
        """At a log point: the curves' latest values, for the bar now and the next line (a run array's: the
        means over its `seeds` still training, and the first one's lr)."""
        mean = f" (mean of {seeds} seeds)" if seeds > 1 else ""
        self.logged_words = f"at iteration {iteration:,}: loss {loss:.3f}, train error {error:.1f}%{mean}, lr {lr:g}"
        if self.bar is not None:
            self.bar.update(iteration - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.3f}", err=f"{error:.1f}%", lr=f"{lr:g}")

    def line(self, iteration: int) -> None:
        now = time.monotonic()
        self.last_line = now
        trained, seconds = iteration - self.initial, now - self.started
        words = [f"iteration {iteration:,}/{self.total:,} ({100 * iteration / self.total:.0f}%)"]
        if trained > 0 and seconds > 0:
            per_second = trained / seconds
            words += [f"{per_second * self.batch_size:,.0f} img/s",
                      f"ETA {duration((self.total - iteration) / per_second)}"]
        if self.logged_words:
            words.append(self.logged_words)
        print("progress: " + ", ".join(words), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
