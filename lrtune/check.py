"""`lrtune check`: a short, seeded training run judged against convergence criteria.

Flow (the CLI does exactly this):

    cfg = parse_check_config(path)              # CheckConfig; ConfigError -> exit 2
    preflight(cfg, task)                        # criteria the task cannot serve -> exit 2
    result = run_check(cfg, task, lr=lr)        # the shared training loop, deterministic
    ref = reference_loss(cfg, task, device)     # ln C / Var(y): the curves are read against it
    report = evaluate(cfg, result, setup=setup, reference=ref)
    # -> CheckReport: criteria verdicts + learning-curve diagnosis; report.exit_code is 0 or 1

Criteria contract (every entry of `CRITERIA`): a frozen `CriterionSpec` whose
`parse(value, where)` validates the threshold written under `expect:` (raising
ConfigError that quotes the value) and whose `judge(evidence, threshold, expect)`
returns a `Measured` (value, text, passed) from the run's `Evidence` alone. Judges
are pure: no torch, no files, so tests can hand them crafted evidence.

This module never prints and never writes files; `lrtune.report.check_report` renders
a CheckReport and the CLI decides where the files go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtune.config import (
    DEFAULT_SCHEDULE,
    RunConfig,
    as_float,
    check_keys,
    load_yaml,
    parse_run_config,
)
from lrtune.errors import ConfigError, ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from lrtune.diagnose import Finding
    from lrtune.task import Task
    from lrtune.training import TrainResult

# Defaults of the `expect:` block, once.
DEFAULT_TOLERANCE = 0.10
DEFAULT_NO_DIVERGENCE = True
BASELINE_KIND = "lrtune-check-baseline"
BASELINE_SCHEMA_VERSION = 1
# A relative baseline comparison divides by max(|baseline loss|, this).
BASELINE_EPS = 1e-8
# Keys whose value may be a search range in `lrtune search`, but must be one value here.
SINGLE_VALUE_KEYS = ("epochs", "batch_size", "seed", "max_steps", "lr")
# Schedule parameters whose single value is itself a list.
LIST_VALUED_PARAMS = ("milestones",)
# Keys that mark a mapping as a search distribution ({low, high, log, int}).
DISTRIBUTION_KEYS = ("low", "high", "log", "int", "choices", "step")
PASS, FAIL, ERROR = "pass", "fail", "error"
# The run status of a check stopped by Ctrl-C (its result.json says so; exit code 130).
INTERRUPTED = "interrupted"


# --------------------------------------------------------------------------- evidence
@dataclass(frozen=True)
class Baseline:
    """A stored reference run (written by `lrtune check --update-baseline`).

    Attributes:
        path: the JSON file.
        epochs: per-epoch dicts with epoch, step, train_loss, val_loss, val_metric.
        step_losses: the training loss at every optimizer step.
        meta: how the baseline was produced (seed, lr, device, ...), for warnings.
    """

    path: Path
    epochs: tuple[Mapping[str, Any], ...]
    step_losses: tuple[float, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """Everything a criterion may look at: the run's outcome and the baseline.

    `epochs` holds objects with the attributes of `lrtune.training.EpochRecord`.
    """

    status: str
    error: str | None
    initial_loss: float | None
    epochs: tuple[Any, ...]
    step_losses: tuple[float, ...]
    steps: int
    baseline: Baseline | None = None

    @classmethod
    def from_result(cls, result: TrainResult, baseline: Baseline | None = None) -> Evidence:
        """Evidence from a TrainResult."""
        return cls(
            status=result.status,
            error=result.error,
            initial_loss=result.initial_loss,
            epochs=tuple(result.epochs),
            step_losses=tuple(result.step_losses),
            steps=result.steps,
            baseline=baseline,
        )

    @property
    def diverged_at(self) -> int | None:
        """1-based optimizer step of the first loss the training loop calls divergent."""
        if self.status != "diverged":
            return None
        from lrtune.training import DIVERGENCE_FACTOR

        limit = DIVERGENCE_FACTOR * max(abs(self.initial_loss or 0.0), 1e-8)
        for i, value in enumerate(self.step_losses):
            if not math.isfinite(value) or value > limit:
                return i + 1
        return self.steps or len(self.step_losses) or None  # e.g. the val loss went NaN

    def stopped_text(self) -> str | None:
        """Why the run has no final values ('diverged at step 37: ...'), or None."""
        if self.status == "diverged":
            return f"run diverged at step {self.diverged_at}"
        if self.status == "failed":
            return f"run failed: {self.error}"
        if self.status == "pruned":
            return f"run stopped early: {self.error}"
        if not self.epochs:
            return "no epoch completed"
        return None


@dataclass(frozen=True)
class Measured:
    """What a judge found: the value (None when not measurable), its text, the verdict.

    `passed` is None when the criterion could not be measured at all (a failed run).
    """

    value: float | None
    text: str
    passed: bool | None


# --------------------------------------------------------------------------- registry
def _parse_number(value: Any, where: str) -> float:
    number = as_float(value, where)
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return number


def _parse_fraction(value: Any, where: str) -> float:
    number = as_float(value, where)
    if not 0 < number <= 1:
        raise ConfigError(
            f"{where} is a fraction of the initial loss in (0, 1] (0.5 = halved), got {value!r}"
        )
    return number


def _parse_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _parse_count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class CriterionSpec:
    """One criterion the `expect:` block can name.

    Attributes:
        key: the name under `expect:`; also the JUnit test-case name.
        help: one-line description (docs, `--help`, JUnit).
        parse: validates the threshold: parse(value, where) -> threshold.
        threshold_text: renders the threshold ('< 0.3').
        judge: judge(evidence, threshold, expect) -> Measured.
        value_at: for targets, the value at one epoch: value_at(record, initial_loss);
            the budget criteria use it to find the first epoch that meets every target.
        value_text: for targets, renders the measured value (default: 4 significant digits).
        op: for targets, '<', '<=' or '>=' (value op threshold passes).
        needs_val: the task must define val_data().
        needs_metric: the task must report a validation metric.
        plot: where the threshold is drawn: 'loss', 'metric', 'x' (a budget) or ''.
    """

    key: str
    help: str
    parse: Callable[[Any, str], Any]
    threshold_text: Callable[[Any], str]
    judge: Callable[[Evidence, Any, Expect], Measured]
    value_at: Callable[[Any, float | None], float | None] | None = None
    value_text: Callable[[float, Evidence], str] | None = None
    op: str = ""
    needs_val: bool = False
    needs_metric: bool = False
    plot: str = ""

    def value(self, record: Any, initial_loss: float | None) -> float | None:
        """A target's value at one epoch record (None when not a target or not reported)."""
        return None if self.value_at is None else self.value_at(record, initial_loss)

    def passes(self, value: float | None, threshold: float) -> bool:
        """True when a target's value meets the threshold (False for None/NaN)."""
        if value is None or not math.isfinite(value):
            return False
        return OPS[self.op](value, threshold)


OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">=": lambda v, t: v >= t,
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _judge_target(spec_key: str) -> Callable[[Evidence, Any, Expect], Measured]:
    """The judge shared by every target: the value at the final epoch vs the threshold."""

    def judge(ev: Evidence, threshold: Any, expect: Expect) -> Measured:
        spec = CRITERIA[spec_key]
        stopped = ev.stopped_text()
        if ev.status == "failed":
            return Measured(None, f"not measured ({stopped})", None)
        if stopped is not None:
            return Measured(None, f"none ({stopped})", False)
        last = ev.epochs[-1]
        value = spec.value(last, ev.initial_loss)
        if value is None:
            return Measured(None, "not reported by the task", None)
        text = spec.value_text(value, ev) if spec.value_text else _fmt(value)
        return Measured(value, f"{text} at epoch {last.epoch}", spec.passes(value, threshold))

    return judge


def _loss_drop_text(value: float, ev: Evidence) -> str:
    return f"{value:.1%} ({_fmt(ev.initial_loss)} -> {_fmt(ev.epochs[-1].train_loss)})"


def _loss_drop(record: Any, initial: float | None) -> float | None:
    if initial is None or not math.isfinite(initial) or initial == 0:
        return None
    return 1.0 - float(record.train_loss) / abs(initial)


def _judge_no_divergence(ev: Evidence, threshold: bool, expect: Expect) -> Measured:
    if not threshold:
        return Measured(None, "not checked (no_divergence: false)", True)
    if ev.status == "failed":
        return Measured(None, f"not measured (run failed: {ev.error})", None)
    if ev.status == "diverged":
        return Measured(
            float(ev.diverged_at or 0), f"diverged at step {ev.diverged_at}: {ev.error}", False
        )
    finite = [v for v in ev.step_losses if math.isfinite(v)]
    top = max(finite) if finite else None
    return Measured(None, f"none in {ev.steps} steps (max loss {_fmt(top)})", True)


def _targets_met_at(ev: Evidence, expect: Expect) -> Any | None:
    """The first epoch record meeting every target of `expect` at once, or None."""
    targets = [(CRITERIA[k], t) for k, t in expect.thresholds.items() if k in TARGET_KEYS]
    for record in ev.epochs:
        if all(spec.passes(spec.value(record, ev.initial_loss), t) for spec, t in targets):
            return record
    return None


def _judge_budget(unit: str) -> Callable[[Evidence, Any, Expect], Measured]:
    def judge(ev: Evidence, limit: int, expect: Expect) -> Measured:
        if ev.status == "failed":
            return Measured(None, f"not measured (run failed: {ev.error})", None)
        record = _targets_met_at(ev, expect)
        if record is None:
            why = ev.stopped_text() or f"{len(ev.epochs)} epochs run"
            return Measured(None, f"targets never all met ({why})", False)
        value = record.epoch if unit == "epochs" else record.step
        return Measured(
            float(value),
            f"targets met at epoch {record.epoch} (step {record.step})",
            value <= limit,
        )

    return judge


