"""The LR range test (Leslie Smith): ramp the LR over mini-batches, watch the loss.

Engine only: it returns a `RangeTestResult` and never prints; progress reaches a terminal
through the `progress(done, total, status)` callback the caller passes in. The model,
optimizer, GradScaler and RNG states are snapshot once to host memory and restored in a
`finally`, so the model is bit-identical afterwards, also after an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrtune.errors import ConfigError, LrtuneError, TaskError
from lrtune.optim import optimizer_family
from lrtune.runtime import resolve_device, seed_everything, state_checksum, to_device
from lrtune.suggest import (
    HEADLINE_RULE,
    MIN_POINTS,
    RULES,
    Combined,
    combine,
    get_rule,
    prepare_curve,
)
from lrtune.task import infinite

Progress = Callable[..., None]
LossFn = Callable[[nn.Module, Any], torch.Tensor]

MODES = ("exp", "linear")
# Repeats (benchmarks/suggest_quality.py): "auto" runs AUTO_MIN_REPEATS range tests, each
# with its own model initialisation and data order, and adds more (up to max_repeats) while
# the headline's 95% interval (Student's t over the repeats) is wider than lr/TARGET_INTERVAL
# .. lr*TARGET_INTERVAL. Clean curves stop at 3-4; noisy ones (small-batch regression) take
# more, which is what keeps the answer stable across runs. The t quantile matters: with a
# plain standard-error target, 3-6 repeats that agree by luck ended noisy runs early.
DEFAULT_REPEATS = "auto"
AUTO_MIN_REPEATS = 3
DEFAULT_MAX_REPEATS = 20
TARGET_INTERVAL = 1.45  # the 95% interval's half-width as a factor: lr/1.45 .. lr*1.45
AMP_MODES = ("bf16", "fp16")


@dataclass(frozen=True)
class RangeTestSettings:
    """What the range test does. Validated at construction; errors quote the value."""

    start_lr: float = 1e-7
    end_lr: float = 10.0
    steps: int = 100
    mode: str = "exp"
    smooth: float = 0.05  # EMA weight of each new loss (bias-corrected); 0 = no smoothing
    diverge: float = 4.0  # stop when smoothed loss > diverge x best smoothed loss
    accumulate: int = 1  # micro-batches per optimizer step
    clip: float | None = None  # max gradient norm
    amp: str | None = None  # None | 'bf16' | 'fp16'
    val_every: int | None = None  # evaluate val loss every K steps (val-loss mode)
    val_batches: int = 5
    check_every: int | None = None  # host syncs: None = every step on CPU, every 10 on GPU

    def __post_init__(self) -> None:
        if not (self.start_lr > 0 and math.isfinite(self.start_lr)):
            raise ConfigError(f"start_lr must be > 0, got {self.start_lr!r}")
        if not (self.end_lr > self.start_lr and math.isfinite(self.end_lr)):
            raise ConfigError(
                f"end_lr must be greater than start_lr ({self.start_lr:g}), got {self.end_lr!r}"
            )
        if self.steps < 2:
            raise ConfigError(f"steps must be >= 2, got {self.steps!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0 <= self.smooth < 1:
            raise ConfigError(f"smooth must be in [0, 1), got {self.smooth!r}")
        if not self.diverge > 1:
            raise ConfigError(f"diverge must be > 1, got {self.diverge!r}")
        if self.accumulate < 1:
            raise ConfigError(f"accumulate must be >= 1, got {self.accumulate!r}")
        if self.clip is not None and not self.clip > 0:
            raise ConfigError(f"clip must be > 0, got {self.clip!r}")
        if self.amp not in (None, *AMP_MODES):
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.val_every is not None and self.val_every < 1:
            raise ConfigError(f"val_every must be >= 1, got {self.val_every!r}")
        if self.val_batches < 1:
            raise ConfigError(f"val_batches must be >= 1, got {self.val_batches!r}")

    def schedule(self) -> np.ndarray:
        """The LR at each step: exactly start_lr first and end_lr last."""
        if self.mode == "exp":
            lrs = np.geomspace(self.start_lr, self.end_lr, self.steps)
        else:
            lrs = np.linspace(self.start_lr, self.end_lr, self.steps)
        lrs[0], lrs[-1] = self.start_lr, self.end_lr
        return lrs


def ema(values: Sequence[float], weight: float) -> np.ndarray:
    """Bias-corrected exponential moving average; `weight` is the share of each new value."""
    out = np.empty(len(values))
    avg, beta = 0.0, 1.0 - weight
    for i, v in enumerate(values):
        avg = beta * avg + weight * v if weight > 0 else v
        out[i] = avg / (1.0 - beta ** (i + 1)) if weight > 0 else v
    return out


def _two_digits(x: float) -> str:
    """Two significant digits, trailing zero kept: 0.06 -> '0.060', 1.2e-05 -> '1.2e-05'."""
    return f"{x:#.2g}".rstrip(".")


class LossWatch:
    """The one place that decides when a range test stops: bias-corrected EMA of the loss,
    stop on NaN/inf or when the smoothed loss passes `diverge` x its best.

    Fed in chunks (one host sync per chunk). Under DistributedDataParallel, feed it the
    all-reduced loss on every rank so that all ranks stop at the same step.
    """

    def __init__(self, smooth: float, diverge: float) -> None:
        self.weight, self.beta, self.diverge = smooth, 1.0 - smooth, diverge
        self.avg, self.best = 0.0, math.inf
        self.raw: list[float] = []
        self.smoothed: list[float] = []

    def feed(self, values: Sequence[float]) -> str:
        """Record losses in order; return 'end' to go on, or 'nan' / 'diverged' to stop
        (values after the stopping one are dropped)."""
        for v in values:
            self.raw.append(v)
            if not math.isfinite(v):
                self.smoothed.append(math.nan)
                return "nan"
            if self.weight:
                self.avg = self.beta * self.avg + self.weight * v
                sm = self.avg / (1.0 - self.beta ** len(self.raw))
            else:
                sm = v
            self.smoothed.append(sm)
            self.best = min(self.best, sm)
            if sm > self.diverge * self.best:
                return "diverged"
        return "end"


@dataclass
class Curve:
    """One range test's record. Arrays are aligned; the last point may be the divergence."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stop_reason: str  # 'end' | 'diverged' | 'nan' | 'interrupted'
    seed: int
    seconds: float
    steps_run: int
    skipped_steps: list[int] = field(default_factory=list)  # fp16 steps the scaler skipped
    val_lrs: np.ndarray | None = None
    val_losses: np.ndarray | None = None

    @property
    def diverged_lr(self) -> float | None:
        """The LR at which the test stopped for divergence, if it did."""
        if self.stop_reason in ("diverged", "nan") and len(self.lrs):
            return float(self.lrs[-1])
        return None

    def usable(self) -> tuple[np.ndarray, np.ndarray]:
        """(lrs, smoothed loss) that rules read: cut before the divergence point, warm-up skipped.

        In val-loss mode the rules read the (smoothed) validation curve instead.
        """
        if self.val_lrs is not None and self.val_losses is not None and len(self.val_lrs):
            return prepare_curve(self.val_lrs, self.val_losses, skip_start=0.0)
        end = len(self.lrs) - (1 if self.stop_reason in ("diverged", "nan") else 0)
        return prepare_curve(self.lrs[:end], self.smoothed[:end])


