"""Search results as plain data, rebuilt from the Optuna storage (so resume and `lrtune
report` see exactly what a live search saw).

A *trial* is one training run (a point and a seed); a *configuration* is a point, whose
trials differ only by seed. Configurations are ranked by the mean objective over their
completed seeds (a pruner may stop some seeds of a configuration); a configuration with
no completed seed is not ranked. Configurations tied on it (validation accuracy on a small
set often is) are ordered by a second number (`tie_break_name`), and marked (`tied_from`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lrtune.search.storage import CONFIG, INDEX, KEY, POINT, RESULT, ROLE, SEED

STATES = ("complete", "pruned", "diverged", "failed", "running", "waiting")


@dataclass(frozen=True)
class TrialRow:
    """One trial as the reports see it."""

    pass_name: str
    number: int
    config: int
    point: Mapping[str, Any]
    seed: int
    status: str
    value: float | None = None
    best: float | None = None
    final: float | None = None
    epochs_run: int = 0
    epochs_planned: int = 0
    seconds: float = 0.0
    error: str | None = None
    lr: float | None = None
    schedule: Mapping[str, Any] = field(default_factory=dict)
    curve: Sequence[Mapping[str, Any]] = ()
    diagnosis: Sequence[str] = ()


@dataclass(frozen=True)
class ConfigSummary:
    """One configuration (a point) across its seeds."""

    pass_name: str
    config: int
    point: Mapping[str, Any]
    lr: float | None
    schedule: Mapping[str, Any]
    trials: tuple[TrialRow, ...]
    mean: float | None
    std: float | None
    rank: int | None
    secondary: float | None = None  # the tie-break value (`tie_break_name`), lower first
    tied_from: int | None = None  # tied on the mean: the rank of the first of its tie group

    @property
    def values(self) -> list[float]:
        """The objective of each completed seed."""
        return [t.value for t in self.trials if t.status == "complete" and t.value is not None]

    @property
    def seeds_text(self) -> str:
        """'2/2' completed seeds."""
        return f"{len(self.values)}/{len(self.trials)}"

    @property
    def statuses(self) -> dict[str, int]:
        """How many of its trials ended in each state."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out


@dataclass
class SearchResult:
    """Everything a search produced, for the writers and the plots.

    Attributes:
        passes: pass names in order ('main', or 'coarse' then 'refine').
        names: searched parameter names.
        metric, mode, objective: what was optimised, and how.
        epochs: epochs per pass.
        steps_per_epoch: optimizer steps per epoch (for LR curves).
        lr_auto: the range test's LR when the config said `lr: auto`.
        trials: every real trial (abandoned/duplicate ones left out), all passes.
        ranking: per pass, configurations best first (unranked ones last).
        finished: every planned trial of every pass has run.
        ran_now: trials this invocation ran.
        seconds: wall time of this invocation.
        optimizer: the optimizer the trials trained with ('adam', or 'AdamW from the task
            file' when the task file defines optimizer()).
        spaces: per pass, the searched dimensions in words (refine narrows them).
        kinds: per pass, each dimension's kind: 'choice', 'range' or 'log' (a log range).
        prune_from: per pass, the first epoch a pruner may stop a trial
            (`lrtune.search.pruners.first_prunable_epoch`; >= epochs: never).
        lr_differs_from: per pass, the first epoch in which two of its LR curves differ
            (epochs + 1 when they never do).
        pruning: per pass, when its trials may be stopped early and why not sooner.
        run_dir: the run directory.
        storage: the database URL without its password (None: the run directory's journal).
        studies: per pass, the Optuna study of each seed (seed as text -> study name).
    """

    passes: list[str]
    names: list[str]
    metric: str
    mode: str
    objective: str
    epochs: dict[str, int]
    steps_per_epoch: int
    lr_auto: float | None = None
    trials: list[TrialRow] = field(default_factory=list)
    ranking: dict[str, list[ConfigSummary]] = field(default_factory=dict)
    finished: bool = True
    ran_now: int = 0
    seconds: float = 0.0
    optimizer: str = "sgd"
    spaces: dict[str, dict[str, str]] = field(default_factory=dict)
    kinds: dict[str, dict[str, str]] = field(default_factory=dict)
    prune_from: dict[str, int] = field(default_factory=dict)
    lr_differs_from: dict[str, int] = field(default_factory=dict)
    pruning: dict[str, str] = field(default_factory=dict)
    run_dir: str = ""
    storage: str | None = None
    studies: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def final_pass(self) -> str:
        """The pass whose ranking names the best configuration."""
        return self.passes[-1]

    @property
    def best(self) -> ConfigSummary | None:
        """The top-ranked configuration of the last pass that has one."""
        for name in reversed(self.passes):
            ranked = [c for c in self.ranking.get(name, []) if c.rank is not None]
            if ranked:
                return ranked[0]
        return None

    def counts(self, pass_name: str | None = None) -> dict[str, int]:
        """Trials per state (one pass, or all)."""
        out = {s: 0 for s in STATES}
        for t in self.trials:
            if pass_name is None or t.pass_name == pass_name:
                out[t.status] = out.get(t.status, 0) + 1
        return out

    @property
    def n_complete(self) -> int:
        """Trials that completed (over all passes)."""
        return sum(1 for t in self.trials if t.status == "complete")

    def epochs_saved(self) -> dict[str, int]:
        """Epochs run, epochs a full run of every trial would take, and epochs pruning saved."""
        run = sum(t.epochs_run for t in self.trials if t.status not in ("waiting", "running"))
        full = sum(t.epochs_planned for t in self.trials if t.status not in ("waiting", "running"))
        pruned = sum(t.epochs_planned - t.epochs_run for t in self.trials if t.status == "pruned")
        return {"epochs_run": run, "epochs_full": full, "epochs_saved_by_pruning": pruned}

    def top(self, k: int, pass_name: str | None = None) -> list[ConfigSummary]:
        """The k best ranked configurations of a pass (default: the final one)."""
        ranked = self.ranking.get(pass_name or self.final_pass, [])
        return [c for c in ranked if c.rank is not None][:k]