def _judge_baseline(ev: Evidence, ref: BaselineRef, expect: Expect) -> Measured:
    if ev.status == "failed":
        return Measured(None, f"not measured (run failed: {ev.error})", None)
    if ev.baseline is None:  # --update-baseline: the run is the new baseline
        return Measured(None, "not compared (writing a new baseline)", True)
    cmp = compare_to_baseline(ev, ev.baseline)
    if cmp.worst is None:
        return Measured(None, f"nothing to compare ({cmp.note})", False)
    if cmp.identical:
        text = f"identical to the baseline ({cmp.compared} epochs, train and val loss)"
    else:
        text = (
            f"{cmp.worst:+.1%} at worst, {cmp.metric} at epoch {cmp.epoch} "
            f"({_fmt(cmp.value)} vs {_fmt(cmp.reference)})"
        )
    if cmp.note:
        text += f"; {cmp.note}"
    stopped = ev.stopped_text()
    if stopped is not None:
        return Measured(cmp.worst, f"{text}; {stopped}", False)
    return Measured(cmp.worst, text, cmp.worst <= ref.tolerance)


def _pct(t: float) -> str:
    return f"{t:.0%}" if abs(t * 100 - round(t * 100)) < 1e-9 else f"{t:.1%}"


@dataclass(frozen=True)
class BaselineRef:
    """The `baseline:` criterion's threshold: the file and the relative tolerance."""

    path: Path
    tolerance: float = DEFAULT_TOLERANCE


CRITERIA: dict[str, CriterionSpec] = {
    spec.key: spec
    for spec in (
        CriterionSpec(
            "no_divergence",
            "No NaN/inf loss and no blow-up during training (on unless set to false).",
            _parse_bool,
            lambda t: "no NaN/inf or blow-up" if t else "off",
            _judge_no_divergence,
        ),
        CriterionSpec(
            "final_train_loss_below",
            "Mean training loss of the last epoch is below this value.",
            _parse_number,
            lambda t: f"< {_fmt(t)}",
            _judge_target("final_train_loss_below"),
            value_at=lambda r, i: r.train_loss,
            op="<",
            plot="loss",
        ),
        CriterionSpec(
            "loss_drop_at_least",
            "Last epoch's training loss is at least this fraction below the initial loss.",
            _parse_fraction,
            lambda t: f">= {_pct(t)} drop",
            _judge_target("loss_drop_at_least"),
            value_at=_loss_drop,
            value_text=_loss_drop_text,
            op=">=",
            plot="loss",
        ),
        CriterionSpec(
            "val_loss_below",
            "Validation loss after the last epoch is below this value.",
            _parse_number,
            lambda t: f"< {_fmt(t)}",
            _judge_target("val_loss_below"),
            value_at=lambda r, i: r.val_loss,
            op="<",
            needs_val=True,
            plot="loss",
        ),
        CriterionSpec(
            "val_metric_at_least",
            "Validation metric (accuracy by default) after the last epoch is at least this.",
            _parse_number,
            lambda t: f">= {_fmt(t)}",
            _judge_target("val_metric_at_least"),
            value_at=lambda r, i: r.val_metric,
            op=">=",
            needs_val=True,
            needs_metric=True,
            plot="metric",
        ),
        CriterionSpec(
            "val_metric_at_most",
            "Validation metric after the last epoch is at most this (lower-is-better metrics).",
            _parse_number,
            lambda t: f"<= {_fmt(t)}",
            _judge_target("val_metric_at_most"),
            value_at=lambda r, i: r.val_metric,
            op="<=",
            needs_val=True,
            needs_metric=True,
            plot="metric",
        ),
        CriterionSpec(
            "max_epochs",
            "Budget: every target above is met together by this epoch.",
            _parse_count,
            lambda t: f"by epoch {t}",
            _judge_budget("epochs"),
            plot="x",
        ),
        CriterionSpec(
            "max_steps",
            "Budget: every target above is met together within this many optimizer steps.",
            _parse_count,
            lambda t: f"by step {t}",
            _judge_budget("steps"),
            plot="x",
        ),
        CriterionSpec(
            "baseline",
            "Per-epoch train/val loss no worse than the stored baseline by more than "
            "`tolerance` (relative).",
            lambda v, w: v,  # parsed with `tolerance` by parse_expect
            lambda t: f"<= {_pct(t.tolerance)} worse than {t.path.name}",
            _judge_baseline,
        ),
    )
}
EXPECT_KEYS = (*CRITERIA, "tolerance")
TARGET_KEYS = tuple(k for k, s in CRITERIA.items() if s.value_at is not None)
BUDGET_KEYS = ("max_epochs", "max_steps")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Expect:
    """The parsed `expect:` block.

    Attributes:
        thresholds: criterion key -> parsed threshold, in registry order.
    """

    thresholds: Mapping[str, Any]

    @property
    def baseline(self) -> BaselineRef | None:
        """The baseline reference, when the block names one."""
        ref = self.thresholds.get("baseline")
        return ref if isinstance(ref, BaselineRef) else None