@dataclass
class RangeTestResult:
    """What a range test found. `lr` is the headline suggestion (None when there is none)."""

    settings: RangeTestSettings
    curves: list[Curve]
    rule: str
    suggestions: dict[str, float | None]
    per_repeat: dict[str, list[float | None]]
    warnings: list[str]
    checksum_before: str
    checksum_after: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def lr(self) -> float | None:
        """The headline suggested learning rate."""
        return self.suggestions.get(self.rule)

    @property
    def lrs(self) -> np.ndarray:
        """LRs of the aggregate (median over repeats) curve."""
        return self.aggregate()[0]

    @property
    def losses(self) -> np.ndarray:
        """Median raw loss over repeats."""
        return self.aggregate()[1]

    @property
    def smoothed(self) -> np.ndarray:
        """Median smoothed loss over repeats."""
        return self.aggregate()[2]

    def aggregate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lrs, median raw, median smoothed, band low, band high) over the steps all ran."""
        return aggregate_curves(self.curves)

    def spread(self, rule: str | None = None) -> float | None:
        """max/min ratio of a rule's suggestion across repeats (None with < 2 values)."""
        vals = [v for v in self.per_repeat.get(rule or self.rule, []) if v]
        return max(vals) / min(vals) if len(vals) >= 2 else None

    def combined(self, rule: str | None = None) -> Combined:
        """A rule's per-repeat suggestions combined (its lr, standard error, outliers)."""
        return combine(self.per_repeat.get(rule or self.rule, []))

    def uncertainty(self, rule: str | None = None) -> float | None:
        """The ~95% interval of a rule's suggestion as a factor (lr / f .. lr * f)."""
        if self.suggestions.get(rule or self.rule) is None:
            return None
        return self.combined(rule).uncertainty

    def interval_text(self, rule: str | None = None) -> str | None:
        """A rule's 95% interval to two significant digits, '0.029 .. 0.060' (None without)."""
        lr, f = self.suggestions.get(rule or self.rule), self.uncertainty(rule)
        if lr is None or f is None:
            return None
        return f"{_two_digits(lr / f)} .. {_two_digits(lr * f)}"

    @property
    def confidence(self) -> str:
        """From the headline's 95% interval over repeats: 'high' when it is within
        TARGET_INTERVAL (where --repeats auto stops), 'medium' within twice that width (in
        decades), else 'low'; 'unknown' with a single repeat, 'none' without a suggestion."""
        if self.lr is None:
            return "none"
        f = self.combined().uncertainty
        if f is None:
            return "unknown"
        return "high" if f <= TARGET_INTERVAL else "medium" if f <= TARGET_INTERVAL**2 else "low"

    @property
    def identical(self) -> bool:
        """True when the model's weights were restored bit for bit."""
        return self.checksum_before == self.checksum_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the body of result.json)."""
        curves = []
        for c in self.curves:
            curves.append(
                {
                    "seed": c.seed,
                    "stop_reason": c.stop_reason,
                    "steps_run": c.steps_run,
                    "diverged_lr": c.diverged_lr,
                    "min_loss": float(np.nanmin(c.smoothed)) if len(c.smoothed) else None,
                    "lr_at_min_loss": float(c.lrs[int(np.nanargmin(c.smoothed))])
                    if len(c.smoothed) and np.isfinite(c.smoothed).any()
                    else None,
                    "skipped_steps": c.skipped_steps,
                    "seconds": c.seconds,
                }
            )
        return {
            "command": "find",
            "headline": {
                "rule": self.rule,
                "lr": self.lr,
                "confidence": self.confidence,
                "uncertainty": self.uncertainty(),
                "interval": self._interval(),
                "spread": self.spread(),
                "repeats": len(self.curves),
                "outliers": list(self.combined().outliers),
            },
            "suggestions": {
                name: {
                    "lr": self.suggestions.get(name),
                    "per_repeat": self.per_repeat.get(name, []),
                    "uncertainty": self.uncertainty(name),
                    "spread": self.spread(name),
                    "description": RULES[name].description,
                }
                for name in RULES
            },
            "settings": asdict(self.settings),
            "repeats": curves,
            "warnings": list(self.warnings),
            "weights": {
                "checksum_before": self.checksum_before,
                "checksum_after": self.checksum_after,
                "restored": self.identical,
            },
            "timings": {
                "total_s": self.seconds,
                "per_step_ms": 1000.0
                * sum(c.seconds for c in self.curves)
                / max(1, sum(c.steps_run for c in self.curves)),
            },
            **self.info,
        }

    def _interval(self) -> list[float] | None:
        f = self.uncertainty()
        return None if f is None or self.lr is None else [self.lr / f, self.lr * f]

    def plot(self, path: str | Path | None = None) -> Any:
        """Draw the loss-vs-LR figure; save it as PNG when `path` is given. Returns the Figure."""
        from lrtune.report.find_plot import draw_lr_find, lr_find_plot_data
        from lrtune.report.rundir import save_figure

        fig = draw_lr_find(lr_find_plot_data(self))
        if path is not None:
            save_figure(fig, path)
        return fig


def aggregate_curves(
    curves: Sequence[Curve],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and min-max band over repeats, on the steps every repeat reached.

    The smoothed columns are the online EMA that the rules read.
    """
    if not curves:
        empty = np.array([])
        return empty, empty, empty, empty, empty
    n = min(len(c.lrs) for c in curves)
    lrs = curves[0].lrs[:n]
    raw = np.stack([c.losses[:n] for c in curves])
    sm = np.stack([c.smoothed[:n] for c in curves])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns past a divergence
        return (
            lrs,
            np.nanmedian(raw, axis=0) if len(curves) > 1 else raw[0],
            np.nanmedian(sm, axis=0) if len(curves) > 1 else sm[0],
            np.nanmin(sm, axis=0),
            np.nanmax(sm, axis=0),
        )


