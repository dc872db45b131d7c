"""The search engine: passes of trials on Optuna, driven with ask/tell.

lrtune owns the loop: it plans every (point, seed) of a pass up front and enqueues them
in the study (so each runs exactly once, whatever the number of workers, and a resumed
search knows exactly what is missing), asks Optuna for the next waiting trial, trains it
with the shared loop (`lrtune.training.train`) in this process or in a worker process,
reports one intermediate value per epoch to the pruner, and tells Optuna the outcome. A
trial that fails or diverges is recorded as such and the search goes on.

Who decides what (so that many processes agree): the plan and the tells happen in the
process that runs `run_search`; workers only train, report intermediate values and ask
the pruner. Progress reaches the terminal through the `on_event` callback; this module
never prints.
"""

from __future__ import annotations

import json
import math
import os
import queue as queue_mod
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lrtune.errors import ConfigError
from lrtune.search.config import SearchConfig, refine_space
from lrtune.search.drivers import get_driver
from lrtune.search.pruners import get_pruner
from lrtune.search.results import SearchResult, rank_configs, rows_from_study
from lrtune.search.space import Range, Space, encode
from lrtune.search.storage import (
    CONFIG,
    KEY,
    LR_AUTO,
    PLANNED,
    POINT,
    RESULT,
    ROLE,
    SEED,
    SPACE,
    journal_path,
    live_keys,
    open_storage,
    quiet_optuna,
    recover_running,
)

STUDY_PREFIX = "lrtune"
POLL_SECONDS = 0.2
WORKER_DIED = "the worker process died (out of memory, or killed)"


# -- events (the engine's only way to the terminal) ----------------------------------------
@dataclass(frozen=True)
class SearchEvent:
    """Something the CLI may show.

    kind: 'lr_auto' (the range test picked `lr`), 'pass_start' (total = trials in the pass,
    done = already finished), 'trial_start', 'epoch' (epoch, value), 'trial_end' (status,
    value, seconds, error), 'pass_end'.
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
    n_trials: int
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


@dataclass
class _Worker:
    """Per-process state: the loaded task, the storage and the studies opened so far."""

    setup: WorkerSetup
    task: Any
    storage: Any
    notify: EventSink
    device: str
    studies: dict[str, Any] = field(default_factory=dict)

    def study(self, name: str) -> Any:
        import optuna

        if name not in self.studies:
            pruner = get_pruner(self.setup.pruner).build(self.setup.n_trials)
            self.studies[name] = optuna.load_study(
                study_name=name, storage=self.storage, pruner=pruner
            )
        return self.studies[name]


_WORKER: _Worker | None = None


def _objective(curve: list[dict[str, Any]], metric: str, mode: str, objective: str) -> tuple:
    values = [r.get(metric) for r in curve]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    final = values[-1] if values and values[-1] is not None else None
    best = (min(finite) if mode == "min" else max(finite)) if finite else None
    value = final if objective == "final" else best
    return value, best, final


def _diagnosis(result: Any, mode: str) -> list[str]:
    """Pattern codes from lrtune.diagnose (empty when it is unavailable or says nothing)."""
    try:
        from lrtune.diagnose import diagnose_curves
    except ImportError:  # pragma: no cover - ships with lrtune
        return []
    try:
        findings = diagnose_curves(
            result.epochs,
            initial_loss=result.initial_loss,
            metric_mode=mode,
            diverged=result.status == "diverged",
        )
    except Exception:  # diagnosis is advice: never let it fail a trial
        return []
    return [f.code for f in findings]


def run_trial(job: TrialJob, worker: _Worker) -> TrialOutcome:
    """Train one trial, reporting one value per epoch to the study's pruner."""
    import optuna

    from lrtune.training import train

    setup = worker.setup
    trial = optuna.trial.Trial(worker.study(job.study_name), job.trial_id)
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
        return prune and rec.epoch < job.epochs and trial.should_prune()

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
        diagnosis=_diagnosis(res, setup.mode),
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

    _WORKER = _Worker(
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
class _InlineExecutor:
    """Runs each job at submit time in this process (--workers 1)."""

    def __init__(self, worker: _Worker) -> None:
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


class _PoolExecutor:
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


# -- the search ----------------------------------------------------------------------------
def study_name(cfg: SearchConfig, pass_name: str) -> str:
    """Stable per config and task file, so workers on other machines join the same study.

    The digest covers the config (less `workers` and the task's path, which differ from
    machine to machine) and the task file's content.
    """
    import hashlib

    data = {k: v for k, v in cfg.data.items() if k != "task"}
    search = dict(data.get("search") or {})
    search.pop("workers", None)
    data["search"] = search
    task = Path(cfg.run.task)
    h = hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode())
    h.update(task.read_bytes() if task.exists() else b"")
    return f"{STUDY_PREFIX}-{task.stem}-{h.hexdigest()[:8]}-{pass_name}"