@dataclass(frozen=True)
class CheckConfig:
    """A check config: the shared run part plus `expect:`."""

    run: RunConfig
    expect: Expect

    @property
    def name(self) -> str:
        """Short name (the config file's stem)."""
        return self.run.source.stem

    @property
    def schedule(self) -> Mapping[str, Any] | None:
        """The schedule spec to train with (None for a constant LR)."""
        spec = dict(self.run.schedule)
        return None if spec == dict(DEFAULT_SCHEDULE) else spec


def _is_distribution(value: Any) -> bool:
    return isinstance(value, Mapping) and any(k in value for k in DISTRIBUTION_KEYS)


def _reject_search_space(data: Mapping[str, Any], where: str) -> None:
    """One clear line when a search grid/distribution shows up in a check config."""
    one = "a check runs one configuration"
    if "search" in data:
        raise ConfigError(f"{where}: 'search:' belongs to lrtune search; {one} (remove it)")
    for key in SINGLE_VALUE_KEYS:
        value = data.get(key)
        if isinstance(value, list):
            raise ConfigError(
                f"{where}: '{key}' is a list {value!r} (a search grid); {one}: give one value"
            )
        if isinstance(value, Mapping):  # {low, high, log, int}: a distribution
            raise ConfigError(
                f"{where}: '{key}' is a search range {dict(value)!r}; {one}: give one value"
            )
    schedule = data.get("schedule")
    if isinstance(schedule, list):
        raise ConfigError(
            f"{where}: 'schedule' is a list of schedules (a search grid); {one}: give one"
        )
    if isinstance(schedule, Mapping):
        _reject_in_schedule(schedule, f"{where}: 'schedule", one)


def _reject_in_schedule(spec: Mapping[str, Any], prefix: str, one: str) -> None:
    for key, value in spec.items():
        name = f"{prefix}.{key}'"
        if _is_distribution(value):
            raise ConfigError(
                f"{name[:-1]}' is a search range {dict(value)!r}; {one}: give one value"
            )
        if isinstance(value, list):
            grid = key not in LIST_VALUED_PARAMS or any(isinstance(v, list) for v in value)
            if grid:
                raise ConfigError(
                    f"{name} is a list {value!r} (a search grid); {one}: give one value"
                )
        elif isinstance(value, Mapping):
            _reject_in_schedule(value, f"{prefix}.{key}", one)


def parse_expect(block: Any, source: Path) -> Expect:
    """Validate the `expect:` block.

    Raises:
        ConfigError: missing/empty block, unknown key (did-you-mean), bad threshold,
            a budget with no target, `tolerance` without `baseline`.
    """
    where = f"{source}: expect"
    valid = ", ".join(EXPECT_KEYS)
    if block is None:
        raise ConfigError(
            f"{source}: missing 'expect:' block with at least one criterion ({valid})"
        )
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a mapping of criteria, got {block!r}")
    check_keys(block, EXPECT_KEYS, where)
    thresholds: dict[str, Any] = {}
    for key, spec in CRITERIA.items():
        if key == "no_divergence" and key not in block:
            thresholds[key] = DEFAULT_NO_DIVERGENCE
        elif key == "baseline" and key in block:
            thresholds[key] = _parse_baseline(block, source, where)
        elif key in block:
            thresholds[key] = spec.parse(block[key], f"{where}.{key}")
    if "tolerance" in block and "baseline" not in block:
        raise ConfigError(f"{where}.tolerance is set but there is no 'baseline:' to compare with")
    if not any(k != "no_divergence" for k in thresholds) and not thresholds.get("no_divergence"):
        raise ConfigError(f"{where} checks nothing; name at least one criterion ({valid})")
    budgets = [k for k in BUDGET_KEYS if k in thresholds]
    if budgets and not any(k in thresholds for k in TARGET_KEYS):
        raise ConfigError(
            f"{where}.{budgets[0]} is a budget for reaching the targets, but no target is set "
            f"({', '.join(TARGET_KEYS)})"
        )
    return Expect(thresholds=thresholds)


def _parse_baseline(block: Mapping[str, Any], source: Path, where: str) -> BaselineRef:
    value = block["baseline"]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.baseline must be a path to a JSON file, got {value!r}")
    tolerance = as_float(block.get("tolerance", DEFAULT_TOLERANCE), f"{where}.tolerance")
    if not 0 <= tolerance < 10:
        raise ConfigError(
            f"{where}.tolerance is a relative margin (0.1 = 10% worse allowed), got {tolerance!r}"
        )
    path = Path(value)
    # Relative to the config file: the baseline lives next to the config in the repo.
    return BaselineRef(path if path.is_absolute() else source.parent / path, tolerance)


def parse_check_config(path: str | Path) -> CheckConfig:
    """Load and fully validate a check config before any training.

    Raises:
        ConfigError: one line naming the file, the key and the value.
    """
    source = Path(path)
    data = load_yaml(source)
    _reject_search_space(data, str(source))
    run = parse_run_config(data, source, extra_keys=("expect",))
    if run.schedule != dict(DEFAULT_SCHEDULE):
        _validate_schedule(run.schedule, source)
    expect = parse_expect(data.get("expect"), source)
    return CheckConfig(run=run, expect=expect)