class _Snapshot:
    """Host-memory copy of everything a range test touches; restore() puts it all back."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.model_state = {
            k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }
        self.optimizer_state = _to_cpu(optimizer.state_dict())
        self.scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
        self.training = model.training
        params = list(model.parameters())
        self.device = params[0].device if params else torch.device("cpu")
        self.rng_torch = torch.get_rng_state()
        self.rng_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.rng_numpy = np.random.get_state()
        self.rng_python = random.getstate()

    def restore(self) -> None:
        # Weights first (in place, no second device copy), then the device, then the
        # optimizer, whose load_state_dict casts its state to the parameters' device.
        self.model.load_state_dict(self.model_state)
        self.model.to(self.device)
        self.model.train(self.training)
        self.optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        if self.scaler is not None and self.scaler_state is not None:
            self.scaler.load_state_dict(copy.deepcopy(self.scaler_state))
        torch.set_rng_state(self.rng_torch)
        if self.rng_cuda is not None:
            torch.cuda.set_rng_state_all(self.rng_cuda)
        np.random.set_state(self.rng_numpy)
        random.setstate(self.rng_python)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


class RangeTest:
    """LR range test over your own model, optimizer and loader.

    Args:
        model: the module to test; it is left bit-identical afterwards.
        optimizer: its optimizer; per-group LRs keep their ratios to the largest group LR.
        train_loader: any iterable of batches (cycled when shorter than the test).
        loss: loss(model, batch) -> scalar tensor (e.g. Task.loss).
        val_loader: batches for val-loss mode (`val_every`).
        device: where to run ('auto', 'cpu', 'cuda', ... or a torch.device).
        scaler: an existing fp16 GradScaler to use (its state is restored too).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: Any,
        loss: LossFn,
        val_loader: Any = None,
        device: str | torch.device = "auto",
        scaler: Any = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.loss = loss
        self.val_loader = val_loader
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.scaler = scaler
        tops = [float(g["lr"]) for g in optimizer.param_groups]
        top = max(tops) if tops and max(tops) > 0 else 1.0
        self.ratios = [(lr / top) if lr > 0 else 1.0 for lr in tops]

    def run(
        self,
        settings: RangeTestSettings | None = None,
        *,
        seed: int = 0,
        repeats: int | str = DEFAULT_REPEATS,
        max_repeats: int = DEFAULT_MAX_REPEATS,
        rule: str = HEADLINE_RULE,
        progress: Progress | None = None,
        reinit: Callable[[int], None] | None = None,
    ) -> RangeTestResult:
        """Run range tests (seeds seed, seed+1, ...), restoring state between them.

        `repeats` is a count, or "auto": AUTO_MIN_REPEATS tests, then one more at a time,
        up to `max_repeats`, while the headline's 95% interval is wider than TARGET_INTERVAL.
        `reinit(seed)`, when given, re-initialises the model's weights before each repeat
        after the first (find_lr rebuilds the task's model from that seed); without it the
        repeats differ in data order only.

        Returns:
            The result, with suggestions from every rule and the headline from `rule`.
        """
        settings = settings or RangeTestSettings()
        get_rule(rule)
        low, high = repeat_range(repeats, max_repeats)
        if settings.val_every and self.val_loader is None:
            raise ConfigError("val_every needs validation data (define val_data() in the task)")
        scaler = self.scaler
        if settings.amp == "fp16" and scaler is None:
            scaler = torch.amp.GradScaler(self.device.type)
        t0 = time.perf_counter()
        before = state_checksum(self.model)
        snapshot = _Snapshot(self.model, self.optimizer, scaler)
        curves: list[Curve] = []
        planned = low
        try:
            self.model.to(self.device)
            while len(curves) < planned:
                r = len(curves)
                if r and reinit is not None:
                    reinit(seed + r)
                    self.model.to(self.device)
                curve = self._one(settings, seed + r, scaler, progress, r, planned)
                curves.append(curve)
                snapshot.restore()
                self.model.to(self.device)
                if curve.stop_reason == "interrupted":
                    break
                if len(curves) == planned < high and _needs_more(curves, rule):
                    planned += 1
        finally:
            snapshot.restore()
        after = state_checksum(self.model)
        return build_result(settings, curves, rule, before, after, time.perf_counter() - t0)

    # -- one test ---------------------------------------------------------------------
    def _one(
        self,
        s: RangeTestSettings,
        seed: int,
        scaler: Any,
        progress: Progress | None,
        repeat: int,
        repeats: int,
    ) -> Curve:
        seed_everything(seed)
        model, opt, device = self.model, self.optimizer, self.device
        model.train()
        opt.zero_grad(set_to_none=True)
        lrs = s.schedule()
        check_every = s.check_every or (1 if device.type == "cpu" else 10)
        amp_dtype = torch.bfloat16 if s.amp == "bf16" else torch.float16
        autocast: Callable[[], Any] = (
            (lambda: torch.autocast(device.type, dtype=amp_dtype))
            if s.amp
            else contextlib.nullcontext
        )
        params = [p for g in opt.param_groups for p in g["params"]]
        batches = infinite(self.train_loader)
        pending: list[torch.Tensor] = []
        kept_lrs: list[float] = []
        skipped: list[int] = []
        val_lrs: list[float] = []
        val_losses: list[float] = []
        watch = LossWatch(s.smooth, s.diverge)
        raw, smoothed = watch.raw, watch.smoothed
        stop = "end"
        t0 = time.perf_counter()
        total = s.steps * repeats
        i = 0  # index of the LR being tried; advances only on real optimizer steps
        try:
            while i < s.steps:
                lr = float(lrs[i])
                for g, ratio in zip(opt.param_groups, self.ratios):
                    g["lr"] = lr * ratio
                step_loss = torch.zeros((), device=device)
                for _ in range(s.accumulate):
                    batch = to_device(next(batches), device)
                    with autocast():
                        loss = self.loss(model, batch)
                    scaled = loss.float() / s.accumulate
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                    step_loss = step_loss + loss.detach().float() / s.accumulate
                if scaler is not None:
                    if s.clip:
                        scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_(params, s.clip)
                    scale_before = scaler.get_scale()
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad(set_to_none=True)
                    if scaler.get_scale() < scale_before:  # fp16 only: one sync for the flag
                        skipped.append(len(kept_lrs) + len(pending))
                        continue  # the step did not happen: try the same LR again
                else:
                    if s.clip:
                        nn.utils.clip_grad_norm_(params, s.clip)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                pending.append(step_loss)
                kept_lrs.append(lr)
                i += 1
                if s.val_every and (i % s.val_every == 0 or i == s.steps):
                    val_lrs.append(lr)
                    val_losses.append(self._val_loss(s, autocast))
                if len(pending) >= check_every or i == s.steps:
                    # One host sync per chunk: losses stay on the device in between.
                    values = torch.stack(pending).tolist()
                    pending.clear()
                    stop = watch.feed(values)
                    if progress is not None:
                        last = smoothed[-1] if smoothed else math.nan
                        progress(
                            repeat * s.steps + len(raw),
                            total,
                            f"lr {kept_lrs[len(raw) - 1]:.2e}  loss {last:.4g}",
                        )
                    if stop != "end":
                        break
        except KeyboardInterrupt:
            stop = "interrupted"
        n = len(raw)
        val_l = np.array(val_lrs) if s.val_every else None
        val_v = ema(val_losses, min(1.0, s.smooth * (s.val_every or 1))) if s.val_every else None
        if val_l is not None and n:
            keep = val_l <= kept_lrs[n - 1]
            val_l, val_v = val_l[keep], val_v[keep] if val_v is not None else None
        return Curve(
            lrs=np.array(kept_lrs[:n]),
            losses=np.array(raw),
            smoothed=np.array(smoothed[:n]),
            stop_reason=stop,
            seed=seed,
            seconds=time.perf_counter() - t0,
            steps_run=n,
            skipped_steps=skipped,
            val_lrs=val_l,
            val_losses=val_v,
        )

    @torch.no_grad()
    def _val_loss(self, s: RangeTestSettings, autocast: Callable[[], Any]) -> float:
        self.model.eval()
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        n = 0
        try:
            for k, batch in enumerate(self.val_loader):
                if k >= s.val_batches:
                    break
                with autocast():
                    total += self.loss(self.model, to_device(batch, self.device)).double()
                n += 1
        finally:
            self.model.train()
        return float(total) / max(n, 1)


