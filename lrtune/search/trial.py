"""One trial of a search, in the search's process or in a worker process.

`run_trial(job, worker)` trains one (point, seed) with the shared loop
(`lrtune.training.train`), reports the search metric after every epoch to the study's
pruner (step = epoch) and returns a `TrialOutcome`; it never raises for what a trial can do
wrong. The executors run jobs inline (`--workers 1`) or in spawned worker processes, each
of which loads the task file and opens the storage once. Progress goes out as
`SearchEvent`s: directly inline, through a queue from workers.
"""

from __future__ import annotations

import math
import os
import queue as queue_mod
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from lrtune.errors import ConfigError
from lrtune.search.pruners import get_pruner
from lrtune.search.results import diagnosis_codes
from lrtune.search.storage import open_storage, quiet_optuna


# -- events (the engine's only way to the terminal) ----------------------------------------
@dataclass(frozen=True)
class SearchEvent:
    """Something the CLI may show.

    kind: 'lr_auto' (the range test picked `lr`), 'pass_start' (total = trials in the pass,
    done = already finished, note = when pruning may start), 'trial_start', 'epoch' (epoch,
    value), 'trial_end' (status, value, seconds, error), 'pass_end'.
    """

    kind: str
    pass_name: str = ""
    number: int | None = None
    config: int | None = None
    point: Mapping[str, Any] | None = None
    seed: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    value: float | None = None
    status: str | None = None
    seconds: float | None = None
    error: str | None = None
    total: int | None = None
    done: int | None = None
    note: str | None = None


EventSink = Callable[[SearchEvent], None]


# -- one trial (runs in the parent or in a worker process) ---------------------------------
@dataclass(frozen=True)
class TrialJob:
    """What a worker needs to run one trial (picklable)."""

    pass_name: str
    study_name: str
    number: int
    trial_id: int
    config: int
    point: Mapping[str, Any]
    seed: int
    lr: float
    schedule: Mapping[str, Any]
    epochs: int
    prune_from: int = 1  # first epoch at which the pruner may stop it (after its warmup)
    pass_prune_from: int = 1  # the pass's first prunable epoch (builds the pruner)
    planned: int = 1  # trials planned in the study (the median pruner's startup count)


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial produced (picklable, JSON-able via to_attrs)."""

    status: str
    value: float | None
    best: float | None
    final: float | None
    curve: list[dict[str, Any]]
    error: str | None
    seconds: float
    steps: int
    initial_loss: float | None
    diagnosis: list[str]
    lr: float
    schedule: Mapping[str, Any]

    def to_attrs(self) -> dict[str, Any]:
        """JSON-safe dict for the trial's user attributes (NaN/inf become None)."""
        from lrtune.report.rundir import _jsonable

        return dict(_jsonable(asdict(self)))


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker process needs besides the job (picklable)."""

    task_path: str
    storage: str
    pruner: str
    metric: str
    mode: str
    objective: str
    optimizer: str
    optimizer_params: Mapping[str, Any]
    batch_size: int | None
    device: str
    max_steps: int | None
    threads: int | None = None
    devices: tuple[str, ...] = ()
    metric_mode: str = "max"  # the task's val_metric direction (for the diagnosis)


@dataclass
class Worker:
    """Per-process state: the loaded task, the storage and the studies opened so far."""

    setup: WorkerSetup
    task: Any
    storage: Any
    notify: EventSink
    device: str
    studies: dict[str, Any] = field(default_factory=dict)

    def study(self, name: str, prune_from: int, planned: int) -> Any:
        """The pass's study, with its pruner (cached per study)."""
        import optuna

        if name not in self.studies:
            pruner = get_pruner(self.setup.pruner).build(planned, prune_from)
            self.studies[name] = optuna.load_study(
                study_name=name, storage=self.storage, pruner=pruner
            )
        return self.studies[name]


_WORKER: Worker | None = None


def _objective(curve: list[dict[str, Any]], metric: str, mode: str, objective: str) -> tuple:
    values = [r.get(metric) for r in curve]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    final = values[-1] if values and values[-1] is not None else None
    best = (min(finite) if mode == "min" else max(finite)) if finite else None
    value = final if objective == "final" else best
    return value, best, final