def _validate_schedule(spec: Mapping[str, Any], source: Path) -> None:
    try:
        from lrtune import schedules
    except ImportError:  # pragma: no cover - the schedules module is a sibling part
        return
    try:
        schedules.validate(spec)
    except ConfigError as exc:
        raise ConfigError(f"{source}: schedule: {exc}") from None


def preflight(cfg: CheckConfig, task: Task) -> None:
    """Refuse criteria the task cannot serve, before training (exit 2, one line).

    Raises:
        ConfigError: a validation criterion without val_data(), or a metric criterion
            on a task whose validation batches report no metric.
    """
    keys = list(cfg.expect.thresholds)
    needs_val = [k for k in keys if CRITERIA[k].needs_val]
    if needs_val and not task.has_val:
        raise ConfigError(
            f"{cfg.run.source}: expect.{needs_val[0]} needs validation data, but "
            f"{task.path} defines no val_data()"
        )
    needs_metric = [k for k in keys if CRITERIA[k].needs_metric]
    if needs_metric:
        from lrtune.runtime import resolve_device

        loader = task.val_loader()
        assert loader is not None
        _, metric = task.evaluate(task.build_model(), loader, resolve_device("cpu"), max_batches=1)
        if metric is None:
            raise ConfigError(
                f"{cfg.run.source}: expect.{needs_metric[0]} needs a validation metric, but "
                f"{why_no_metric(task)}; judge the run with val_loss_below instead"
            )


def why_no_metric(task: Task) -> str:
    """Why a task's validation batches give no metric, in words (for one-line errors)."""
    if task.has_custom_step:
        what = (
            "and its step() returns only the loss: return (loss, output, target) from it so "
            "lrtune can call metric(output, target)"
            if callable(getattr(task.module, "metric", None))
            else "so lrtune sees only the loss it returns, no (output, target) for a metric"
        )
        return f"{task.path} defines step(), {what}"
    return (
        f"{task.path} reports none (its targets are not class labels: define "
        "metric(output, target) in it)"
    )


# --------------------------------------------------------------------------- run
def run_check(
    cfg: CheckConfig,
    task: Task,
    *,
    lr: float,
    device: str | None = None,
    seed: int | None = None,
    on_epoch: Callable[[Any], None] | None = None,
) -> TrainResult:
    """Train once through the shared loop: seeded, deterministic algorithms on.

    Args:
        cfg: the check config.
        task: the loaded task.
        lr: the base LR (a number; resolve 'auto' with lrtune.training.resolve_lr first).
        device: overrides the config's device.
        seed: overrides the config's seed.
        on_epoch: progress callback, called with each EpochRecord (its return is ignored).

    Returns:
        The TrainResult.
    """
    from lrtune.training import train

    def progress(record: Any) -> None:
        if on_epoch is not None:
            on_epoch(record)

    run = cfg.run
    return train(
        task,
        lr=lr,
        schedule=cfg.schedule,
        epochs=run.epochs,
        optimizer=run.optimizer.name,
        optimizer_params=dict(run.optimizer.params),
        batch_size=run.batch_size,
        seed=run.seed if seed is None else seed,
        device=device or run.device,
        max_steps=run.max_steps,
        deterministic=True,
        on_epoch=progress,
    )


# --------------------------------------------------------------------------- baseline
@dataclass(frozen=True)
class BaselineComparison:
    """The worst relative excess of the run's per-epoch losses over the baseline's.

    `worst` is max over compared points of (run - base) / max(|base|, eps): +0.25 means
    25% worse somewhere; None when no epoch could be compared.
    """

    worst: float | None
    metric: str = ""
    epoch: int = 0
    value: float | None = None
    reference: float | None = None
    compared: int = 0
    note: str = ""
    identical: bool = False