def build_result(
    settings: RangeTestSettings,
    curves: list[Curve],
    rule: str,
    before: str,
    after: str,
    seconds: float,
) -> RangeTestResult:
    """Apply every rule to each repeat, combine them over repeats; add the guards' warnings."""
    per_repeat: dict[str, list[float | None]] = {
        name: [_rule_on(c, name) for c in curves] for name in RULES
    }
    suggestions = {name: combine(vals).lr for name, vals in per_repeat.items()}
    interrupted = any(c.stop_reason == "interrupted" for c in curves)
    below = sorted(n for n, v in suggestions.items() if v is not None and v < settings.start_lr)
    for name in below:  # e.g. minimum/10 when the loss was lowest at the very start
        suggestions[name] = None
    if interrupted:  # a partial curve is saved and drawn, but suggests nothing
        suggestions = dict.fromkeys(suggestions)
    result = RangeTestResult(
        settings=settings,
        curves=curves,
        rule=rule,
        suggestions=suggestions,
        per_repeat=per_repeat,
        warnings=[],
        checksum_before=before,
        checksum_after=after,
        seconds=seconds,
    )
    result.warnings.extend(guard_warnings(result))
    result.warnings.extend(_repeat_warnings(result))
    if below and not interrupted:
        result.warnings.append(
            f"{', '.join(below)} fell below --start-lr {settings.start_lr:g} (the loss was "
            "lowest near the start of the range): dropped; lower --start-lr to see more"
        )
    return result