def run_trial(job: TrialJob, worker: Worker) -> TrialOutcome:
    """Train one trial, reporting one value per epoch to the study's pruner."""
    import optuna

    from lrtune.training import train

    setup = worker.setup
    study = worker.study(job.study_name, job.pass_prune_from, job.planned)
    trial = optuna.trial.Trial(study, job.trial_id)
    prune = setup.pruner != "none"

    def on_epoch(rec: Any) -> bool:
        value = getattr(rec, setup.metric)
        worker.notify(
            SearchEvent(
                "epoch",
                job.pass_name,
                number=job.number,
                config=job.config,
                seed=job.seed,
                epoch=rec.epoch,
                epochs=job.epochs,
                value=value,
            )
        )
        if value is None or not math.isfinite(value):
            return False
        trial.report(float(value), rec.epoch)
        if not prune or rec.epoch < job.prune_from or rec.epoch >= job.epochs:
            return False
        return bool(trial.should_prune())

    start = time.perf_counter()
    try:
        res = train(
            worker.task,
            lr=job.lr,
            schedule=job.schedule,
            epochs=job.epochs,
            optimizer=setup.optimizer,
            optimizer_params=setup.optimizer_params,
            batch_size=setup.batch_size,
            seed=job.seed,
            device=worker.device,
            max_steps=setup.max_steps,
            on_epoch=on_epoch,
        )
    except ConfigError as exc:  # a schedule that does not fit this run
        return TrialOutcome(
            "failed",
            None,
            None,
            None,
            [],
            str(exc),
            time.perf_counter() - start,
            0,
            None,
            [],
            job.lr,
            job.schedule,
        )
    curve = [r.to_dict() for r in res.epochs]
    value, best, final = _objective(curve, setup.metric, setup.mode, setup.objective)
    status, error = res.status, res.error
    if status == "complete" and (value is None or not math.isfinite(value)):
        status = "failed"
        error = f"no finite {setup.metric} to rank this trial by"
    return TrialOutcome(
        status=status,
        value=value,
        best=best,
        final=final,
        curve=curve,
        error=error,
        seconds=res.seconds,
        steps=res.steps,
        initial_loss=res.initial_loss,
        diagnosis=diagnosis_codes(
            res.epochs,
            initial_loss=res.initial_loss,
            status=res.status,
            metric_mode=setup.metric_mode,
        ),
        lr=job.lr,
        schedule=dict(job.schedule),
    )


def _init_worker(setup: WorkerSetup, events: Any, counter: Any) -> None:
    """Process-pool initializer: load the task file and open the storage once per worker."""
    global _WORKER
    import torch

    from lrtune.task import load_task

    quiet_optuna()
    if setup.threads:
        torch.set_num_threads(setup.threads)
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    device = setup.devices[index % len(setup.devices)] if setup.devices else setup.device

    def notify(event: SearchEvent) -> None:
        events.put(event)

    _WORKER = Worker(
        setup=setup,
        task=load_task(setup.task_path, check=False),
        storage=open_storage(setup.storage),
        notify=notify,
        device=device,
    )


def _run_in_worker(job: TrialJob) -> TrialOutcome:
    assert _WORKER is not None, "worker not initialised"
    return run_trial(job, _WORKER)


# -- executors -----------------------------------------------------------------------------
class InlineExecutor:
    """Runs each job at submit time in this process (--workers 1)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.broken = False

    def submit(self, job: TrialJob) -> Future[TrialOutcome]:
        fut: Future[TrialOutcome] = Future()
        fut.set_result(run_trial(job, self.worker))
        return fut

    def drain(self) -> None:
        """Events are delivered directly: nothing to drain."""

    def shutdown(self, abort: bool = False) -> None:
        """Nothing to stop."""


class PoolExecutor:
    """Runs jobs in `workers` spawned processes; epoch events come back through a queue."""

    def __init__(self, setup: WorkerSetup, workers: int, sink: EventSink) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.broken = False
        self.sink = sink
        self.events = ctx.Queue()
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(setup, self.events, ctx.Value("i", 0)),
        )

    def submit(self, job: TrialJob) -> Future[TrialOutcome]:
        return self.pool.submit(_run_in_worker, job)

    def drain(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue_mod.Empty:
                return
            self.sink(event)

    def shutdown(self, abort: bool = False) -> None:
        self.pool.shutdown(wait=not abort, cancel_futures=True)
        self.drain()


def split_resources(device: str, workers: int) -> tuple[int | None, tuple[str, ...]]:
    """Torch threads per worker on CPU, or one GPU per worker when several are present."""
    import torch

    from lrtune.runtime import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        return None, tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if dev.type == "cpu":
        return max(1, (os.cpu_count() or 1) // workers), ()
    return None, ()