def compare_to_baseline(ev: Evidence, baseline: Baseline) -> BaselineComparison:
    """Compare train_loss and val_loss epoch by epoch over the epochs both have."""
    base = {int(e["epoch"]): e for e in baseline.epochs}
    points: list[tuple[float, str, int, float, float]] = []
    for record in ev.epochs:
        ref = base.get(int(record.epoch))
        if ref is None:
            continue
        for metric in ("train_loss", "val_loss"):
            value, reference = getattr(record, metric), ref.get(metric)
            if value is None or reference is None:
                continue
            value, reference = float(value), float(reference)
            excess = (
                (value - reference) / max(abs(reference), BASELINE_EPS)
                if math.isfinite(value)
                else math.inf
            )
            points.append((excess, metric, int(record.epoch), value, reference))
    compared = len({p[2] for p in points})
    note = ""
    if len(baseline.epochs) != len(ev.epochs):
        note = f"compared {compared} epochs (run {len(ev.epochs)}, baseline {len(baseline.epochs)})"
    if not points:
        return BaselineComparison(None, compared=0, note=note or "no epochs in common")
    worst = max(points, key=lambda p: p[0])  # the first of equals: the earliest epoch
    identical = all(p[3] == p[4] for p in points)
    return BaselineComparison(*worst, compared=compared, note=note, identical=identical)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline JSON file.

    Raises:
        ConfigError: missing file (with the command that creates it), bad JSON, wrong kind.
    """
    import json

    if not path.exists():
        raise ConfigError(
            f"baseline file {path} not found; record it with: lrtune check CONFIG --update-baseline"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable baseline JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise ConfigError(f"{path}: not an lrtune check baseline (expected kind '{BASELINE_KIND}')")
    version = data.get("schema_version")
    if version != BASELINE_SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: baseline schema_version {version!r} is not supported (expected "
            f"{BASELINE_SCHEMA_VERSION}); re-record it with --update-baseline"
        )
    epochs = data.get("epochs")
    if not isinstance(epochs, list) or not all(
        isinstance(e, dict) and "epoch" in e for e in epochs
    ):
        raise ConfigError(f"{path}: baseline 'epochs' must be a list of per-epoch records")
    steps = [float("nan") if v is None else float(v) for v in data.get("step_losses") or []]
    meta = {k: v for k, v in data.items() if k not in ("epochs", "step_losses")}
    return Baseline(path=path, epochs=tuple(epochs), step_losses=tuple(steps), meta=meta)


def baseline_payload(report: CheckReport) -> dict[str, Any]:
    """The baseline file's content for a run (no wall times: the file is reproducible)."""
    keep = ("epoch", "step", "lr", "train_loss", "val_loss", "val_metric")
    return {
        "kind": BASELINE_KIND,
        "config": report.config,
        "task": report.task,
        **{k: report.setup[k] for k in BASELINE_META_KEYS if k in report.setup},
        "initial_loss": report.initial_loss,
        "epochs": [{k: e.get(k) for k in keep} for e in report.records],
        "step_losses": list(report.step_losses),
    }


# Run settings that make a baseline comparable; a mismatch is a warning.
BASELINE_META_KEYS = ("seed", "lr", "epochs", "batch_size", "optimizer", "schedule", "device")