def repeat_range(
    repeats: int | str,
    max_repeats: int = DEFAULT_MAX_REPEATS,
    names: tuple[str, str] = ("repeats", "max_repeats"),
) -> tuple[int, int]:
    """(fewest, most) range tests for a `repeats` setting: a count, or "auto".

    `names` are what error messages call the two settings (the CLI's flags, for its errors).

    Raises:
        ConfigError: not "auto" nor a count >= 1, or max_repeats < 1.
    """
    if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
        raise ConfigError(f"{names[1]} must be an integer >= 1, got {max_repeats!r}")
    if repeats == "auto":
        return min(AUTO_MIN_REPEATS, max_repeats), max_repeats
    try:
        n = int(repeats)
    except (TypeError, ValueError):
        n = 0
    if isinstance(repeats, bool) or n < 1 or str(n) != str(repeats).strip():
        raise ConfigError(f"{names[0]} must be 'auto' or an integer >= 1, got {repeats!r}")
    return n, n


def _rule_on(curve: Curve, rule: str) -> float | None:
    """One rule's suggestion from one repeat's curve (None when it is too short)."""
    lr, loss = curve.usable()
    return RULES[rule].fn(lr, loss) if len(lr) >= MIN_POINTS else None


def _needs_more(curves: Sequence[Curve], rule: str) -> bool:
    """True while the headline's 95% interval over these repeats is wider than TARGET_INTERVAL."""
    c = combine([_rule_on(cv, rule) for cv in curves])
    if c.lr is None:
        return False  # no repeat suggests anything: more of the same will not help
    return c.uncertainty is None or c.uncertainty > TARGET_INTERVAL


