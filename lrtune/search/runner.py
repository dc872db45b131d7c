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
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrtune.errors import ConfigError
from lrtune.search.config import SearchConfig, refine_space
from lrtune.search.drivers import get_driver
from lrtune.search.pruners import first_prunable_epoch, pruning_note
from lrtune.search.results import SearchResult, rank_configs, rows_from_study
from lrtune.search.space import Range, Space, encode
from lrtune.search.storage import (
    CONFIG,
    INDEX,
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
    redact_url,
)
from lrtune.search.trial import (
    EventSink,
    InlineExecutor,
    PoolExecutor,
    SearchEvent,
    TrialJob,
    TrialOutcome,
    Worker,
    WorkerSetup,
    split_resources,
)

STUDY_PREFIX = "lrtune"
POLL_SECONDS = 0.2
WORKER_DIED = "the worker process died (out of memory, or killed)"


# -- the search ----------------------------------------------------------------------------
def study_name(cfg: SearchConfig, pass_name: str, seed: int) -> str:
    """Stable per config and task file, so workers on other machines join the same study.

    Each pass has one study per seed: a pruner then compares a trial only with trials of
    the same seed (same initial weights, same batch order), so a seed that happens to
    start badly does not get every configuration it runs pruned.

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
    return f"{STUDY_PREFIX}-{task.stem}-{h.hexdigest()[:8]}-{pass_name}-s{seed}"


# Per-unit rates: in a run `factor` times as long, rate ** (1 / factor) per unit keeps the
# decay over the whole run the same.
RATE_PARAMS: Mapping[str, str] = {"exponential": "gamma"}


def scale_schedule(spec: Mapping[str, Any], factor: float, steps_per_epoch: int) -> dict[str, Any]:
    """The spec laid out over a run `factor` times as long (the coarse pass of --refine).

    A schedule that decays after 4 and 8 of 12 epochs decays after 1/3 and 2/3 of a
    4-epoch coarse pass: the coarse pass compares the schedules' shapes, and its best
    point is kept in the full run's units. Epoch-counted schedules are converted to
    optimizer steps first (interval: step), so that short runs keep distinct shapes
    instead of rounding step_size 2 and 4 to the same single epoch.
    """
    from lrtune import schedules

    info = schedules.get_schedule(spec["name"])
    out = dict(spec)
    interval = out.get("interval") or info.default_interval
    per_unit = factor
    if interval == "epoch" and not info.epoch_only:
        out["interval"] = "step"
        per_unit = factor * steps_per_epoch
    for param in info.params:
        value = out.get(param.name)
        if value is None:
            continue
        if RATE_PARAMS.get(info.name) == param.name:
            out[param.name] = float(value) ** (1.0 / per_unit)
        elif param.unit and param.kind == "int_list":
            scaled: list[int] = []
            for v in value:
                v_new = max(1, round(v * per_unit))
                if not scaled or v_new > scaled[-1]:
                    scaled.append(v_new)
            out[param.name] = scaled
        elif param.unit and param.kind == "int":
            out[param.name] = max(1, round(value * per_unit))
    warmup = out.get("warmup")
    if isinstance(warmup, Mapping):
        w = {k: v for k, v in warmup.items() if k not in ("epochs", "steps")}
        if warmup.get("steps") is not None:
            w["steps"] = max(1, round(int(warmup["steps"]) * factor))
        elif warmup.get("epochs") is not None and out.get("interval") == "step":
            w["steps"] = max(1, round(float(warmup["epochs"]) * factor * steps_per_epoch))
        elif warmup.get("epochs") is not None:
            w["epochs"] = max(1, round(float(warmup["epochs"]) * factor))
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


def first_difference_epoch(curves: list[list[float]], spe: int, epochs: int) -> int:
    """1-based epoch in which two LR curves (one LR per optimizer step) first differ, or
    epochs + 1 when they never do."""
    if len(curves) < 2:
        return epochs + 1
    for e in range(epochs):
        window = [c[e * spe : (e + 1) * spe] for c in curves]
        ref = window[0]
        for other in window[1:]:
            if len(other) != len(ref) or any(
                not math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
                for a, b in zip(ref, other, strict=True)
            ):
                return e + 1
    return epochs + 1


def _space_kinds(space: Space) -> dict[str, str]:
    return {
        name: ("log" if dim.log else "range") if isinstance(dim, Range) else "choice"
        for name, dim in space.dims.items()
    }


@dataclass
class _Pass:
    """One pass (main, or coarse then refine): its space, its plan and a study per seed."""

    name: str
    studies: dict[int, Any]
    space: Space
    epochs: int
    plan: list[dict[str, Any]] = field(default_factory=list)
    prune_from: int = 1  # the first epoch a pruner may stop a trial (>= epochs: never)
    lr_differs_from: int = 1  # the first epoch in which two of the pass's LR curves differ
    cursor: int = 0  # round-robin over the seeds' studies
    rediagnose: str | None = None  # lrtune report: diagnose the stored curves again

    def trials(self, states: Any = None) -> list[Any]:
        """Trials of every seed's study (optionally only in these states)."""
        return [
            t for st in self.studies.values() for t in st.get_trials(deepcopy=False, states=states)
        ]

    def rows(self) -> list[Any]:
        """The pass's real trials as TrialRows, in plan order."""
        rows = [
            r
            for st in self.studies.values()
            for r in rows_from_study(st, self.name, self.epochs, self.rediagnose)
        ]
        return sorted(rows, key=lambda r: r.number)


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
        # What trials train with: the task file's optimizer() wins (set by `prepare`).
        self.optimizer = cfg.run.optimizer.name

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
            from lrtune.check import why_no_metric

            raise ConfigError(
                f"{self.cfg.run.source}: search.metric is val_metric, but "
                f"{why_no_metric(task)}; use metric: val_loss"
            )

    def _steps_per_epoch(self, task: Any) -> int:
        loader = task.train_loader(batch_size=self.cfg.run.batch_size)
        try:
            spe = len(loader)
        except TypeError:  # an IterableDataset: train() spreads max_steps over the epochs
            spe = math.ceil((self.cfg.run.max_steps or 1) / self.cfg.run.epochs)
        return max(1, spe)

    def _run_epochs(self, epochs: int, spe: int) -> int:
        """Epochs a trial actually lays its schedule over (max_steps caps the run)."""
        if self.cfg.run.max_steps is None:
            return epochs
        return max(1, min(epochs, math.ceil(self.cfg.run.max_steps / spe)))

    def _lr_auto(self, task: Any, study: Any) -> float:
        if LR_AUTO in study.user_attrs:
            return float(study.user_attrs[LR_AUTO])
        from lrtune.training import resolve_lr

        lr = resolve_lr(self.cfg.run, task)
        study.set_user_attr(LR_AUTO, lr)
        self.emit(SearchEvent("lr_auto", value=lr))
        return lr

    def _create_study(self, storage: Any, pass_name: str, seed: int) -> Any:
        import optuna

        s = self.cfg.settings
        return optuna.create_study(
            study_name=study_name(self.cfg, pass_name, seed),
            storage=storage,
            direction=s.direction,  # type: ignore[arg-type]
            sampler=optuna.samplers.RandomSampler(seed=s.seed),
            pruner=optuna.pruners.NopPruner(),  # the trials prune themselves (trial.py)
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
                schedules.plan(spec, spe, self._run_epochs(epochs, spe))
            except ConfigError as exc:
                at = ", ".join(f"{k}={v}" for k, v in point.items() if k != "lr")
                raise ConfigError(
                    f"{self.cfg.run.source}: schedule{f' ({at})' if at else ''} in a run of "
                    f"{epochs} epochs: {exc}"
                ) from None

    def _schedule_for(self, space: Space, point: Mapping[str, Any], pass_name: str) -> dict:
        _, spec = space.materialize(point)
        if pass_name == "coarse":
            assert self.prepared is not None
            factor = self.cfg.pass_epochs("coarse") / self.cfg.run.epochs
            spec = scale_schedule(spec, factor, self.prepared[1])
        return spec

    def _prune_from(self, p: _Pass, lr: float | None, spe: int) -> tuple[int, int]:
        """(the first epoch a pruner may stop a trial of the pass, the first epoch in which
        two of its LR curves differ); epochs + 1 for a curve that never differs.

        Before the curves differ every trial trains with the same LRs, so a pruner would
        only rank seed noise: in a grid over decay epochs, say, nothing differs until the
        first decay. `first_prunable_epoch` adds the minimum run before any pruning.
        """
        first = self._first_difference(p, lr, spe)
        return first_prunable_epoch(p.epochs, first), first

    def _first_difference(self, p: _Pass, lr: float | None, spe: int) -> int:
        from lrtune import schedules

        epochs = self._run_epochs(p.epochs, spe)
        curves = []
        for point in p.plan:
            base = float(point["lr"]) if "lr" in point else lr
            if base is None:
                return 1
            try:
                curves.append(
                    schedules.lr_curve(
                        self._schedule_for(p.space, point, p.name), base, spe, epochs
                    )
                )
            except (ConfigError, TypeError, ValueError):
                return 1  # cannot tell: allow pruning from the start
        return first_difference_epoch(curves, spe, epochs)

    def _pruning_note(self, p: _Pass) -> str:
        return pruning_note(
            self.cfg.settings.pruner, p.epochs, p.prune_from, p.lr_differs_from, len(p.plan)
        )

    def _enqueue(self, p: _Pass) -> None:
        """Enqueue every planned (point, seed) that has no trial yet (idempotent)."""
        seeds = self.cfg.settings.seeds
        for seed_index, seed in enumerate(seeds):
            study = p.studies[seed]
            if PLANNED in study.user_attrs and not self.resume:
                continue  # another process planned it (a shared --storage)
            have = live_keys(study.get_trials(deepcopy=False))
            for config, point in enumerate(p.plan):
                key = f"{config}/{seed}"
                if key in have:
                    continue
                study.enqueue_trial(
                    {k: encode(v) for k, v in point.items()},
                    user_attrs={
                        KEY: key,
                        INDEX: config * len(seeds) + seed_index,
                        POINT: json.dumps(point, sort_keys=True),
                        CONFIG: config,
                        SEED: seed,
                    },
                )
            study.set_user_attr(PLANNED, True)
            study.set_user_attr(SPACE, _space_text(p.space))

    # -- execution ---------------------------------------------------------------------
    def _next_job(self, p: _Pass, storage: Any, lr: float | None) -> tuple[Any, TrialJob] | None:
        """Ask the seeds' studies in turn for their next waiting trial (plan order)."""
        from optuna.trial import TrialState

        seeds = self.cfg.settings.seeds
        for _ in range(len(seeds)):
            seed = seeds[p.cursor % len(seeds)]
            p.cursor += 1
            study = p.studies[seed]
            while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                trial = study.ask()
                attrs = trial.user_attrs
                if KEY not in attrs:  # another process took the last waiting trial first
                    storage.set_trial_user_attr(trial._trial_id, ROLE, "spurious")
                    study.tell(trial, state=TrialState.FAIL)
                    break
                finished = {
                    str(t.user_attrs.get(KEY))
                    for t in study.get_trials(
                        deepcopy=False,
                        states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
                    )
                    if ROLE not in t.user_attrs
                }
                if attrs[KEY] in finished:  # enqueued twice by racing processes: run it once
                    storage.set_trial_user_attr(trial._trial_id, ROLE, "duplicate")
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                return trial, self._job(p, study, trial, lr)
        return None

    def _job(self, p: _Pass, study: Any, trial: Any, lr: float | None) -> TrialJob:
        attrs = trial.user_attrs
        point = json.loads(attrs[POINT])
        p.space.sample_params(trial)  # registers the params with Optuna
        trial_lr = float(point["lr"]) if "lr" in point else lr
        assert trial_lr is not None
        schedule = self._schedule_for(p.space, point, p.name)
        return TrialJob(
            pass_name=p.name,
            study_name=study.study_name,
            number=int(attrs[INDEX]),
            trial_id=trial._trial_id,
            config=int(attrs[CONFIG]),
            point=point,
            seed=int(attrs[SEED]),
            lr=trial_lr,
            schedule=schedule,
            epochs=p.epochs,
            prune_from=max(p.prune_from, self._warmup_epochs(schedule, p.epochs) + 1),
            pass_prune_from=p.prune_from,
            planned=len(p.plan),
        )

    def _warmup_epochs(self, schedule: Mapping[str, Any], epochs: int) -> int:
        """Epochs (rounded up) a trial's schedule spends warming up: no pruning before."""
        from lrtune import schedules

        assert self.prepared is not None
        spe = int(self.prepared[1])
        try:
            plan = schedules.plan(schedule, spe, self._run_epochs(epochs, spe))
        except ConfigError:
            return 0  # the trial fails on it with the message; nothing to wait for
        return math.ceil(plan.warmup_units * plan.unit_steps / spe)

    def _tell(self, p: _Pass, trial: Any, job: TrialJob, outcome: TrialOutcome) -> None:
        from optuna.trial import TrialState

        study = p.studies[job.seed]
        trial.set_user_attr(RESULT, outcome.to_attrs())
        if outcome.status == "complete":
            study.tell(trial, float(outcome.value))  # type: ignore[arg-type]
        elif outcome.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)
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
                for t in p.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
                if KEY in t.user_attrs and ROLE not in t.user_attrs
            ]
        )
        self.emit(
            SearchEvent(
                "pass_start",
                p.name,
                total=total,
                done=done,
                epochs=p.epochs,
                epoch=p.prune_from,
                note=self._pruning_note(p),
            )
        )
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
            threads, devices = split_resources(run.device, s.workers)
        return WorkerSetup(
            task_path=str(Path(run.task).resolve()),
            storage=self.storage_spec,
            pruner=s.pruner,
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
            metric_mode=run.metric_mode,
        )

    def _executor(self, task: Any, storage: Any) -> Any:
        """The executor for every pass: inline for one worker, else one process pool
        (spawning workers and importing torch costs seconds, so passes share it)."""
        if self._pool is not None and not self._pool.broken:
            return self._pool
        setup = self._worker_setup()
        if self.cfg.settings.workers == 1:
            self._pool = InlineExecutor(Worker(setup, task, storage, self.emit, setup.device))
        else:
            self._pool = PoolExecutor(setup, self.cfg.settings.workers, self.emit)
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
        from lrtune.doctor import optimizer_used

        task = self._load_task()
        spe = self._steps_per_epoch(task)
        self.prepared = (task, spe)
        self.optimizer = optimizer_used(task, self.cfg.run.optimizer.name).label
        first = "coarse" if self.cfg.settings.refine is not None else "main"
        self._validate_fit(self.cfg.space, self.cfg.pass_epochs(first), spe, first)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch of the task (loads it through `prepare` if needed)."""
        if self.prepared is None:
            self.prepare()
        assert self.prepared is not None
        return int(self.prepared[1])

    def run(self) -> SearchResult:
        """Run (or continue) every pass; returns what the storage holds at the end."""
        start = time.perf_counter()
        if self.prepared is None:
            self.prepare()
        assert self.prepared is not None
        task, spe = self.prepared
        storage = open_storage(self.storage_spec)
        s = self.cfg.settings
        names = self.pass_names()
        first = self._create_study(storage, names[0], s.seeds[0])
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
                else:
                    space = self.cfg.space
                studies = {seed: self._create_study(storage, name, seed) for seed in s.seeds}
                p = _Pass(name, studies, space, self.cfg.pass_epochs(name))
                p.plan = self._plan(space, name)
                p.prune_from, p.lr_differs_from = self._prune_from(p, lr, spe)
                self.passes.append(p)
                if self.resume:
                    for study in studies.values():
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

    def pass_names(self) -> list[str]:
        """The passes this search runs, in order."""
        return ["coarse", "refine"] if self.cfg.settings.refine is not None else ["main"]

    def study_names(self) -> dict[str, dict[str, str]]:
        """Per pass, the study of each seed (seed as text -> name), for result.json."""
        return {
            name: {str(seed): study_name(self.cfg, name, seed) for seed in self.cfg.settings.seeds}
            for name in self.pass_names()
        }

    def load(
        self,
        steps_per_epoch: int,
        *,
        studies: Mapping[str, Mapping[str, str]] | None = None,
        seconds: float = 0.0,
        ran_now: int = 0,
        optimizer: str | None = None,
    ) -> SearchResult:
        """The result the storage holds, as `run` would return it, without training anything.

        For `lrtune report`: every stored learning curve is diagnosed again with the current
        lrtune.diagnose. A search that was stopped or killed gives its partial result
        (`finished` False; trials it left RUNNING stay 'running').

        Args:
            steps_per_epoch: optimizer steps per epoch of the run (result.json has it).
            studies: per pass, the study name of each seed as the search recorded them
                (found by name otherwise, even when the task file changed since).
            seconds: the search's wall time, ran_now: its trials in its last invocation.
            optimizer: the optimizer the trials trained with, as result.json names it.

        Raises:
            ConfigError: the storage holds no trial of this search.
        """
        quiet_optuna()
        storage = open_storage(self.storage_spec)
        self.prepared = (None, steps_per_epoch)
        if optimizer:
            self.optimizer = optimizer
        self.launched = ran_now
        seeds = self.cfg.settings.seeds
        lr: float | None = self.cfg.space.lr if isinstance(self.cfg.space.lr, float) else None
        finished = True
        for name in self.pass_names():
            if name == "refine":
                best = self._best_point(self.passes[-1]) if self.passes else None
                if best is None:
                    break  # as `run`: nothing completed in the coarse pass, nothing to refine
                space = refine_space(self.cfg, best)
            else:
                space = self.cfg.space
            found = {seed: self._find_study(storage, name, seed, studies or {}) for seed in seeds}
            if any(st is None for st in found.values()):
                finished = False  # stopped before this pass (or a seed of it) began
            have = {seed: st for seed, st in found.items() if st is not None}
            if not have:
                break
            if self.cfg.space.lr == "auto" and not self.passes:  # the range test's pick
                auto = [st.user_attrs[LR_AUTO] for st in have.values() if LR_AUTO in st.user_attrs]
                lr = float(auto[0]) if auto else None
            p = _Pass(
                name, have, space, self.cfg.pass_epochs(name), rediagnose=self.cfg.run.metric_mode
            )
            p.plan = self._plan(space, name)
            p.prune_from, p.lr_differs_from = self._prune_from(p, lr, steps_per_epoch)
            self.passes.append(p)
            if not self._pass_complete(p) or len(p.rows()) < len(p.plan) * len(seeds):
                finished = False
        if not self.passes:
            raise ConfigError(
                f"{self.storage_spec}: holds no trial of this search ({self.cfg.run.source})"
            )
        return self._result(steps_per_epoch, lr, finished, seconds)

    def _find_study(
        self, storage: Any, pass_name: str, seed: int, recorded: Mapping[str, Mapping[str, str]]
    ) -> Any | None:
        """One seed's study of a pass: by its recorded name, by the name this config and task
        give, or (the run directory's own journal holds one search) by its pass and seed."""
        import optuna

        existing = {s.study_name for s in storage.get_all_studies()}
        names = [
            (recorded.get(pass_name) or {}).get(str(seed)),
            study_name(self.cfg, pass_name, seed),
        ]
        name = next((n for n in names if n in existing), None)
        if name is None and "://" not in self.storage_spec:
            suffix = f"-{pass_name}-s{seed}"
            alike = [n for n in existing if n.startswith(f"{STUDY_PREFIX}-") and n.endswith(suffix)]
            name = alike[0] if len(alike) == 1 else None
        if name is None:
            return None
        return optuna.load_study(
            study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )

    def _pass_complete(self, p: _Pass) -> bool:
        from optuna.trial import TrialState

        return not p.trials((TrialState.WAITING, TrialState.RUNNING))

    def _best_point(self, p: _Pass) -> dict[str, Any] | None:
        s = self.cfg.settings
        ranked = rank_configs(p.rows(), s.mode, s.metric, s.objective)
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
            optimizer=self.optimizer,
            spaces={p.name: _space_text(p.space) for p in self.passes},
            kinds={p.name: _space_kinds(p.space) for p in self.passes},
            prune_from={p.name: p.prune_from for p in self.passes},
            lr_differs_from={p.name: p.lr_differs_from for p in self.passes},
            pruning={p.name: self._pruning_note(p) for p in self.passes},
            run_dir=str(self.run_dir),
            storage=redact_url(self.storage_spec) if "://" in self.storage_spec else None,
            studies={
                p.name: {str(seed): st.study_name for seed, st in p.studies.items()}
                for p in self.passes
            },
        )
        for p in self.passes:
            rows = p.rows()
            result.trials.extend(rows)
            result.ranking[p.name] = rank_configs(rows, s.mode, s.metric, s.objective)
        return result


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