def baseline_warnings(baseline: Baseline, setup: Mapping[str, Any]) -> list[str]:
    """One line per run setting that differs from the baseline's."""
    out = []
    for key in BASELINE_META_KEYS:
        if key in baseline.meta and key in setup and baseline.meta[key] != setup[key]:
            out.append(
                f"baseline {baseline.path.name} was recorded with {key}={baseline.meta[key]!r}, "
                f"this run uses {setup[key]!r}: the curves are not directly comparable"
            )
    return out


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class CriterionResult:
    """One criterion's verdict (one JUnit test case)."""

    key: str
    help: str
    threshold: Any
    threshold_text: str
    measured: float | None
    measured_text: str
    verdict: str  # 'pass' | 'fail' | 'error'
    plot: str = ""

    @property
    def message(self) -> str:
        """One line: what was measured against what was required."""
        return f"{self.key}: measured {self.measured_text}; required {self.threshold_text}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        threshold = self.threshold
        if isinstance(threshold, BaselineRef):
            threshold = {"path": str(threshold.path), "tolerance": threshold.tolerance}
        return {
            "criterion": self.key,
            "verdict": self.verdict,
            "measured": self.measured,
            "measured_text": self.measured_text,
            "threshold": threshold,
            "threshold_text": self.threshold_text,
            "message": self.message,
        }


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one check; it owns the exit code.

    Attributes:
        name: the config's short name.
        config: the config path; task: the task path.
        setup: what was run (seed, lr, epochs, batch_size, optimizer, schedule, device).
        status/error/initial_loss/steps/seconds: from the TrainResult.
        records: per-epoch dicts; step_losses: every step's training loss.
        results: one CriterionResult per criterion, in registry order.
        baseline: the baseline's per-epoch dicts (for the plot), or None.
        warnings: lines worth reading even when the check passes.
        diagnosis: the learning-curve findings (lrtune.diagnose), errors first; empty when
            the curves look healthy.
        diagnosis_context: what the curves were read against (reference_loss,
            reference_name, metric_mode), saved so `lrtune report` reads them the same way.
    """

    name: str
    config: str
    task: str
    setup: Mapping[str, Any]
    status: str
    error: str | None
    initial_loss: float | None
    steps: int
    seconds: float
    records: tuple[Mapping[str, Any], ...]
    step_losses: tuple[float, ...]
    results: tuple[CriterionResult, ...]
    baseline: tuple[Mapping[str, Any], ...] | None = None
    warnings: tuple[str, ...] = ()
    diagnosis: tuple[Finding, ...] = ()
    diagnosis_context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every criterion passed."""
        return all(r.verdict == PASS for r in self.results)

    @property
    def failed(self) -> list[CriterionResult]:
        """The criteria that failed or could not be measured."""
        return [r for r in self.results if r.verdict != PASS]

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C stopped the run (nothing was judged)."""
        return self.status == INTERRUPTED

    @property
    def exit_code(self) -> ExitCode:
        """0 when every criterion passed, 1 otherwise, 130 when interrupted (bad configs
        never get a report)."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.passed else ExitCode.FAILED

    @property
    def headline(self) -> str:
        """'PASS: 4/4 criteria met' or 'FAIL: no_divergence, val_loss_below (2 of 4)'."""
        n = len(self.results)
        if self.interrupted:
            planned = self.setup.get("epochs")
            return (
                f"INTERRUPTED after {len(self.records)} of {planned} epochs: no criterion "
                f"judged ({self.name}, {self.seconds:.1f} s)"
            )
        if self.passed:
            return f"PASS: {n}/{n} criteria met ({self.name}, {self.seconds:.1f} s)"
        names = ", ".join(r.key for r in self.failed)
        return f"FAIL: {names} ({len(self.failed)} of {n} criteria not met; {self.name})"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (result.json)."""
        return {
            "command": "check",
            "name": self.name,
            "passed": self.passed,
            "interrupted": self.interrupted,
            "exit_code": int(self.exit_code),
            "headline": self.headline,
            "config": self.config,
            "task": self.task,
            "setup": dict(self.setup),
            "status": self.status,
            "error": self.error,
            "initial_loss": self.initial_loss,
            "steps": self.steps,
            "seconds": self.seconds,
            "criteria": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings),
            "epochs": [dict(e) for e in self.records],
            "step_losses": list(self.step_losses),
            "baseline_epochs": None if self.baseline is None else [dict(e) for e in self.baseline],
            "diagnosis": [f.to_dict() for f in self.diagnosis],
            "diagnosis_context": dict(self.diagnosis_context),
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> CheckReport:
        """Rebuild a report from result.json (for `lrtune report`); the diagnosis is re-read.

        Raises:
            ConfigError: the body is not a check result (missing keys, bad values).
        """
        try:
            return _report_from_dict(body)
        except KeyError as exc:
            raise ConfigError(f"not an lrtune check result (no {exc.args[0]!r} in it)") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not an lrtune check result ({exc})") from None


def _report_from_dict(body: Mapping[str, Any]) -> CheckReport:
    results = []
    for c in body["criteria"]:
        key = str(c["criterion"])
        spec = CRITERIA.get(key)
        threshold = c.get("threshold")
        if key == "baseline" and isinstance(threshold, Mapping):
            threshold = BaselineRef(Path(threshold["path"]), float(threshold["tolerance"]))
        results.append(
            CriterionResult(
                key=key,
                help=spec.help if spec else "",
                threshold=threshold,
                threshold_text=str(c["threshold_text"]),
                measured=c.get("measured"),
                measured_text=str(c["measured_text"]),
                verdict=str(c["verdict"]),
                plot=spec.plot if spec else "",
            )
        )
    steps = tuple(math.nan if v is None else float(v) for v in body.get("step_losses") or ())
    records = tuple(dict(e) for e in body.get("epochs") or ())
    base = body.get("baseline_epochs")
    context = dict(body.get("diagnosis_context") or {})
    status = str(body["status"])
    initial = body.get("initial_loss")
    ev = Evidence(status, body.get("error"), initial, records, steps, int(body.get("steps", 0)))
    return CheckReport(
        name=str(body["name"]),
        config=str(body["config"]),
        task=str(body["task"]),
        setup=dict(body["setup"]),
        status=status,
        error=body.get("error"),
        initial_loss=initial,
        steps=int(body.get("steps", 0)),
        seconds=float(body.get("seconds") or 0.0),
        records=records,
        step_losses=steps,
        results=tuple(results),
        baseline=None if base is None else tuple(dict(e) for e in base),
        warnings=tuple(body.get("warnings") or ()),
        diagnosis=tuple(diagnose_run(ev, context)),
        diagnosis_context=context,
    )


def judge_all(expect: Expect, ev: Evidence) -> tuple[CriterionResult, ...]:
    """Run every criterion of `expect` over the evidence (pure)."""
    results = []
    for key, threshold in expect.thresholds.items():
        spec = CRITERIA[key]
        m = spec.judge(ev, threshold, expect)
        verdict = ERROR if m.passed is None else (PASS if m.passed else FAIL)
        results.append(
            CriterionResult(
                key=key,
                help=spec.help,
                threshold=threshold,
                threshold_text=spec.threshold_text(threshold),
                measured=m.value,
                measured_text=m.text,
                verdict=verdict,
                plot=spec.plot,
            )
        )
    return tuple(results)


def run_setup(
    cfg: CheckConfig,
    lr: float,
    device: str,
    seed: int,
    steps_per_epoch: int | None = None,
    task: Task | None = None,
) -> dict[str, Any]:
    """The settings that describe this run (for the report and the baseline).

    With `task`, the optimizer is the one actually used: the class the task file's
    optimizer() returns ('AdamW', optimizer_source 'task file') when it defines one.
    """
    run = cfg.run
    optimizer, source, params = run.optimizer.name, "config", dict(run.optimizer.params)
    if task is not None and task.has_custom_optimizer:
        from lrtune.doctor import optimizer_used

        optimizer, source, params = optimizer_used(task, run.optimizer.name).name, "task file", {}
    return {
        "seed": seed,
        "lr": lr,
        "lr_source": "range test" if run.lr == "auto" else "config",
        "epochs": run.epochs,
        "max_steps": run.max_steps,
        "batch_size": run.batch_size,
        "optimizer": optimizer,
        "optimizer_source": source,
        "optimizer_params": params,
        "schedule": dict(run.schedule),
        "device": device,
        "steps_per_epoch": steps_per_epoch,
    }


def steps_per_epoch(cfg: CheckConfig, task: Task) -> int | None:
    """Optimizer steps in one epoch, or None for a training set without a length."""
    try:
        return len(task.train_loader(batch_size=cfg.run.batch_size))
    except TypeError:
        return None


def evaluate(
    cfg: CheckConfig,
    result: TrainResult,
    *,
    setup: Mapping[str, Any],
    baseline: Baseline | None = None,
    reference: tuple[float | None, str] | None = None,
) -> CheckReport:
    """Judge a finished run against the config's criteria, and read its learning curves.

    Args:
        cfg: the check config.
        result: the TrainResult of run_check.
        setup: run_setup(...) of the run.
        baseline: the loaded baseline (None with --update-baseline or without one).
        reference: (know-nothing loss, its name) from `reference_loss`, or None.

    Returns:
        The CheckReport.
    """
    ev = Evidence.from_result(result, baseline)
    warnings = baseline_warnings(baseline, setup) if baseline is not None else []
    ref, ref_name = reference or (None, "none")
    context = {
        "reference_loss": ref,
        "reference_name": ref_name,
        "metric_mode": cfg.run.metric_mode,
    }
    return CheckReport(
        name=cfg.name,
        config=str(cfg.run.source),
        task=str(cfg.run.task),
        setup=dict(setup),
        status=result.status,
        error=result.error,
        initial_loss=result.initial_loss,
        steps=result.steps,
        seconds=result.seconds,
        records=tuple(r.to_dict() for r in result.epochs),
        step_losses=tuple(result.step_losses),
        results=judge_all(cfg.expect, ev),
        baseline=None if baseline is None else tuple(baseline.epochs),
        warnings=tuple(warnings),
        diagnosis=tuple(diagnose_run(ev, context)),
        diagnosis_context=context,
    )


def interrupted_report(
    cfg: CheckConfig,
    records: Sequence[Any],
    *,
    setup: Mapping[str, Any],
    seconds: float,
) -> CheckReport:
    """The report of a check stopped by Ctrl-C: the epochs it finished, no verdicts.

    Every criterion is an error ('not measured: interrupted ...'), so a CI system that
    reads the JUnit file sees an incomplete check, not a pass; the exit code is 130.

    Args:
        cfg: the check config.
        records: the EpochRecords finished before the interrupt.
        setup: run_setup(...) of the run.
        seconds: wall time until the interrupt.
    """
    why = f"nothing (interrupted by Ctrl-C after {len(records)} of {cfg.run.epochs} epochs)"
    results = tuple(
        CriterionResult(
            key=key,
            help=CRITERIA[key].help,
            threshold=threshold,
            threshold_text=CRITERIA[key].threshold_text(threshold),
            measured=None,
            measured_text=why,
            verdict=ERROR,
            plot=CRITERIA[key].plot,
        )
        for key, threshold in cfg.expect.thresholds.items()
    )
    return CheckReport(
        name=cfg.name,
        config=str(cfg.run.source),
        task=str(cfg.run.task),
        setup=dict(setup),
        status=INTERRUPTED,
        error=f"interrupted by Ctrl-C after {len(records)} of {cfg.run.epochs} epochs",
        initial_loss=None,
        steps=int(records[-1].step) if records else 0,
        seconds=seconds,
        records=tuple(r.to_dict() for r in records),
        step_losses=(),
        results=results,
        diagnosis_context={"metric_mode": cfg.run.metric_mode},
    )


# --------------------------------------------------------------------------- diagnosis
def reference_loss(cfg: CheckConfig, task: Task, device: str) -> tuple[float | None, str]:
    """The know-nothing loss the curves are read against: ln C, Var(y), ... (see doctor).

    (None, 'none') when the task has none (a custom step()); never raises.
    """
    from lrtune.doctor import know_nothing_loss

    return know_nothing_loss(task, batch_size=cfg.run.batch_size, device=device, seed=cfg.run.seed)


def diagnose_run(ev: Evidence, context: Mapping[str, Any]) -> list[Finding]:
    """The learning-curve diagnosis of a check run (pure; see lrtune.diagnose).

    Args:
        ev: the run's evidence (per-epoch records, status, initial loss, step losses).
        context: reference_loss / reference_name / metric_mode (CheckReport.diagnosis_context).

    Returns:
        The findings, errors first; empty for healthy curves, and for a run that raised
        (its error, not its curve, is the reason it failed).
    """
    from lrtune.diagnose import diagnose_curves

    if ev.status in ("failed", INTERRUPTED):
        return []
    name = context.get("reference_name") or "none"
    return diagnose_curves(
        list(ev.epochs),
        initial_loss=ev.initial_loss,
        baseline_loss=context.get("reference_loss"),
        baseline_name=name,
        metric_mode=context.get("metric_mode") or "max",
        diverged=ev.status == "diverged",
        diverged_step=ev.diverged_at,
    )