def _repeat_warnings(result: RangeTestResult) -> list[str]:
    """Warnings about the repeats: left-out outliers, and a headline they could not pin down."""
    if result.lr is None or len(result.curves) < 2:
        return []
    out = []
    combined = result.combined()
    if combined.outliers:
        vals = ", ".join(f"{v:.2g}" for v in combined.outliers)
        out.append(
            f"{len(combined.outliers)} of {len(result.curves)} range tests put {result.rule} "
            f"more than 10x away from the others ({vals}) and were left out"
        )
    f = result.uncertainty()
    if f is not None and result.confidence != "high":
        out.append(
            f"the {len(result.curves)} range tests disagree: {result.rule} is known only to "
            f"{result.interval_text()} (95%); the curves are noisy (small "
            "batches?): a larger --batch-size or --max-repeats narrows it"
        )
    return out


def guard_warnings(result: RangeTestResult) -> list[str]:
    """Plain-words warnings about curves that can't be read with confidence."""
    s = result.settings
    out: list[str] = []
    if not result.curves:
        return ["no range test completed"]
    c = result.curves[0]
    if c.stop_reason == "interrupted":
        return [
            f"interrupted after {c.steps_run} of {s.steps} steps: the partial curve is saved, "
            "but a partial curve gives no suggestion"
        ]
    finite = np.isfinite(c.losses)
    if len(c.losses) and not finite[: max(1, min(5, len(finite)))].all():
        k = int(np.argmin(finite))
        out.append(
            f"the loss is NaN/inf in the first steps (step {k + 1}, lr {c.lrs[k]:.2e}): "
            "check the data, the labels and the loss function before tuning the LR"
        )
        return out
    lr, loss = c.usable()
    if c.stop_reason in ("diverged", "nan") and c.steps_run <= max(10, 0.1 * s.steps):
        out.append(
            f"the loss diverged almost at once ({c.steps_run} steps, lr {c.diverged_lr:.2e}): "
            f"lower --start-lr (now {s.start_lr:g})"
        )
    if len(lr) < MIN_POINTS:
        why = (
            "before the loss diverged: lower --start-lr or raise --steps"
            if c.stop_reason in ("diverged", "nan")
            else f"(fewer than {MIN_POINTS}): raise --steps"
        )
        out.append(f"only {len(lr)} usable points {why}; no suggestion")
        return out
    first, low = float(loss[0]), float(np.min(loss))
    change = (first - low) / abs(first) if first else 0.0
    if change < 0.05 and np.ptp(loss) < 0.05 * abs(first):
        out.append(
            f"the loss curve is flat (it moved {100 * change:.1f}% over the range): the model "
            "may be pretrained or the range too narrow; widen --start-lr/--end-lr"
        )
    if c.stop_reason == "end" and loss[-1] < 1.5 * low + 1e-12:
        out.append(
            f"the loss never diverged up to lr {s.end_lr:g}: raise --end-lr to see where "
            "training breaks (suggestions near the end of the range are less reliable)"
        )
    if c.skipped_steps:
        out.append(f"the fp16 GradScaler skipped {len(c.skipped_steps)} steps (inf/NaN gradients)")
    return out