def _state_name(trial: Any) -> str:
    from optuna.trial import TrialState

    if trial.state == TrialState.WAITING:
        return "waiting"
    if trial.state == TrialState.RUNNING:
        return "running"
    result = trial.user_attrs.get(RESULT) or {}
    if result.get("status") in STATES:
        return str(result["status"])
    return {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
    }.get(trial.state, "failed")


def diagnosis_codes(
    curve: Sequence[Any],
    *,
    initial_loss: float | None,
    status: str,
    metric_mode: str,
) -> list[str]:
    """The learning-curve patterns (lrtune.diagnose codes) of one trial's per-epoch records.

    Args:
        curve: EpochRecords or their dicts (epoch, lr, train_loss, val_loss, val_metric).
        initial_loss: the training loss before the first update.
        status: the trial's status ('diverged' tells the diagnosis the run blew up).
        metric_mode: 'max' when a higher val_metric is better (the run config's metric_mode,
            not the search's mode, which may rank by val_loss).

    Returns:
        Pattern codes; empty when the curves look healthy, are too short, or cannot be read
        (a diagnosis is advice: it never fails a trial or a report).
    """
    from lrtune.diagnose import diagnose_curves

    try:
        findings = diagnose_curves(
            list(curve),
            initial_loss=initial_loss,
            metric_mode=metric_mode,
            diverged=status == "diverged",
        )
    except Exception:
        return []
    return [f.code for f in findings]


