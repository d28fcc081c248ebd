"""Data-parallel training of one run across processes and nodes (`torchrun ... -m bench train ...`).

The paper trains ImageNet on 8 GPUs with a mini-batch of 256 (§3.4): that is one global batch, split over
the GPUs, with the gradients averaged. Here every rank reads the same seeded per-epoch order (loader.py) and
takes its contiguous share of each global batch, so the ranks' batches at a step are the single-process
batch of the recipe's size, cut in `world` pieces. DistributedDataParallel averages the gradients (NCCL
between GPUs, gloo between CPUs), so the update is the single-process one except for batch norm, whose
statistics each rank takes over its own share (SyncBatchNorm, `--sync-bn`, takes them over the whole batch;
torch runs it on GPUs only).

Rank 0 alone writes records, checkpoints and W&B; the run id is the one-process run's (the world size is
execution, recorded in config.json). When a rank dies the others see their next collective fail, or are
stopped by torchrun (SIGTERM): rank 0 then names the rank that failed, from what the ranks left in torchrun's
key-value store (a failing rank writes its error; each rank's heartbeat shows whether it still lives), records
the run as failed, and a re-run resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

import torch

from .errors import UserError

HEARTBEAT_SECONDS = 0.5
SILENCE_SECONDS = 2.0  # a rank whose heartbeat stands still this long is gone


class RankLost(Exception):
    """The run cannot go on: a rank (named in the message) failed or stopped."""


class Stopped(Exception):
    """torchrun (or the user) stopped this rank with SIGTERM."""


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes: rank `rank` of `size` (1: an ordinary single process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> "World":
        """As torchrun sets it (RANK, WORLD_SIZE, LOCAL_RANK); a single process without it."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            return cls(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
        except ValueError:
            raise UserError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)") from None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: CUDA ranks take the GPU of their local rank, as torchrun intends."""
        if not self.parallel or device.type != "cuda":
            return device
        if device.index is not None and device.index != self.local_rank:
            raise UserError(f"--device {device} with torchrun: each rank takes the GPU of its local rank; "
                            f"use --device cuda (or auto)")
        if self.local_rank >= torch.cuda.device_count():
            raise UserError(f"local rank {self.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                            f"give torchrun --nproc-per-node at most that")
        return torch.device("cuda", self.local_rank)

    def share(self, batch_size: int) -> int:
        """This rank's images of each global batch."""
        if batch_size % self.size:
            raise UserError(f"the recipe's batch of {batch_size} does not split evenly over {self.size} ranks; "
                            f"choose a world size that divides it")
        return batch_size // self.size


SOLO = World()


class Session:
    """The process group of a parallel run, with what rank 0 needs to name a rank that is lost."""

    def __init__(self, world: World, device: torch.device):
        import torch.distributed as dist

        self.world = world
        if device.type == "cuda":
            # before the process group: NCCL's communicator and broadcast_object_list's staging use the current
            # device, cuda:0 unless set, and rank 1's "backend constrained to cuda:1" would end the run at once
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    device_id=device if device.type == "cuda" else None)
        self.store = dist.distributed_c10d._get_default_store()
        self.store.set(f"bench/host/{world.rank}", f"{socket.gethostname()} pid {os.getpid()}")
        self._done = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="bench-heartbeat", daemon=True)
        self._beat.start()
        self._handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._stopping = False
        self._verdict: tuple[str, str] | None = None
        self._judged = False

    def _heartbeat(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(Exception):  # the store's host may be gone at the end; nothing to do then
                self.store.add(f"bench/beat/{self.world.rank}", 1)
            self._done.wait(HEARTBEAT_SECONDS)

    def _on_sigterm(self, signum, frame) -> None:
        if self._stopping:  # already winding down (recording why): let that finish
            return
        self._stopping = True
        with contextlib.suppress(Exception):
            self.store.set(f"bench/stopped/{self.world.rank}", "stopped")
        raise Stopped("stopped by SIGTERM")

    def close(self) -> None:
        import torch.distributed as dist

        self._done.set()
        self._beat.join()  # before the store goes: a thread inside a store call at exit aborts the process
        signal.signal(signal.SIGTERM, self._handler)
        if dist.is_initialized():
            dist.destroy_process_group()

    # ---- collectives -------------------------------------------------------------------------------------
    def broadcast(self, value):
        """Rank 0's `value` on every rank."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    # ---- failures ----------------------------------------------------------------------------------------
    def fail(self, error: BaseException) -> None:
        """Leave why this rank ends where rank 0 reads it: its own error, or that it was stopped. A failed
        collective is most often a peer's failure, not this rank's: it is left apart ("collective"), and
        rank 0 names it only for a rank that then went silent (its error is why it died)."""
        self._stopping = True
        with contextlib.suppress(Exception):
            if isinstance(error, (Stopped, KeyboardInterrupt)):
                self.store.set(f"bench/stopped/{self.world.rank}", "stopped")
            else:
                kind = "collective" if lost_peer(error) else "failed"
                self.store.set(f"bench/{kind}/{self.world.rank}", f"{type(error).__name__}: {error}")

    def judge(self, error: BaseException) -> tuple[str, str] | None:
        """On rank 0, after `error`: the run's status (failed or interrupted) and why, naming the rank that
        ended it; None for rank 0's own error, which says it itself. Judged once: later calls repeat it."""
        if not self._judged:
            self._judged, self._stopping = True, True
            self._verdict = self._judge(error) if isinstance(error, Stopped) or lost_peer(error) else None
        return self._verdict

    def _judge(self, error: BaseException) -> tuple[str, str]:
        try:
            before = self._beats()
            deadline = time.monotonic() + SILENCE_SECONDS
            while time.monotonic() < deadline:
                failed = self._notes("failed")
                if failed:
                    return "failed", "; ".join(f"rank {rank} ({self._host(rank)}) failed: {why}"
                                               for rank, why in failed.items())
                time.sleep(HEARTBEAT_SECONDS / 2)
            after, stopped, collective = self._beats(), self._notes("stopped"), self._notes("collective")
        except Exception:
            return "failed", "a rank was lost, and torchrun's store with it; torchrun's output says which"
        silent = [rank for rank in range(1, self.world.size) if after[rank] == before[rank] and rank not in stopped]
        if silent:  # a rank that raised before it died is named with its error, not as a silent death
            return "failed", "; ".join(
                f"rank {rank} ({self._host(rank)}) failed: {collective[rank]}" if rank in collective else
                f"rank {rank} ({self._host(rank)}) stopped without a word: killed, or its node lost" for rank in silent)
        if isinstance(error, Stopped) or stopped:
            return "interrupted", "stopped by torchrun or the user (SIGTERM or Ctrl-C)"
        return "failed", f"a collective failed: {error}"

    def _beats(self) -> dict[int, int]:
        return {rank: self.store.add(f"bench/beat/{rank}", 0) for rank in range(self.world.size)}

    def _notes(self, kind: str) -> dict[int, str]:
        found = {}
        for rank in range(self.world.size):
            key = f"bench/{kind}/{rank}"
            if self.store.check([key]):
                found[rank] = self.store.get(key).decode()
        return found

    def _host(self, rank: int) -> str:
        key = f"bench/host/{rank}"
        return self.store.get(key).decode() if self.store.check([key]) else "host unknown"


def lost_peer(error: BaseException) -> bool:
    """Whether `error` is a collective that failed because a peer went away (gloo and NCCL raise these)."""
    import torch.distributed as dist

    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        mark in text for mark in ("gloo", "NCCL", "Connection closed by peer", "Connection reset by peer"))


@contextlib.contextmanager
def session(world: World, device: torch.device):
    """The process group for a parallel world (None for a single process), closed on the way out."""
    if not world.parallel:
        yield None
        return
    started = Session(world, device)
    try:
        yield started
    finally:
        started.close()
