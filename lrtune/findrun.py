"""What `lrtune find` does, as a library call: range test(s), LR plan, schedule recommendation.

Returns a `FindOutcome`; writing files is lrtune.report.find_outputs' job, printing the CLI's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lrtune.errors import ConfigError
from lrtune.plan import LrPlan, plan
from lrtune.rangetest import (
    DEFAULT_MAX_REPEATS,
    DEFAULT_REPEATS,
    RangeTestResult,
    find_lr,
    repeat_range,
)
from lrtune.suggest import HEADLINE_RULE
from lrtune.sweep import SweepResult, parse_values, sweep
from lrtune.task import Task


@dataclass(frozen=True)
class FindOptions:
    """Every knob of `lrtune find` (defaults here match the CLI's)."""

    start_lr: float = 1e-7
    end_lr: float = 10.0
    steps: int = 100
    mode: str = "exp"
    smooth: float = 0.05
    diverge: float = 4.0
    repeats: int | str = DEFAULT_REPEATS
    max_repeats: int = DEFAULT_MAX_REPEATS
    rule: str = HEADLINE_RULE
    optimizer: str = "sgd"
    weight_decay: float | None = None
    batch_size: int | None = None
    accumulate: int = 1
    clip: float | None = None
    amp: str | None = None
    val_every: int | None = None
    val_batches: int = 5
    schedule_name: str | None = None
    epochs: int = 10
    target: str | None = None
    wd_values: str | None = None
    momentum_values: str | None = None
    device: str = "auto"
    seed: int = 0

    @classmethod
    def from_cli(cls, o: dict[str, Any]) -> FindOptions:
        """Build from the click options dict (unknown keys ignored, None rule = headline)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in o.items() if k in names}
        if kw.get("rule") is None:
            kw["rule"] = HEADLINE_RULE
        if isinstance(kw.get("repeats"), str) and kw["repeats"].strip().isdigit():
            kw["repeats"] = int(kw["repeats"])
        return cls(**kw)

    def __post_init__(self) -> None:
        # Validate every option before any work starts: one line, exit 2.
        from lrtune.optim import get_optimizer
        from lrtune.rangetest import RangeTestSettings
        from lrtune.suggest import get_rule

        RangeTestSettings(
            start_lr=self.start_lr,
            end_lr=self.end_lr,
            steps=self.steps,
            mode=self.mode,
            smooth=self.smooth,
            diverge=self.diverge,
            accumulate=self.accumulate,
            clip=self.clip,
            amp=self.amp,
            val_every=self.val_every,
            val_batches=self.val_batches,
        )
        get_rule(self.rule)
        get_optimizer(self.optimizer)
        repeat_range(self.repeats, self.max_repeats, ("--repeats", "--max-repeats"))
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs!r}")
        if self.wd_values and self.momentum_values:
            raise ConfigError("give --wd or --momentum, not both (one sweep at a time)")
        if self.wd_values:
            parse_values(self.wd_values, "--wd")
        if self.momentum_values:
            parse_values(self.momentum_values, "--momentum")

    @property
    def min_repeats(self) -> int:
        """The range tests always run: the count, or the start of "auto"."""
        return repeat_range(self.repeats, self.max_repeats)[0]

    @property
    def total_steps(self) -> int:
        """Steps the progress bar counts at the start (the fewest repeats, all sweep values);
        the bar grows when "auto" adds repeats."""
        n = self.steps * self.min_repeats
        for values in (self.wd_values, self.momentum_values):
            if values:
                n *= max(1, len(values.split(",")))
        return n


@dataclass
class FindOutcome:
    """What find produced: the main result, an optional sweep, the LR plan and schedule."""

    result: RangeTestResult
    options: FindOptions
    sweep: SweepResult | None = None
    plan: LrPlan | None = None
    schedule: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C cut the test short."""
        return any(c.stop_reason == "interrupted" for c in self.result.curves)

    def to_dict(self) -> dict[str, Any]:
        """The body of result.json."""
        body = self.result.to_dict()
        body["options"] = asdict(self.options)
        if self.plan is not None:
            body["plan"] = self.plan.to_dict()
        if self.sweep is not None:
            body["sweep"] = self.sweep.to_dict()
        if self.schedule is not None:
            body["schedule"] = {k: v for k, v in self.schedule.items() if k != "files"}
        return body


def _optimizer_params(
    o: FindOptions, param: str | None = None, value: float | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if o.weight_decay is not None:
        params["weight_decay"] = o.weight_decay
    if param == "weight_decay":
        params["weight_decay"] = value
    elif param == "momentum":
        from lrtune.optim import get_optimizer

        if get_optimizer(o.optimizer).family == "adam":
            params["betas"] = (value, 0.999)
        else:
            params["momentum"] = value
    return params


def run_find(task: Task, o: FindOptions, progress: Any = None) -> FindOutcome:
    """Run the range test (or a weight-decay / momentum sweep of them) and plan the LR."""
    low = o.min_repeats
    tests = o.total_steps // (o.steps * low)  # range tests to run: 1, or one per sweep value
    state = {"base": 0, "started": 0, "current": o.steps * low}

    def bar(n: int, total: int | None = None, status: str = "") -> None:
        if total is not None:  # grows when "auto" adds a repeat
            state["current"] = total
        if progress is not None:
            left = (tests - state["started"]) * o.steps * low
            progress(state["base"] + n, state["base"] + state["current"] + left, status)

    def one(param: str | None = None, value: float | None = None) -> RangeTestResult:
        state["started"] += 1
        state["current"] = o.steps * low
        res = find_lr(
            task,
            start_lr=o.start_lr,
            end_lr=o.end_lr,
            steps=o.steps,
            mode=o.mode,
            smooth=o.smooth,
            diverge=o.diverge,
            accumulate=o.accumulate,
            clip=o.clip,
            amp=o.amp,
            val_every=o.val_every,
            val_batches=o.val_batches,
            optimizer=o.optimizer,
            optimizer_params=_optimizer_params(o, param, value),
            batch_size=o.batch_size,
            device=o.device,
            seed=o.seed,
            repeats=o.repeats,
            max_repeats=o.max_repeats,
            rule=o.rule,
            progress=bar,
        )
        state["base"] += o.steps * len(res.curves)
        state["current"] = 0
        return res

    sw = None
    if o.wd_values or o.momentum_values:
        param = "weight_decay" if o.wd_values else "momentum"
        values = parse_values(
            o.wd_values or o.momentum_values or "", "--wd" if o.wd_values else "--momentum"
        )
        sw = sweep(lambda v: one(param, v), param, values)
        best = sw.best if sw.best is not None else values[0]
        result = sw.results[values.index(best)]
    else:
        result = one()
    outcome = FindOutcome(result=result, options=o, sweep=sw)
    if result.lr is not None:
        outcome.plan = plan(result.lr, o.target or _default_target(result, o))
        outcome.schedule = recommend_schedule(result, o)
    return outcome


def _default_target(result: RangeTestResult, o: FindOptions) -> str:
    if o.schedule_name in ("onecycle", "constant", "step", "cosine"):
        return o.schedule_name
    return "onecycle" if result.info.get("optimizer_family") == "sgd" else "cosine"


def recommend_schedule(result: RangeTestResult, o: FindOptions) -> dict[str, Any]:
    """The recommended schedule for the headline LR, scaled for its family (lrtune.plan)."""
    from lrtune.plan import TARGETS, factor_for
    from lrtune.schedules import get_schedule, recommend
    from lrtune.schedules.recommend import DEFAULT_BY_FAMILY

    family = result.info.get("optimizer_family", "sgd")
    steps_per_epoch = max(1, int(result.info.get("steps_per_epoch") or 1) // o.accumulate)
    requested = o.schedule_name or (o.target if o.target in TARGETS else None)
    name = get_schedule(requested or DEFAULT_BY_FAMILY[family]).name
    factor = factor_for(name)
    headline = float(result.lr or 0.0)
    rec = recommend(headline * factor, family, o.epochs, steps_per_epoch, name=requested)
    if factor != 1.0:
        rec["why"] = (
            f"Base LR {headline * factor:.3g} = {factor:g} x the suggestion {headline:.3g} "
            f"(see lrtune/plan.py). " + str(rec.get("why", ""))
        )
    return {
        **rec,
        "headline_lr": headline,
        "factor": factor,
        "base_lr": rec.get("lr", headline * factor),
        "epochs": o.epochs,
        "steps_per_epoch": steps_per_epoch,
    }