def scale_schedule(spec: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """The spec with every run-length parameter scaled by `factor` (the coarse pass).

    A schedule that decays at epochs 30 and 60 of 90 decays at 3 and 6 of 9 in a coarse
    pass of 9 epochs: the coarse pass compares the schedules' shapes, and its best point
    is kept in the full run's units.
    """
    from lrtune import schedules

    info = schedules.get_schedule(spec["name"])
    out = dict(spec)
    for param in info.params:
        value = out.get(param.name)
        if not param.unit or value is None:
            continue
        if param.kind == "int_list":
            scaled: list[int] = []
            for v in value:
                s = max(1, round(v * factor))
                if not scaled or s > scaled[-1]:
                    scaled.append(s)
            out[param.name] = scaled
        elif param.kind == "int":
            out[param.name] = max(1, round(value * factor))
    warmup = out.get("warmup")
    if isinstance(warmup, Mapping):
        w = dict(warmup)
        if "epochs" in w and w["epochs"] is not None:
            w["epochs"] = max(1, round(float(w["epochs"]) * factor))
        if "steps" in w and w["steps"] is not None:
            w["steps"] = max(1, round(int(w["steps"]) * factor))
        out["warmup"] = w
    return out


def _space_text(space: Space) -> dict[str, str]:
    out = {}
    for name, dim in space.dims.items():
        if isinstance(dim, Range):
            kind = "log " if dim.log else ""
            kind += "int " if dim.int else ""
            out[name] = f"{kind}[{dim.low:g}, {dim.high:g}]"
        else:
            out[name] = "[" + ", ".join(str(v) for v in dim.values) + "]"
    return out


def _space_kinds(space: Space) -> dict[str, str]:
    return {
        name: ("log" if dim.log else "range") if isinstance(dim, Range) else "choice"
        for name, dim in space.dims.items()
    }


@dataclass
class _Pass:
    name: str
    study: Any
    space: Space
    epochs: int
    plan: list[dict[str, Any]]


class Search:
    """One invocation of `lrtune search` (fresh, joined via --storage, or --resume).

    Args:
        cfg: the validated config.
        run_dir: where the embedded storage lives (outputs are written by the caller).
        storage: a database URL, or None for RUN_DIR/study.journal.
        resume: fail and re-queue trials left RUNNING by a dead process first.
        max_trials: stop after this many trials in this invocation (resume later).
        on_event: progress callback.
    """

    def __init__(
        self,
        cfg: SearchConfig,
        run_dir: Path,
        *,
        storage: str | None = None,
        resume: bool = False,
        max_trials: int | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.storage_spec = storage or str(journal_path(self.run_dir))
        self.resume = resume
        self.max_trials = max_trials
        self.emit: EventSink = on_event or (lambda e: None)
        self.launched = 0
        self.passes: list[_Pass] = []
        self._pool: Any = None
        self.prepared: tuple[Any, int] | None = None

    # -- setup -------------------------------------------------------------------------
    def _load_task(self) -> Any:
        from lrtune.task import load_task

        task = load_task(self.cfg.run.task)
        metric = self.cfg.settings.metric
        if metric != "train_loss" and not task.has_val:
            raise ConfigError(
                f"{self.cfg.run.source}: search.metric is {metric}, but {task.path} has no "
                "val_data(): add one, or set search.metric: train_loss"
            )
        if metric == "val_metric":
            self._check_metric(task)
        return task

    def _check_metric(self, task: Any) -> None:
        """One validation batch, no training: is there a metric at all?"""
        from lrtune.runtime import resolve_device, seed_everything

        seed_everything(0)
        dev = resolve_device(self.cfg.run.device)
        model = task.build_model().to(dev)
        loader = task.val_loader(batch_size=self.cfg.run.batch_size)
        _, value = task.evaluate(model, loader, dev, max_batches=1)
        if value is None:
            raise ConfigError(
                f"{self.cfg.run.source}: search.metric is val_metric, but {task.path} has no "
                "metric (define metric(output, target), or use val_loss)"
            )

    def _steps_per_epoch(self, task: Any) -> int:
        loader = task.train_loader(batch_size=self.cfg.run.batch_size)
        try:
            spe = len(loader)
        except TypeError:
            spe = max(1, math.ceil((self.cfg.run.max_steps or 1) / self.cfg.run.epochs))
        if self.cfg.run.max_steps:
            spe = min(spe, self.cfg.run.max_steps)
        return max(1, spe)

    def _lr_auto(self, task: Any, study: Any) -> float:
        if LR_AUTO in study.user_attrs:
            return float(study.user_attrs[LR_AUTO])
        from lrtune.training import resolve_lr

        lr = resolve_lr(self.cfg.run, task)
        study.set_user_attr(LR_AUTO, lr)
        self.emit(SearchEvent("lr_auto", value=lr))
        return lr

    def _create_study(self, storage: Any, pass_name: str, n_trials: int) -> Any:
        import optuna

        s = self.cfg.settings
        return optuna.create_study(
            study_name=study_name(self.cfg, pass_name),
            storage=storage,
            direction=s.direction,  # type: ignore[arg-type]
            sampler=optuna.samplers.RandomSampler(seed=s.seed),
            pruner=get_pruner(s.pruner).build(n_trials),
            load_if_exists=True,
        )

    def _plan(self, space: Space, pass_name: str) -> list[dict[str, Any]]:
        s = self.cfg.settings
        n = s.trials or 0
        seed = s.seed
        if pass_name == "refine":
            n = (s.refine.trials if s.refine and s.refine.trials else n) or 0
            seed = s.seed + 1
        return get_driver(s.method).plan(space, n, seed)

    def _validate_fit(self, space: Space, epochs: int, spe: int, pass_name: str) -> None:
        """Every schedule of the pass must fit the run (a warmup shorter than it, ...)."""
        from lrtune import schedules

        points = space.grid() if self.cfg.settings.method == "grid" else space.corners()
        for point in points:
            spec = self._schedule_for(space, point, pass_name)
            try:
                schedules.plan(spec, spe, epochs)
            except ConfigError as exc:
                at = ", ".join(f"{k}={v}" for k, v in point.items() if k != "lr")
                raise ConfigError(
                    f"{self.cfg.run.source}: schedule{f' ({at})' if at else ''} in a run of "
                    f"{epochs} epochs: {exc}"
                ) from None

    def _schedule_for(self, space: Space, point: Mapping[str, Any], pass_name: str) -> dict:
        _, spec = space.materialize(point)
        if pass_name == "coarse":
            spec = scale_schedule(spec, self.cfg.pass_epochs("coarse") / self.cfg.run.epochs)
        return spec

    def _enqueue(self, p: _Pass) -> None:
        """Enqueue every planned (point, seed) that has no trial yet (idempotent)."""
        if PLANNED in p.study.user_attrs and not self.resume:
            return  # another process planned it (a shared --storage)
        have = live_keys(p.study.get_trials(deepcopy=False))
        for config, point in enumerate(p.plan):
            for seed in self.cfg.settings.seeds:
                key = f"{config}/{seed}"
                if key in have:
                    continue
                params = {k: encode(v) for k, v in point.items()}
                p.study.enqueue_trial(
                    params,
                    user_attrs={
                        KEY: key,
                        POINT: json.dumps(point, sort_keys=True),
                        CONFIG: config,
                        SEED: seed,
                    },
                )
        p.study.set_user_attr(PLANNED, True)
        p.study.set_user_attr(SPACE, _space_text(p.space))

    # -- execution ---------------------------------------------------------------------
    def _next_job(self, p: _Pass, storage: Any, lr: float | None) -> tuple[Any, TrialJob] | None:
        from optuna.trial import TrialState

        while True:
            if not p.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
            trial = p.study.ask()
            attrs = trial.user_attrs
            if KEY not in attrs:  # another process took the last waiting trial first
                storage.set_trial_user_attr(trial._trial_id, ROLE, "spurious")
                p.study.tell(trial, state=TrialState.FAIL)
                return None
            key = attrs[KEY]
            finished = {
                str(t.user_attrs.get(KEY))
                for t in p.study.get_trials(
                    deepcopy=False,
                    states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
                )
                if ROLE not in t.user_attrs
            }
            if key in finished:  # enqueued twice by racing processes: run it once
                storage.set_trial_user_attr(trial._trial_id, ROLE, "duplicate")
                p.study.tell(trial, state=TrialState.FAIL)
                continue
            point = json.loads(attrs[POINT])
            p.space.sample_params(trial)  # registers the params with Optuna
            trial_lr = float(point["lr"]) if "lr" in point else lr
            assert trial_lr is not None
            job = TrialJob(
                pass_name=p.name,
                study_name=p.study.study_name,
                number=trial.number,
                trial_id=trial._trial_id,
                config=int(attrs[CONFIG]),
                point=point,
                seed=int(attrs[SEED]),
                lr=trial_lr,
                schedule=self._schedule_for(p.space, point, p.name),
                epochs=p.epochs,
            )
            return trial, job

    def _tell(self, p: _Pass, trial: Any, job: TrialJob, outcome: TrialOutcome) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr(RESULT, outcome.to_attrs())
        if outcome.status == "complete":
            p.study.tell(trial, float(outcome.value))  # type: ignore[arg-type]
        elif outcome.status == "pruned":
            p.study.tell(trial, state=TrialState.PRUNED)
        else:
            p.study.tell(trial, state=TrialState.FAIL)
        self.emit(
            SearchEvent(
                "trial_end",
                p.name,
                number=job.number,
                config=job.config,
                point=job.point,
                seed=job.seed,
                epoch=len(outcome.curve),
                epochs=job.epochs,
                value=outcome.value,
                status=outcome.status,
                seconds=outcome.seconds,
                error=outcome.error,
            )
        )

    def _budget_left(self) -> bool:
        return self.max_trials is None or self.launched < self.max_trials

    def _execute(self, p: _Pass, storage: Any, lr: float | None, task: Any) -> None:
        from optuna.trial import TrialState

        total = len(p.plan) * len(self.cfg.settings.seeds)
        done = len(
            [
                t
                for t in p.study.get_trials(
                    deepcopy=False,
                    states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
                )
                if KEY in t.user_attrs and ROLE not in t.user_attrs
            ]
        )
        self.emit(SearchEvent("pass_start", p.name, total=total, done=done, epochs=p.epochs))
        running: dict[Future[TrialOutcome], tuple[Any, TrialJob]] = {}
        try:
            while True:
                executor = self._executor(task, storage)
                while len(running) < self.cfg.settings.workers and self._budget_left():
                    nxt = self._next_job(p, storage, lr)
                    if nxt is None:
                        break
                    trial, job = nxt
                    self.launched += 1
                    self.emit(
                        SearchEvent(
                            "trial_start",
                            p.name,
                            number=job.number,
                            config=job.config,
                            point=job.point,
                            seed=job.seed,
                            epochs=job.epochs,
                        )
                    )
                    running[executor.submit(job)] = (trial, job)
                if not running:
                    break
                finished, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                executor.drain()
                for fut in finished:
                    trial, job = running.pop(fut)
                    outcome = self._outcome(fut, job)
                    if outcome.error == WORKER_DIED:
                        executor.broken = True  # the pool is unusable: the next loop respawns it
                    self._tell(p, trial, job, outcome)
        except BaseException:
            if self._pool is not None:
                self._pool.broken = True  # Ctrl-C or a bug: stop the workers, don't wait
            raise
        self.emit(SearchEvent("pass_end", p.name))

    @staticmethod
    def _outcome(fut: Future[TrialOutcome], job: TrialJob) -> TrialOutcome:
        try:
            return fut.result()
        except BrokenProcessPool:
            error = WORKER_DIED
        except Exception as exc:  # a bug in the worker: record it, keep searching
            error = f"{type(exc).__name__}: {exc}"
        return TrialOutcome(
            "failed", None, None, None, [], error, 0.0, 0, None, [], job.lr, job.schedule
        )

    def _worker_setup(self) -> WorkerSetup:
        s, run = self.cfg.settings, self.cfg.run
        threads: int | None = None
        devices: tuple[str, ...] = ()
        if s.workers > 1:
            threads, devices = _split_resources(run.device, s.workers)
        return WorkerSetup(
            task_path=str(Path(run.task).resolve()),
            storage=self.storage_spec,
            pruner=s.pruner,
            n_trials=self.cfg.n_trials(),
            metric=s.metric,
            mode=s.mode,
            objective=s.objective,
            optimizer=run.optimizer.name,
            optimizer_params=dict(run.optimizer.params),
            batch_size=run.batch_size,
            device=run.device,
            max_steps=run.max_steps,
            threads=threads,
            devices=devices,
        )

    def _executor(self, task: Any, storage: Any) -> Any:
        """The executor for every pass: inline for one worker, else one process pool
        (spawning workers and importing torch costs seconds, so passes share it)."""
        if self._pool is not None and not self._pool.broken:
            return self._pool
        setup = self._worker_setup()
        if self.cfg.settings.workers == 1:
            self._pool = _InlineExecutor(_Worker(setup, task, storage, self.emit, setup.device))
        else:
            self._pool = _PoolExecutor(setup, self.cfg.settings.workers, self.emit)
        return self._pool

    def set_run_dir(self, run_dir: Path) -> None:
        """Where the embedded storage lives (unless a --storage URL was given)."""
        self.run_dir = Path(run_dir)
        if "://" not in self.storage_spec:
            self.storage_spec = str(journal_path(self.run_dir))

    def prepare(self) -> None:
        """Every check that needs the task file, before any training (a metric the task
        lacks, a schedule that does not fit the run); the CLI calls it before it creates
        the run directory.

        Raises:
            ConfigError, TaskError: one line each.
        """
        quiet_optuna()
        task = self._load_task()
        spe = self._steps_per_epoch(task)
        first = "coarse" if self.cfg.settings.refine is not None else "main"
        self._validate_fit(self.cfg.space, self.cfg.pass_epochs(first), spe, first)
        self.prepared = (task, spe)

    def run(self) -> SearchResult:
        """Run (or continue) every pass; returns what the storage holds at the end."""
        start = time.perf_counter()
        if self.prepared is None:
            self.prepare()
        assert self.prepared is not None
        task, spe = self.prepared
        storage = open_storage(self.storage_spec)
        s = self.cfg.settings
        names = ["coarse", "refine"] if s.refine is not None else ["main"]
        first = self._create_study(storage, names[0], self.cfg.n_trials())
        lr: float | None = None
        if self.cfg.space.lr == "auto":
            lr = self._lr_auto(task, first)
        elif isinstance(self.cfg.space.lr, float):
            lr = self.cfg.space.lr
        finished = True
        try:
            for name in names:
                if name == "refine":
                    best = self._best_point(self.passes[-1])
                    if best is None:
                        break  # nothing completed in the coarse pass: nothing to refine
                    space = refine_space(self.cfg, best)
                    self._validate_fit(space, self.cfg.pass_epochs(name), spe, name)
                    study = self._create_study(storage, name, self.cfg.n_trials())
                else:
                    space, study = self.cfg.space, first
                p = _Pass(name, study, space, self.cfg.pass_epochs(name), [])
                p.plan = self._plan(space, name)
                self.passes.append(p)
                if self.resume:
                    recover_running(study, storage)
                self._enqueue(p)
                self._execute(p, storage, lr, task)
                if not self._pass_complete(p):
                    finished = False
                    break
        finally:
            if self._pool is not None:
                self._pool.shutdown(abort=self._pool.broken)
                self._pool = None
        return self._result(spe, lr, finished, time.perf_counter() - start)

    def _pass_complete(self, p: _Pass) -> bool:
        from optuna.trial import TrialState

        return not p.study.get_trials(
            deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)
        )

    def _best_point(self, p: _Pass) -> dict[str, Any] | None:
        ranked = rank_configs(rows_from_study(p.study, p.name, p.epochs), self.cfg.settings.mode)
        top = [c for c in ranked if c.rank is not None]
        return dict(top[0].point) if top else None

    def _result(self, spe: int, lr: float | None, finished: bool, seconds: float) -> SearchResult:
        s = self.cfg.settings
        result = SearchResult(
            passes=[p.name for p in self.passes],
            names=self.cfg.space.names,
            metric=s.metric,
            mode=s.mode,
            objective=s.objective,
            epochs={p.name: p.epochs for p in self.passes},
            steps_per_epoch=spe,
            lr_auto=lr if self.cfg.space.lr == "auto" else None,
            finished=finished,
            ran_now=self.launched,
            seconds=seconds,
            optimizer=self.cfg.run.optimizer.name,
            spaces={p.name: _space_text(p.space) for p in self.passes},
            kinds={p.name: _space_kinds(p.space) for p in self.passes},
            run_dir=str(self.run_dir),
        )
        for p in self.passes:
            rows = rows_from_study(p.study, p.name, p.epochs)
            result.trials.extend(rows)
            result.ranking[p.name] = rank_configs(rows, s.mode)
        return result


def _split_resources(device: str, workers: int) -> tuple[int | None, tuple[str, ...]]:
    """Torch threads per worker on CPU, or one GPU per worker when several are present."""
    import torch

    from lrtune.runtime import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        return None, tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if dev.type == "cpu":
        return max(1, (os.cpu_count() or 1) // workers), ()
    return None, ()


def run_search(
    cfg: SearchConfig,
    run_dir: str | Path,
    *,
    storage: str | None = None,
    resume: bool = False,
    max_trials: int | None = None,
    on_event: EventSink | None = None,
) -> SearchResult:
    """Run a search (or continue one) and return its results.

    Args:
        cfg: a validated search config.
        run_dir: the run directory (holds the embedded storage unless `storage` is given).
        storage: a database URL shared by workers on many machines.
        resume: first fail and re-queue the trials a killed search left RUNNING.
        max_trials: run at most this many trials now (the rest later, with --resume).
        on_event: progress callback (SearchEvent).

    Returns:
        The SearchResult; `finished` is False when the budget stopped it early.

    Raises:
        ConfigError: the config does not fit the task (a metric it lacks, a schedule that
            does not fit the run), found before any training.
    """
    return Search(
        cfg, Path(run_dir), storage=storage, resume=resume, max_trials=max_trials, on_event=on_event
    ).run()