def find_lr(
    task: Any,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    mode: str = "exp",
    smooth: float = 0.05,
    diverge: float = 4.0,
    accumulate: int = 1,
    clip: float | None = None,
    amp: str | None = None,
    val_every: int | None = None,
    val_batches: int = 5,
    optimizer: str = "sgd",
    optimizer_params: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    repeats: int | str = DEFAULT_REPEATS,
    max_repeats: int = DEFAULT_MAX_REPEATS,
    rule: str = HEADLINE_RULE,
    progress: Progress | None = None,
) -> RangeTestResult:
    """Run the LR range test on a task file (or a loaded Task).

    Builds the model and optimizer from the task (seeded); repeat r starts from the
    task's model built with seed + r and sees the data in that seed's order (see
    RangeTest.run for `repeats`). See RangeTestSettings for the meaning of each knob.

    Raises:
        TaskError: the task file is broken.
        ConfigError: a setting is out of range.
    """
    from lrtune.task import Task, load_task, user_line

    t = task if isinstance(task, Task) else load_task(task)
    settings = RangeTestSettings(
        start_lr=start_lr,
        end_lr=end_lr,
        steps=steps,
        mode=mode,
        smooth=smooth,
        diverge=diverge,
        accumulate=accumulate,
        clip=clip,
        amp=amp,
        val_every=val_every,
        val_batches=val_batches,
    )
    dev = resolve_device(device)
    seed_everything(seed)
    model = t.build_model().to(dev)
    opt = t.build_optimizer(model.parameters(), start_lr, optimizer, **dict(optimizer_params or {}))
    val_loader = t.val_loader(batch_size) if val_every else None
    loader = t.train_loader(batch_size)
    rt = RangeTest(model, opt, loader, t.loss, val_loader, dev)

    def reinit(s: int) -> None:  # each repeat samples the initialisation too
        seed_everything(s)
        model.load_state_dict(t.build_model().state_dict())

    try:
        result = rt.run(
            settings,
            seed=seed,
            repeats=repeats,
            max_repeats=max_repeats,
            rule=rule,
            progress=progress,
            reinit=reinit,
        )
    except LrtuneError:
        raise
    except Exception as exc:  # the user's model, loss or data raised: one line, exit 2
        raise TaskError(
            f"{t.path}{user_line(exc, t.path)}: the range test failed in the task's code: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    actual_bs = getattr(loader, "batch_size", None) or batch_size or t.batch_size
    if batch_size and actual_bs != batch_size:
        result.warnings.append(
            f"--batch-size {batch_size} was ignored: train_data() returns a DataLoader "
            f"with batch size {actual_bs}"
        )
    result.info.update(
        {
            "task": str(t.path),
            "optimizer": type(opt).__name__ if t.has_custom_optimizer else optimizer,
            "optimizer_params": dict(optimizer_params or {}),
            "device": str(dev),
            "batch_size": actual_bs,
            "steps_per_epoch": _len_or_none(rt.train_loader),
            "seed": seed,
        }
    )
    result.info["optimizer_family"] = optimizer_family(opt)
    return result


def _len_or_none(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None
