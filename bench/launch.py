"""Launchers: where the suite's training runs execute. The scheduler (suite.py) decides what to train and
reports progress; a launcher only starts one `python -m bench train ...` child with its log, says whether it
has ended and with which exit status, and stops it.

- `local` (the default): a child process on this machine per job slot, round-robin over the visible GPUs.
- `ray`: each run is a Ray task (Ray core) that runs the same child on whichever node Ray picks, with the
  CPUs and (fractional) GPUs Ray assigns. A task whose worker or node dies is retried by Ray, and the retried
  child resumes from the run's last checkpoint, so records are those of an uninterrupted run. Records must live
  where every node sees them: `prepare()` has a task on each node write a probe file that this driver must see.

Either way the child is the same command, so run ids, records and exit statuses do not depend on the launcher.

Each launcher is one entry of `LAUNCHERS` that declares its own command-line options (`OPTIONS`, shown as a
group of `bench suite --help`) and builds itself from the parsed arguments (`from_options`, which also
checks `--device` its way); `add_options` and `from_options` below are all a command needs.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Protocol

import torch

from .errors import UserError
from .options import Group, Option
from .execution import resolve_device

STOP_GRACE_SECONDS = 30  # a child stopped with SIGINT records `interrupted`; it gets this long before a kill


class Job(Protocol):
    def poll(self) -> int | None: ...  # the exit status once ended
    def stop(self) -> None: ...  # ask the child to stop as Ctrl-C would (it records `interrupted`)
    def wait_stopped(self) -> None: ...  # until it has; killed if it takes longer than the grace period


class Launcher(Protocol):
    name: str
    slots: list[str]  # the --device of each run in flight
    shares: list[float]  # the share of its device each slot is given (--device-share: where its data may live)

    def prepare(self, results_dir: Path) -> None: ...
    def submit(self, command: list[str], log_path: Path) -> Job: ...
    def close(self) -> None: ...


def _wait_or_kill(process: subprocess.Popen) -> None:
    """Give a child told to stop its grace period to record `interrupted`, then make sure it is gone."""
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LocalJob:
    def __init__(self, process: subprocess.Popen):
        self.process = process

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def wait_stopped(self) -> None:
        _wait_or_kill(self.process)


class LocalLauncher:
    """Children of this process: `jobs` at a time, each on one device slot."""

    name = "local"
    OPTIONS = Group((), "local", "child processes on this machine (the default)")

    @classmethod
    def from_options(cls, args) -> "LocalLauncher":
        resolve_device(args.device)  # this machine's devices: a bad --device fails here, before any run
        return cls(args.jobs or default_jobs(args.device), args.device)

    def __init__(self, jobs: int, device: str):
        self.slots = devices_for(jobs, device)
        self.shares = shares_of(self.slots)
        self.environment = dict(os.environ)
        if self.slots[0] == "cpu" and jobs > 1:  # N trainings on one CPU share its cores instead of each taking all
            self.environment["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))

    def prepare(self, results_dir: Path) -> None:
        pass

    def submit(self, command: list[str], log_path: Path) -> LocalJob:
        # A child dies with the suite, however the suite ends (SIGKILL, the OOM killer): it is sent SIGTERM, on
        # which it records `interrupted` and lets go of its run, so that no orphan holds the run's lock.
        with open(log_path, "a") as log:  # a retry keeps the failed attempt's log
            return LocalJob(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=self.environment, preexec_fn=die_with_parent(signal.SIGTERM)))

    def close(self) -> None:
        pass


def default_jobs(device: str) -> int:
    """One training per visible GPU when training on CUDA; one on CPU (a run already uses every core)."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.cuda.device_count()
    return 1