def rows_from_study(
    study: Any, pass_name: str, epochs: int, rediagnose: str | None = None
) -> list[TrialRow]:
    """The real trials of one pass's study (newest trial per key wins).

    Args:
        study: the Optuna study of one seed of the pass.
        pass_name: 'main', 'coarse' or 'refine'.
        epochs: the pass's epochs per trial.
        rediagnose: diagnose every stored curve again with this val_metric direction
            (`lrtune report`), instead of keeping the codes the trial stored.
    """
    by_key: dict[str, TrialRow] = {}
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if KEY not in attrs or ROLE in attrs:
            continue
        result = attrs.get(RESULT) or {}
        point = json.loads(attrs[POINT]) if isinstance(attrs.get(POINT), str) else {}
        status = _state_name(t)
        curve = result.get("curve") or []
        diagnosis = result.get("diagnosis") or []
        if rediagnose is not None and status not in ("waiting", "running"):
            diagnosis = diagnosis_codes(
                curve,
                initial_loss=result.get("initial_loss"),
                status=status,
                metric_mode=rediagnose,
            )
        row = TrialRow(
            pass_name=pass_name,
            number=int(attrs.get(INDEX, t.number)),
            config=int(attrs.get(CONFIG, 0)),
            point=point,
            seed=int(attrs.get(SEED, 0)),
            status=status,
            value=result.get("value"),
            best=result.get("best"),
            final=result.get("final"),
            epochs_run=len(curve),
            epochs_planned=epochs,
            seconds=float(result.get("seconds") or 0.0),
            error=result.get("error"),
            lr=result.get("lr"),
            schedule=result.get("schedule") or {},
            curve=curve,
            diagnosis=diagnosis,
        )
        by_key[str(attrs[KEY])] = row
    return sorted(by_key.values(), key=lambda r: r.number)


def tie_break_name(metric: str, objective: str) -> str:
    """What breaks ties on the mean objective: the validation loss when ranking by the
    validation metric (at the final epoch, or its best), else the best value of the
    searched loss over the epochs (a run that reached lower at some point, first)."""
    if metric == "val_metric":
        return f"{objective} val_loss"
    return f"best {metric}"


def _secondary(trials: Sequence[TrialRow], metric: str, objective: str) -> float | None:
    """The mean tie-break value over a configuration's completed seeds (lower is better)."""
    values = []
    for t in trials:
        if t.status != "complete" or t.value is None:
            continue
        if metric == "val_metric":
            losses = [r.get("val_loss") for r in t.curve]
            if objective == "final":
                v = losses[-1] if losses else None
            else:
                finite = [x for x in losses if x is not None and math.isfinite(x)]
                v = min(finite) if finite else None
        else:
            v = t.best
        if v is not None and math.isfinite(v):
            values.append(float(v))
    return statistics.fmean(values) if values else None


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def rank_configs(
    rows: Sequence[TrialRow], mode: str, metric: str = "val_loss", objective: str = "final"
) -> list[ConfigSummary]:
    """Group a pass's trials by configuration and rank them by mean objective.

    Ties on the mean are broken by `tie_break_name(metric, objective)` (lower first), then
    by configuration order; tied configurations get `tied_from`.
    """
    groups: dict[int, list[TrialRow]] = {}
    for row in rows:
        groups.setdefault(row.config, []).append(row)
    summaries = []
    for config, trials in groups.items():
        trials.sort(key=lambda r: r.seed)
        done = [
            t.value
            for t in trials
            if t.status == "complete" and t.value is not None and math.isfinite(t.value)
        ]
        mean = statistics.fmean(done) if done else None
        std = statistics.stdev(done) if len(done) > 1 else None
        lr = next((t.lr for t in trials if t.lr is not None), None)
        schedule = next((t.schedule for t in trials if t.schedule), {})
        summaries.append(
            ConfigSummary(
                pass_name=trials[0].pass_name,
                config=config,
                point=trials[0].point,
                lr=lr,
                schedule=schedule,
                trials=tuple(trials),
                mean=mean,
                std=std,
                rank=None,
                secondary=_secondary(trials, metric, objective),
            )
        )
    sign = 1.0 if mode == "min" else -1.0
    by_mean = sorted(
        (s for s in summaries if s.mean is not None),
        key=lambda s: (sign * s.mean, s.config),  # type: ignore[operator]
    )
    # Group equal means (float noise aside), then order each group by the tie-break.
    ties: list[list[ConfigSummary]] = []
    for s in by_mean:
        if ties and _same(ties[-1][0].mean, s.mean):
            ties[-1].append(s)
        else:
            ties.append([s])
    out: list[ConfigSummary] = []
    for g in ties:
        g.sort(key=lambda s: (math.inf if s.secondary is None else s.secondary, s.config))
        first = len(out) + 1
        for s in g:
            out.append(replace(s, rank=len(out) + 1, tied_from=first if len(g) > 1 else None))
    rest = sorted((s for s in summaries if s.mean is None), key=lambda s: s.config)
    return out + rest