def devices_for(jobs: int, device: str) -> list[str]:
    """The --device of each job slot: round-robin over the visible GPUs when the device is auto/cuda."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{slot % torch.cuda.device_count()}" for slot in range(jobs)]
    return ["cpu" if device == "auto" else device] * jobs


def shares_of(slots: list[str]) -> list[float]:
    """Each slot's share of its device: the slots on one device (two jobs on cuda:0; N jobs on the CPU, whose
    memory they share) split it evenly."""
    return [1.0 / slots.count(slot) for slot in slots]


# ---- Ray ----------------------------------------------------------------------------------------------------

RAY_RETRIES = 3  # attempts after the first when a task's worker process or node dies


def die_with_parent(signum: int):
    """What a child runs before exec to get `signum` when the process that started it dies (Linux's
    PR_SET_PDEATHSIG; elsewhere nothing): a suite's children get SIGTERM and record `interrupted`; a Ray task's
    get SIGKILL, so that a retried task never meets a stale trainer of the same run (the kernel then releases the
    run's lock at once). `prctl` is looked up here, in the parent: between fork and exec the child only calls it,
    then exits at once if the parent died before the call took effect."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    PR_SET_PDEATHSIG = 1

    def before_exec() -> None:
        prctl(PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:
            os._exit(128 + signum)

    return before_exec


def _train_in_child(command: list[str], log_path: str, threads: int) -> int:
    """A Ray task: the training child on this node, with this node's Python; returns its exit status.
    Cancelling the task (KeyboardInterrupt here) stops the child as Ctrl-C would, so it records `interrupted`."""
    import ray

    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with open(log_path, "a") as log:
        context = ray.get_runtime_context()
        log.write(f"[ray] node {context.get_node_id()} worker pid {os.getpid()} "
                  f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')}\n")
        log.flush()
        process = subprocess.Popen([sys.executable, *command[1:]], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=environment,
                                   preexec_fn=die_with_parent(signal.SIGKILL))
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            _wait_or_kill(process)
            raise


def _write_probe(directory: str, name: str) -> None:
    """A Ray task pinned to one node: write a probe file into the results folder as that node sees it."""
    import ray

    Path(directory, name).write_text(ray.get_runtime_context().get_node_id())


class RayJob:
    def __init__(self, reference):
        self.reference = reference
        self.returncode: int | None = None

    def poll(self) -> int | None:
        import ray

        if self.returncode is None:
            ready, _ = ray.wait([self.reference], timeout=0)
            if ready:
                try:
                    self.returncode = ray.get(self.reference)
                except Exception:  # retries exhausted, or cancelled: the scheduler reads the run's record
                    self.returncode = -1
        return self.returncode

    def stop(self) -> None:
        import ray

        if self.poll() is None:
            ray.cancel(self.reference)  # KeyboardInterrupt in the task, which passes SIGINT to the child

    def wait_stopped(self) -> None:
        import ray

        ready, _ = ray.wait([self.reference], timeout=STOP_GRACE_SECONDS + 5)
        if not ready:
            ray.cancel(self.reference, force=True)


class RayLauncher:
    """Runs on a Ray cluster (`address`: "auto", HOST:PORT, or None for a Ray instance of this process)."""

    name = "ray"
    OPTIONS = Group((
        Option("--ray-address", metavar="auto|HOST:PORT",
               help="the Ray cluster to join: auto finds the one `ray start` started on this machine (default: start "
                    "a Ray instance for this suite alone)"),
        Option("--gpus-per-run", type=float, metavar="F",
               help="GPUs Ray gives each run; 0.25 packs four small runs on one GPU (default: 1 when the cluster has "
                    "GPUs and --device is not cpu, else 0)"),
        Option("--cpus-per-run", type=float, metavar="N",
               help="CPUs Ray gives each run, also its thread count (default: 1 beside a GPU, else all CPUs of the "
                    "smallest node)"),
    ), "ray", "each run a task on a Ray cluster (pip install -e \".[ray]\"); a task lost with its node is retried "
              "and resumes from its checkpoint. --results-dir (and --data-dir) must be the same path on every node.")

    @classmethod
    def from_options(cls, args) -> "RayLauncher":
        if args.device not in ("auto", "cpu", "cuda"):  # the devices are the cluster's, not this machine's
            raise UserError(f"--device {args.device} is not allowed with --backend ray; choose one of: auto, cpu, "
                            f"cuda (Ray assigns each run its GPU)")
        return cls(args.ray_address, args.device, args.gpus_per_run, args.cpus_per_run, args.jobs)

    def __init__(self, address: str | None = None, device: str = "auto", gpus_per_run: float | None = None,
                 cpus_per_run: float | None = None, jobs: int | None = None):
        try:
            import ray
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install -e \".[ray]\" (or pip install ray)") from None
        if gpus_per_run is not None and gpus_per_run < 0:
            raise UserError(f"--gpus-per-run {gpus_per_run:g} is not allowed: it must be at least 0")
        if gpus_per_run and device == "cpu":
            raise UserError(f"--gpus-per-run {gpus_per_run:g} with --device cpu: leave one of them out")
        if cpus_per_run is not None and cpus_per_run <= 0:
            raise UserError(f"--cpus-per-run {cpus_per_run:g} is not allowed: it must be more than 0")
        self.started_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise UserError(f"--ray-address {address}: cannot connect to a Ray cluster ({error}); start one "
                                f"with `ray start --head`, or leave --ray-address out for a local one") from None
            self.started_ray = True
        nodes = [node for node in ray.nodes() if node["Alive"]]
        self.nodes = nodes
        total_gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_run is None:  # with --device auto, a GPU per run where the cluster has GPUs
            gpus_per_run = 1.0 if total_gpus and device != "cpu" else 0.0
        if device == "cuda" and not gpus_per_run:
            self.close()
            raise UserError("--device cuda: the Ray cluster has no GPUs" if not total_gpus else
                            "--device cuda needs --gpus-per-run above 0")
        if cpus_per_run is None:  # on CPUs a run uses a whole machine, as locally; beside a GPU, one core
            cpus_per_run = 1.0 if gpus_per_run else min(node["Resources"].get("CPU", 1) for node in nodes)
        self.threads = max(1, math.floor(cpus_per_run))  # the child's OMP_NUM_THREADS
        if gpus_per_run > total_gpus:
            self.close()
            raise UserError(f"--gpus-per-run {gpus_per_run:g}: the Ray cluster has {total_gpus:g} GPUs")
        capacity = sum(math.floor(node["Resources"].get("CPU", 0) / cpus_per_run + 1e-9) for node in nodes)
        if gpus_per_run:
            capacity = min(capacity, sum(math.floor(node["Resources"].get("GPU", 0) / gpus_per_run + 1e-9)
                                         for node in nodes))
        if capacity < 1:
            self.close()
            raise UserError(f"--cpus-per-run {cpus_per_run:g}: no node of the Ray cluster has that many CPUs")
        # as many runs in flight as the cluster can hold at once; Ray picks the node and the GPU of each
        self.slots = ["cuda" if gpus_per_run else "cpu"] * (jobs or capacity)
        # a fraction of a GPU is that share of its memory; a CPU task's share of its node's RAM is not known here
        self.shares = [min(1.0, gpus_per_run) if gpus_per_run else 1.0] * len(self.slots)
        self.task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=RAY_RETRIES,
                               retry_exceptions=False)(_train_in_child)

    def prepare(self, results_dir: Path) -> None:
        """Stop unless every node writes into the results folder that this driver reads."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        directory = Path(results_dir).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        probes = {}
        for node in self.nodes:
            name = f".ray-probe-{uuid.uuid4().hex}"
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            task = ray.remote(num_cpus=0, max_retries=0)(_write_probe).options(scheduling_strategy=strategy)
            probes[name] = (node["NodeManagerAddress"], task.remote(str(directory), name))
        for name, (address, reference) in probes.items():
            try:
                ray.get(reference, timeout=120)
            except Exception as error:
                cause = getattr(error, "cause", None) or error
                raise UserError(f"--results-dir {directory} cannot be written from Ray node {address} "
                                f"({type(cause).__name__}: {cause}); the Ray backend needs a results folder that "
                                f"every node mounts at the same path") from None
            probe = directory / name
            if not probe.exists():
                raise UserError(f"--results-dir {directory} is not shared with Ray node {address}: a file it wrote "
                                f"there is not visible here; the Ray backend needs a results folder that every "
                                f"node mounts at the same path (NFS or similar)")
            probe.unlink()

    def submit(self, command: list[str], log_path: Path) -> RayJob:
        return RayJob(self.task.remote(command, str(Path(log_path).resolve()), self.threads))

    def close(self) -> None:
        import ray

        if self.started_ray:
            ray.shutdown()
            self.started_ray = False


# ---- the registry, as the command line sees it ----------------------------------------------------------------

LAUNCHERS = {launcher.name: launcher for launcher in (LocalLauncher, RayLauncher)}
BACKEND = Option("--backend", choices=tuple(LAUNCHERS), default="local",
                 help="where the runs execute: " + "; ".join(f"{name}: {launcher.OPTIONS.description}"
                                                             for name, launcher in LAUNCHERS.items()))
JOBS = Option("--jobs", type=int, metavar="N", help="trainings at once (default: one per visible GPU, 1 on CPU; "
                                                     "with Ray, as many as the cluster holds)")


def add_options(parser, backends: bool = True) -> None:
    """--jobs and, with `backends`, --backend and each launcher's own options, a group per launcher."""
    JOBS.add(parser)
    if not backends:
        return
    BACKEND.add(parser)
    for launcher in LAUNCHERS.values():
        if launcher.OPTIONS.options:
            Group(launcher.OPTIONS.options, f"--backend {launcher.name}", launcher.OPTIONS.description).add(parser)


def from_options(args) -> Launcher:
    """The launcher the parsed arguments ask for (a command without --backend: local), built from them."""
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} is not allowed: it must be at least 1")
    backend = getattr(args, "backend", "local")
    for name, launcher in LAUNCHERS.items():
        given = [option for option in launcher.OPTIONS.options if getattr(args, option.name, None) is not None]
        if name != backend and given:
            raise UserError(f"{given[0].flag} applies to --backend {name} only")
    return LAUNCHERS[backend].from_options(args)
