"""Learning-curve diagnosis: label a run's per-epoch curves with the patterns practitioners read.

Pure (numpy only, no torch): `diagnose_curves(records)` takes per-epoch records (the shared
loop's `EpochRecord`, or dicts with the same keys: `epoch`, `lr`, `train_loss`, and optionally
`val_loss`, `val_metric`) and returns a list of `Finding`s, each with the numbers that
triggered it, plain advice and the epoch range to shade on a plot.

Patterns (one registry, `PATTERNS`; each detector is a pure function of the curves):

- `bad_init`: the loss at initialisation is far above the know-nothing loss, or the train
  loss sits still for the first epochs before it starts falling.
- `lr_too_high`: the train loss is non-finite, climbs well above its minimum, stays high and
  flat (or never beats the know-nothing loss), or blew up far above the loss at initialisation.
- `decayed_too_early`: an LR cut in the first half of the run while the loss was still falling,
  after which the loss flattened above where that pace was heading within a couple of epochs
  (judged on the val loss when there is one, with the train loss stalled too and the val
  plateau near it). A cut after which the loss drops (the normal step-decay signature) and
  keeps slowly improving is healthy.
- `train_longer`: the monitored metric is still improving at the end of the run (a loss still
  barely below chance at the end: the advice is a higher LR).
- `overfitting`: the val loss rose from its minimum while the train loss kept falling, and
  val is far worse than train.
- `underfitting`: the train loss plateaued at a poor level, with val close to train.
- `oscillating`: the train loss (and the val loss, when there is one) goes up and down from
  epoch to epoch instead of falling.

"Poor" and "high" are judged against a *reference loss*: the loss of a model that knows
nothing. Pass `baseline_loss` when it is known (ln C for C-class cross-entropy, Var(y) for
MSE regression); otherwise the loss at initialisation (`initial_loss`, e.g.
`TrainResult.initial_loss`) is used; failing both, the first epoch's mean train loss (which
is already lower than the loss at initialisation, so `underfitting` is then judged leniently
and `lr_too_high`'s "high and flat" and `bad_init`'s init-loss test are not judged at all).

Every threshold is a named constant below. Fewer than `MIN_EPOCHS` epochs: nothing is judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from lrtune.errors import ConfigError, unknown_name

Severity = Literal["error", "warning", "info"]
_EPOCH1 = "epoch-1 train loss"  # the reference of last resort (see the module docstring)
SEVERITY_ORDER: Mapping[str, int] = {"error": 0, "warning": 1, "info": 2}

# -- thresholds (documented once, here) ----------------------------------------------------
#: Fewer epochs than this and no pattern is judged (one or two points are not a curve).
MIN_EPOCHS = 3

#: bad_init: the loss at initialisation is at least this many times the reference
#: (know-nothing) loss. A model initialised well predicts roughly uniform classes at step 0.
BAD_INIT_LOSS_RATIO = 2.0
#: bad_init: an epoch counts as "moved" once its train loss is this fraction away from epoch 1's
#: (a first move upwards is an LR problem, not a slow start).
STUCK_REL_DROP = 0.05
#: bad_init: the loss must sit still for at least this many epochs after the first ...
STUCK_MIN_EPOCHS = 2
#: ... and for at least this fraction of the run,
STUCK_MIN_FRACTION = 0.15
#: ... and then fall by at least this fraction (else the curve is flat, not slow to start).
STUCK_LATER_REL_DROP = 0.2

#: lr_too_high: the last train loss is at least this many times the lowest one seen ...
EXPLODE_RATIO = 1.5
#: ... or at least this many times, when it also climbed back to near the reference loss
#: (HIGH_LOSS_FRACTION): the model un-learned what it had learned.
RELAPSE_RATIO = 1.2
#: lr_too_high: an epoch's mean train loss at least this many times the loss at initialisation
#: means the updates blew the loss up (judged only when the loss at initialisation is known).
BLOWUP_RATIO = 2.0
#: lr_too_high: a train loss whose best value stays above this fraction of the reference
#: (know-nothing) loss, and that is no longer improving, is stuck at chance. Judged only
#: with a real reference (baseline_loss or initial_loss), not the epoch-1 fallback.
HIGH_LOSS_FRACTION = 0.9
#: lr_too_high: a best train loss at or above this fraction of the reference never beat knowing
#: nothing, improving or not.
NEVER_LEARNED_LEVEL = 1.0
#: lr_too_high: a loss near chance that fell in at least this share of the tail's epochs is
#: creeping down steadily (an LR too low), not stuck (an LR too high).
CREEP_DOWN_FRACTION = 0.8

#: decayed_too_early: an LR at most this fraction of the peak so far counts as a decay (a cut).
DECAY_RATIO = 0.5
#: decayed_too_early: only a cut in the first this-fraction of the run can be early.
EARLY_DECAY_FRACTION = 0.5
#: decayed_too_early: the pre-cut pace is the slower of the last this-many epochs' drops
#: (one noisy epoch cannot make a flat curve look steep).
PRE_DECAY_WINDOW = 2
#: decayed_too_early: the loss was still falling at least this fast just before the cut
#: (log-loss per epoch, i.e. about 2 % per epoch).
STILL_FALLING_RATE = 0.02
#: decayed_too_early: after the cut the loss's trend (a log-linear fit over the epochs after the
#: first post-cut one) falls at less than this fraction of the pre-cut pace: a plateau.
PLATEAU_RATE_RATIO = 0.25
#: decayed_too_early: at least this many epochs after the first post-cut epoch (to see a plateau).
MIN_POST_DECAY_EPOCHS = 3
#: decayed_too_early: after the cut, the whole rest of the run gained less than this many
#: epochs' worth of the pre-cut pace: the loss never got below where that pace was heading
#: within this many epochs. A real curve decelerates, so this is a short look ahead; a cut that
#: helped (the loss dropped right after it, the normal step-decay signature) gets below it.
HEADING_EPOCHS = 2.0
#: decayed_too_early: judged on the val loss only while the val plateau is at most this many
#: times the train loss; further above, the model stopped generalising better, not learning,
#: and a later decay would lower the train loss, not the val loss (overfitting's business).
STALL_MAX_VAL_OVER_TRAIN = 1.5

#: decayed_too_early / overfitting: a loss level (or a rise) below this fraction of the
#: reference loss is negligible: nothing there to act on.
NEGLIGIBLE_FRACTION = 0.01

#: train_longer / underfitting: the tail of the run is its last quarter ...
TAIL_FRACTION = 0.25
#: ... and at least this many epochs.
TAIL_MIN_EPOCHS = 3
#: train_longer: the tail brought at least this share of the run's total improvement ...
TAIL_GAIN_SHARE = 0.1
#: ... or, for a loss, its tail still falls at least this fast (log-loss per epoch, ~5 %) ...
STILL_IMPROVING_RATE = 0.05
#: ... the best value is within the last this-many epochs ...
BEST_WITHIN_LAST = 2
#: ... and the tail's linear trend beats its noise (residual std) by this factor.
TREND_OVER_NOISE = 2.0

#: overfitting: the val loss at the end (mean of the last OVERFIT_MIN_RISE_EPOCHS epochs, so
#: one noisy epoch is not enough) is at least this fraction above its minimum ...
OVERFIT_VAL_RISE = 0.05
#: ... the minimum is at least this many epochs before the end ...
OVERFIT_MIN_RISE_EPOCHS = 3
#: ... and the end val loss is at least this many times the final train loss ...
OVERFIT_GAP_RATIO = 1.5
#: ... and the rise is at least this many times the val loss's epoch-to-epoch noise
#: (so that a noisy but flat val curve does not count: its minimum is just a low draw).
OVERFIT_RISE_OVER_NOISE = 3.0

#: underfitting: the best train loss is still at least this fraction of the reference loss.
POOR_FRACTION = 0.5
#: underfitting: val within this fraction of train (train and val close).
CLOSE_GAP = 0.2
#: lr_too_high / underfitting: a tail that improved the train loss by less than this
#: fraction has plateaued.
PLATEAU_REL_GAIN = 0.02
#: underfitting: a train loss still falling by more than this fraction over the tail is
#: undertrained rather than underfitting (see train_longer).
UNDERFIT_MAX_TAIL_GAIN = 0.05

#: oscillating: the fraction of epoch-to-epoch moves that reverse direction ...
OSC_REVERSAL_FRACTION = 0.5
#: ... the mean upward jump, relative to the loss level ...
OSC_MIN_JUMP = 0.05
#: ... and the share of total motion that is wasted (goes back and forth) rather than net.
OSC_WASTED_SHARE = 0.5
#: oscillating needs at least this many epochs.
OSC_MIN_EPOCHS = 5


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One diagnosed pattern.

    Attributes:
        code: the pattern's registry key ('overfitting', ...).
        title: a short human title.
        evidence: plain words with the numbers that triggered it.
        advice: what to do about it.
        severity: 'error' (the run is broken), 'warning' (fix it), 'info' (worth knowing).
        start_epoch: first epoch of the triggering region (inclusive; the records' numbering).
        end_epoch: last epoch of the triggering region (inclusive).
        curve: the series that shows it: 'train_loss', 'val_loss', 'val_metric' or 'lr'.
        numbers: the measured values behind `evidence`, for machines.
    """

    code: str
    title: str
    evidence: str
    advice: str
    severity: Severity
    start_epoch: int
    end_epoch: int
    curve: str
    numbers: Mapping[str, float] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return {
            "code": self.code,
            "title": self.title,
            "severity": self.severity,
            "evidence": self.evidence,
            "advice": self.advice,
            "epochs": [self.start_epoch, self.end_epoch],
            "curve": self.curve,
            "numbers": dict(self.numbers),
        }


@dataclass(frozen=True)
class Curves:
    """Per-epoch series as float arrays (NaN where a value is missing or non-finite).

    `val_loss` / `val_metric` are None when no record has them.
    """

    epoch: np.ndarray
    lr: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray | None
    val_metric: np.ndarray | None

    def __len__(self) -> int:
        return len(self.epoch)

    def series(self, name: str) -> np.ndarray | None:
        """A series by name ('train_loss', 'val_loss', 'val_metric', 'lr')."""
        value: np.ndarray | None = getattr(self, name)
        return value


def _get(record: Any, key: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key, None)


def _num(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def curves_from_records(records: Iterable[Any]) -> Curves:
    """Turn EpochRecord-like objects or dicts into `Curves`.

    Missing `epoch` numbers count from 1; missing or None values become NaN.

    Raises:
        ConfigError: a record has no `train_loss` key/attribute at all.
    """
    rows = list(records)
    epochs, lrs, train, val, metric = [], [], [], [], []
    for i, rec in enumerate(rows):
        has_train = "train_loss" in rec if isinstance(rec, Mapping) else hasattr(rec, "train_loss")
        if not has_train:
            raise ConfigError(
                f"epoch record {i} has no 'train_loss' (got {type(rec).__name__}: {rec!r:.80})"
            )
        ep = _get(rec, "epoch")
        epochs.append(i + 1 if ep is None else int(ep))
        lrs.append(_num(_get(rec, "lr")))
        train.append(_num(_get(rec, "train_loss")))
        val.append(_num(_get(rec, "val_loss")))
        metric.append(_num(_get(rec, "val_metric")))
    val_a = np.asarray(val, dtype=float)
    metric_a = np.asarray(metric, dtype=float)
    return Curves(
        epoch=np.asarray(epochs, dtype=int),
        lr=np.asarray(lrs, dtype=float),
        train_loss=np.asarray(train, dtype=float),
        val_loss=val_a if np.isfinite(val_a).any() else None,
        val_metric=metric_a if np.isfinite(metric_a).any() else None,
    )


@dataclass(frozen=True)
class Context:
    """What a detector knows besides the curves.

    Attributes:
        reference_loss: the know-nothing loss (see the module docstring) or None.
        reference_name: how the reference was obtained, for evidence text.
        initial_loss: the loss at initialisation (before any update), or None.
        baseline_loss: the caller's know-nothing loss (ln C, Var(y)), or None.
        metric_mode: 'max' when a higher val_metric is better, else 'min'.
        diverged: the run was stopped for a non-finite or exploding loss.
        diverged_step: the optimizer step at which it was stopped, when known.
    """

    reference_loss: float | None
    reference_name: str
    initial_loss: float | None
    baseline_loss: float | None
    metric_mode: str
    diverged: bool
    diverged_step: int | None = None


Detector = Callable[[Curves, Context], "Finding | None"]


@dataclass(frozen=True)
class PatternSpec:
    """A registry entry: a pure detector over (curves, context) and what it means."""

    code: str
    title: str
    description: str
    detect: Detector
    #: codes that, when also found, explain this pattern away (it is then not reported)
    explained_by: tuple[str, ...] = ()


# -- helpers ---------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    """A loss/metric value, short."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _tail_len(n: int) -> int:
    return min(n, max(TAIL_MIN_EPOCHS, int(math.ceil(TAIL_FRACTION * n))))


def _drop_pct(rate: float) -> str:
    """A log-rate (log units per epoch) as the share of the loss lost per epoch: '42.1%'."""
    return f"{-100 * math.expm1(-rate):.1f}%"


def _log_rate(a: float, b: float, epochs: int) -> float:
    """How fast a positive loss fell from a to b over `epochs` epochs (log units per epoch)."""
    if epochs <= 0 or not (a > 0 and b > 0):
        return math.nan
    return (math.log(a) - math.log(b)) / epochs


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _noise(values: np.ndarray) -> float:
    """Epoch-to-epoch noise of a series (robust std of its differences over sqrt 2)."""
    d = np.diff(values)
    if d.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _ep(c: Curves, i: int) -> int:
    return int(c.epoch[i])


# -- detectors -------------------------------------------------------------------------------
def _bad_init(c: Curves, ctx: Context) -> Finding | None:
    n = len(c)
    loss = c.train_loss
    if (
        ctx.initial_loss is not None
        and ctx.baseline_loss is not None
        and ctx.baseline_loss > 0
        and math.isfinite(ctx.initial_loss)
        and ctx.initial_loss >= BAD_INIT_LOSS_RATIO * ctx.baseline_loss
    ):
        ratio = ctx.initial_loss / ctx.baseline_loss
        return Finding(
            code="bad_init",
            title="Bad initialisation",
            evidence=(
                f"the loss at initialisation was {_fmt(ctx.initial_loss)}, {ratio:.1f}x the "
                f"know-nothing loss {_fmt(ctx.baseline_loss)} ({ctx.reference_name}); "
                f"threshold {BAD_INIT_LOSS_RATIO:g}x"
            ),
            advice=(
                "the model starts out confidently wrong: initialise the last layer small "
                "(or zero) with its bias at the log class priors / the target mean, and check "
                "that inputs are normalised; run `lrtune doctor` on the task"
            ),
            severity="warning",
            start_epoch=_ep(c, 0),
            end_epoch=_ep(c, 0),
            curve="train_loss",
            numbers={
                "initial_loss": ctx.initial_loss,
                "baseline_loss": ctx.baseline_loss,
                "ratio": ratio,
            },
        )
    if not math.isfinite(loss[0]) or loss[0] <= 0:
        return None
    off = np.isfinite(loss[1:]) & (np.abs(loss[1:] - loss[0]) > loss[0] * STUCK_REL_DROP)
    moved = np.flatnonzero(off)
    if moved.size == 0:
        return None  # never moved: flat, judged by lr_too_high / underfitting
    k = int(moved[0]) + 1  # first epoch index that moved
    if loss[k] > loss[0]:
        return None  # it climbed before it fell: an LR problem, not a slow start
    stuck = k - 1
    need = max(STUCK_MIN_EPOCHS, math.ceil(STUCK_MIN_FRACTION * n))
    if stuck < need:
        return None
    later = _finite(loss[k:])
    later_drop = 1 - float(later.min()) / float(loss[0])
    if later_drop < STUCK_LATER_REL_DROP:
        return None
    return Finding(
        code="bad_init",
        title="Loss not decreasing at the start",
        evidence=(
            f"the train loss stayed within {_pct(STUCK_REL_DROP)} of epoch {_ep(c, 0)}'s "
            f"{_fmt(loss[0])} for {stuck} more epochs (to epoch {_ep(c, k - 1)}), then fell "
            f"{_pct(later_drop)}; threshold {need} stuck epochs"
        ),
        advice=(
            "training stalls before it starts: check the initialisation (last layer too large, "
            "saturated activations, dead ReLUs) and input scaling; if the loss then creeps down "
            "steadily, the LR is too low (see `lrtune find`)"
        ),
        severity="warning",
        start_epoch=_ep(c, 0),
        end_epoch=_ep(c, k - 1),
        curve="train_loss",
        numbers={
            "stuck_epochs": float(stuck),
            "first_loss": float(loss[0]),
            "later_drop": later_drop,
        },
    )


def _tail_gain(loss: np.ndarray) -> tuple[float, int]:
    """(relative improvement over the tail, tail length) of a loss curve."""
    n = len(loss)
    k = _tail_len(n)
    start = float(loss[n - k])
    return ((start - float(loss[-1])) / start if start > 0 else 0.0), k


def _high_flat(c: Curves, ctx: Context) -> float | None:
    """The best train loss / reference when the loss is stuck near the reference, else None."""
    loss = c.train_loss
    if ctx.reference_name == _EPOCH1 or ctx.reference_loss is None or ctx.reference_loss <= 0:
        return None
    if len(loss) < MIN_EPOCHS or not np.isfinite(loss).all():
        return None
    level = float(loss.min()) / ctx.reference_loss
    gain, k = _tail_gain(loss)
    if level < HIGH_LOSS_FRACTION or _creeping(loss[len(loss) - k :]):
        return None  # a steady creep down from chance is an LR too low (train_longer says so)
    if gain < PLATEAU_REL_GAIN or level >= NEVER_LEARNED_LEVEL:
        return level
    return None


def _creeping(tail: np.ndarray) -> bool:
    """The loss went down in nearly every epoch of the tail (CREEP_DOWN_FRACTION): a steady
    creep (LR too low), not a loss bouncing around a level (LR too high)."""
    d = np.diff(tail)
    return d.size >= 2 and float(np.mean(d < 0)) >= CREEP_DOWN_FRACTION


def _lr_too_high(c: Curves, ctx: Context) -> Finding | None:
    loss = c.train_loss
    n = len(c)
    bad = np.flatnonzero(~np.isfinite(loss))
    advice = (
        "lower the learning rate (about 10x, or to what `lrtune find` suggests); "
        "add gradient clipping or a warmup if it only blows up early"
    )
    if bad.size or ctx.diverged:
        start = int(bad[0]) if bad.size else n - 1
        what = (
            f"the train loss became {loss[start]} at epoch {_ep(c, start)}"
            if bad.size
            else f"the run was stopped for divergence {_where_diverged(ctx, _ep(c, n - 1) + 1)}"
        )
        return Finding(
            code="lr_too_high",
            title="Loss exploding (LR too high)",
            evidence=what,
            advice=advice,
            severity="error",
            start_epoch=_ep(c, max(start - 1, 0)),
            end_epoch=_ep(c, n - 1),
            curve="train_loss",
            numbers={"diverged_epoch": float(_ep(c, start))},
        )
    i_min = int(np.argmin(loss))
    lo, last = float(loss[i_min]), float(loss[-1])
    ref = ctx.reference_loss if ctx.reference_name != _EPOCH1 else None
    relapsed = ref is not None and last >= RELAPSE_RATIO * lo and last >= HIGH_LOSS_FRACTION * ref
    if i_min < n - 1 and lo > 0 and (last >= EXPLODE_RATIO * lo or relapsed):
        back = (
            f", back to {last / (ref or 1):.2f}x the know-nothing loss {_fmt(ref or 0)} "
            f"({ctx.reference_name})"
            if relapsed
            else ""
        )
        return Finding(
            code="lr_too_high",
            title="Loss climbing (LR too high)",
            evidence=(
                f"the train loss climbed from {_fmt(lo)} at epoch {_ep(c, i_min)} to "
                f"{_fmt(last)} at epoch {_ep(c, n - 1)} ({last / lo:.2f}x{back}; threshold "
                f"{EXPLODE_RATIO:g}x, or {RELAPSE_RATIO:g}x back to chance)"
            ),
            advice=advice,
            severity="error",
            start_epoch=_ep(c, i_min),
            end_epoch=_ep(c, n - 1),
            curve="train_loss",
            numbers={"min_loss": lo, "last_loss": last, "ratio": last / lo},
        )
    level = _high_flat(c, ctx)
    if level is not None and _decayed_too_early(c, ctx) is None:
        return Finding(
            code="lr_too_high",
            title="Loss stuck near chance (LR too high?)",
            evidence=(
                f"the best train loss {_fmt(float(loss.min()))} is {level:.2f}x the "
                f"know-nothing loss {_fmt(ctx.reference_loss or math.nan)} "
                f"({ctx.reference_name}; threshold {HIGH_LOSS_FRACTION:g}x) and "
                + (
                    "it never got below it"
                    if level >= NEVER_LEARNED_LEVEL
                    else f"it stopped improving (under {_pct(PLATEAU_REL_GAIN)} over the tail)"
                )
            ),
            advice=(
                "a loss stuck at chance usually means the first steps wrecked the weights: "
                "lower the LR 10x (see `lrtune find`); if it crept down steadily instead, the "
                "LR is too low; if neither helps, run `lrtune doctor`"
            ),
            severity="warning",
            start_epoch=_ep(c, 0),
            end_epoch=_ep(c, n - 1),
            curve="train_loss",
            numbers={"level_vs_reference": level},
        )
    return _blowup(c, ctx)


def _blowup(c: Curves, ctx: Context) -> Finding | None:
    """lr_too_high for a run whose train loss blew up far above where it started, then came back
    down (a run that stayed up is caught as climbing or stuck)."""
    init = ctx.initial_loss
    loss = c.train_loss
    if init is None or init <= 0 or not np.isfinite(loss).all():
        return None
    i_max = int(np.argmax(loss))
    ratio = float(loss[i_max]) / init
    if ratio < BLOWUP_RATIO:
        return None
    return Finding(
        code="lr_too_high",
        title="Loss blew up (LR too high)",
        evidence=(
            f"the train loss reached {_fmt(float(loss[i_max]))} at epoch {_ep(c, i_max)}, "
            f"{ratio:.1f}x the loss at initialisation {_fmt(init)} (threshold "
            f"{BLOWUP_RATIO:g}x): the updates threw the weights far off; the best it got back "
            f"to is {_fmt(float(loss.min()))}"
        ),
        advice=(
            "lower the learning rate (about 10x, or to what `lrtune find` suggests); "
            "add a warmup or gradient clipping if it only blows up at the start"
        ),
        severity="warning",
        start_epoch=_ep(c, 0),
        end_epoch=_ep(c, len(c) - 1),  # the blow-up and what it left behind
        curve="train_loss",
        numbers={"max_loss": float(loss[i_max]), "initial_loss": init, "ratio": ratio},
    )


def _where_diverged(ctx: Context, epoch: int) -> str:
    """'at step 37, during epoch 2' (or 'during epoch 2' when the step is unknown)."""
    step = f"at step {ctx.diverged_step}, " if ctx.diverged_step else ""
    return f"{step}during epoch {epoch}"


def _diverged_before_first_epoch(ctx: Context) -> Finding:
    """lr_too_high for a run that blew up before it finished one epoch (no curve to read)."""
    init = ctx.initial_loss
    start = f" (loss at initialisation {_fmt(init)})" if init is not None else ""
    return Finding(
        code="lr_too_high",
        title="Loss exploding (LR too high)",
        evidence=(
            f"the run was stopped for divergence {_where_diverged(ctx, 1)}, before any epoch "
            f"finished{start}: the first updates made the loss blow up"
        ),
        advice=(
            "lower the learning rate (about 10x, or to what `lrtune find` suggests); "
            "add gradient clipping or a warmup if it only blows up early"
        ),
        severity="error",
        start_epoch=1,
        end_epoch=1,
        curve="train_loss",
        numbers={"diverged_epoch": 1.0, "diverged_step": float(ctx.diverged_step or 0)},
    )


def _decay_events(lr: np.ndarray) -> list[int]:
    """Indices where the LR first falls to <= DECAY_RATIO of the peak since the last event."""
    events: list[int] = []
    peak = math.nan
    for i, x in enumerate(lr):
        if not math.isfinite(x):
            continue
        if not math.isfinite(peak) or x > peak:
            peak = x
        elif x <= DECAY_RATIO * peak:
            events.append(i)
            peak = x
    return events


def _trend_rate(values: np.ndarray) -> float:
    """How fast a positive series falls, from a log-linear fit (log units per epoch)."""
    if values.size < 2 or not np.isfinite(values).all() or (values <= 0).any():
        return math.nan
    slope = np.polyfit(np.arange(values.size, dtype=float), np.log(values), 1)[0]
    return -float(slope)


@dataclass(frozen=True)
class _Stall:
    """What one loss series did around an LR cut at index d (decayed_too_early's evidence).

    pace: log-loss per epoch just before the cut (the slower of the last PRE_DECAY_WINDOW
    epochs); heading: the last pre-cut loss carried on at that pace for HEADING_EPOCHS;
    best_after: the lowest loss from the cut on; rate_after: the trend after the first
    post-cut epoch.
    """

    pace: float
    last_before: float
    heading: float
    best_after: float
    rate_after: float


def _stall(loss: np.ndarray, d: int) -> _Stall | None:
    window = loss[max(0, d - PRE_DECAY_WINDOW) :]
    if d < 2 or not np.isfinite(window).all() or (window <= 0).any():
        return None
    start = max(1, d - PRE_DECAY_WINDOW)
    pace = min(_log_rate(float(loss[i - 1]), float(loss[i]), 1) for i in range(start, d))
    last = float(loss[d - 1])
    return _Stall(
        pace=pace,
        last_before=last,
        heading=last * math.exp(-pace * HEADING_EPOCHS),
        best_after=float(loss[d:].min()),
        rate_after=_trend_rate(loss[d + 1 :]),
    )


def _decayed_too_early(c: Curves, ctx: Context) -> Finding | None:
    """The first LR cut in the first half of the run after which the loss stalled."""
    n = len(c)
    for d in _decay_events(c.lr):
        if d >= EARLY_DECAY_FRACTION * n or n - 1 - d < MIN_POST_DECAY_EPOCHS:
            break
        finding = _too_early_at(c, ctx, d)
        if finding is not None:
            return finding
    return None


def _too_early_at(c: Curves, ctx: Context, d: int) -> Finding | None:
    """decayed_too_early for the cut at index d, judged on the val loss (else the train loss).

    The evidence: just before the cut the loss was still falling (STILL_FALLING_RATE); at that
    pace it was heading for `heading` within HEADING_EPOCHS; after the cut it never got below
    that (a cut that helped drops below it: the step-decay signature), and it flattened
    (PLATEAU_RATE_RATIO). On the val loss, the train loss must have stalled too and
    the val plateau sit near it (STALL_MAX_VAL_OVER_TRAIN): a val plateau far above a train
    loss is a generalisation limit that a later decay would not lift.
    """
    n = len(c)
    name, loss = "train_loss", c.train_loss
    if c.val_loss is not None and np.isfinite(c.val_loss).all():
        name, loss = "val_loss", c.val_loss
    s = _stall(loss, d)
    if s is None or not math.isfinite(s.rate_after) or s.pace < STILL_FALLING_RATE:
        return None
    if s.best_after < s.heading or s.rate_after >= PLATEAU_RATE_RATIO * s.pace:
        return None
    ref = ctx.reference_loss
    if ref is not None and s.best_after < NEGLIGIBLE_FRACTION * ref:
        return None  # converged to ~0: nothing a later decay could add
    worth = max(_log_rate(s.last_before, s.best_after, 1) / s.pace, 0.0)
    numbers = {
        "decay_epoch": float(_ep(c, d)),
        "epochs_worth": worth,
        "rate_before": s.pace,
        "rate_after": s.rate_after,
        "heading": s.heading,
        "best_after": s.best_after,
        "lr_before": float(np.nanmax(c.lr[:d])),
        "lr_after": float(c.lr[d]),
        "trend_from_epoch": float(_ep(c, d - 1)),
        "trend_from": s.last_before,
        "trend_to_epoch": _ep(c, d - 1) + HEADING_EPOCHS,
        "trend_to": s.heading,
    }
    train_words = ""
    if name == "val_loss":
        train = c.train_loss
        k = min(MIN_POST_DECAY_EPOCHS, n - d)
        t_rate = _trend_rate(train[d + 1 :])
        t_end, v_end = float(np.mean(train[n - k :])), float(np.mean(loss[n - k :]))
        if not math.isfinite(t_rate) or t_rate >= PLATEAU_RATE_RATIO * s.pace:
            return None  # training still progresses: the val plateau is not the LR's doing
        if t_end <= 0 or v_end / t_end > STALL_MAX_VAL_OVER_TRAIN:
            return None
        train_words = f"; the train loss slowed too, to {_drop_pct(max(t_rate, 0.0))}/epoch"
        numbers["train_rate_after"] = t_rate
    series = name.replace("_", " ")
    return Finding(
        code="decayed_too_early",
        title="LR decayed too early",
        evidence=(
            f"the LR was cut from {numbers['lr_before']:.3g} to {numbers['lr_after']:.3g} at "
            f"epoch {_ep(c, d)} ({_pct(d / n)} into the run) while the {series} was still "
            f"falling {_drop_pct(s.pace)}/epoch (from {_fmt(s.last_before)}); in the {n - d} "
            f"epochs after the cut it never got below {_fmt(s.best_after)}, only "
            f"{worth:.1f} epochs' worth of that pace (threshold {HEADING_EPOCHS:g}; that pace "
            f"would have reached {_fmt(s.heading)}), and it flattened to "
            f"{_drop_pct(max(s.rate_after, 0.0))}/epoch over epochs {_ep(c, d + 1)}-"
            f"{_ep(c, n - 1)} (threshold {PLATEAU_RATE_RATIO:g}x the earlier pace){train_words}"
        ),
        advice=(
            "move the decay later (milestones past ~50-75% of training), lower gamma's impact "
            "(e.g. 0.3 instead of 0.1), or use cosine; `lrtune search` can compare them"
        ),
        severity="warning",
        start_epoch=_ep(c, d),
        end_epoch=_ep(c, n - 1),
        curve="lr",
        numbers=numbers,
    )


def _monitored(c: Curves, ctx: Context) -> list[tuple[str, np.ndarray, bool]]:
    """(name, values, higher_is_better) of the series a user watches, in order of preference."""
    out: list[tuple[str, np.ndarray, bool]] = []
    if c.val_metric is not None:
        out.append(("val_metric", c.val_metric, ctx.metric_mode == "max"))
    if c.val_loss is not None:
        out.append(("val_loss", c.val_loss, False))
    else:
        out.append(("train_loss", c.train_loss, False))
    return out


def _train_longer(c: Curves, ctx: Context) -> Finding | None:
    for name, values, higher in _monitored(c, ctx):
        finding = _still_improving(c, name, values, higher)
        if finding is None:
            continue
        ref = ctx.reference_loss if ctx.reference_name != _EPOCH1 else None
        best = float(np.nanmin(c.train_loss))
        if ref is not None and ref > 0 and best >= HIGH_LOSS_FRACTION * ref:
            # Still improving, but barely off chance after the whole run: the LR is too low.
            return replace(
                finding,
                evidence=(
                    f"{finding.evidence}; yet the best train loss {_fmt(best)} is still "
                    f"{best / ref:.2f}x the know-nothing loss {_fmt(ref)} ({ctx.reference_name})"
                ),
                advice=(
                    "the loss creeps down from chance: the LR is most likely too low; raise it "
                    "(see `lrtune find`) before paying for more epochs"
                ),
            )
        return finding
    return None


def _still_improving(c: Curves, name: str, values: np.ndarray, higher: bool) -> Finding | None:
    n = len(c)
    if not np.isfinite(values).all():
        return None
    v = values if higher else -values  # higher is better from here on
    k = _tail_len(n)
    if k >= n:
        return None
    tail_x = np.arange(k, dtype=float)
    tail = v[n - k :]
    slope, intercept = np.polyfit(tail_x, tail, 1)
    trend_gain = float(slope) * (k - 1)
    resid = tail - (slope * tail_x + intercept)
    noise = float(np.std(resid))
    total = float(v.max() - v[0])
    best_at = int(np.argmax(v))
    if total <= 0 or trend_gain <= 0:
        return None
    share = trend_gain / total
    # A loss is compared with itself too: one still falling fast is worth more epochs even when
    # the tail is a small share of a big early drop.
    rate = _trend_rate(values[n - k :]) if name.endswith("loss") else math.nan
    fast = math.isfinite(rate) and rate >= STILL_IMPROVING_RATE
    if (share < TAIL_GAIN_SHARE and not fast) or best_at < n - BEST_WITHIN_LAST:
        return None
    if trend_gain < TREND_OVER_NOISE * noise:
        return None
    pace = f", falling {_drop_pct(rate)}/epoch" if math.isfinite(rate) else ""
    return Finding(
        code="train_longer",
        title="Still improving at the end: train longer",
        evidence=(
            f"{name} improved by {_fmt(trend_gain)} over the last {k} epochs{pace} "
            f"({_pct(share)} of the run's total improvement; thresholds "
            f"{_pct(TAIL_GAIN_SHARE)} or {_drop_pct(STILL_IMPROVING_RATE)}/epoch) and its best "
            f"value {_fmt(float(values[best_at]))} is at epoch {_ep(c, best_at)}"
        ),
        advice=(
            "train for more epochs (stretch the schedule with it, so the decay still comes "
            "at the end), or raise the LR a little if epochs are expensive"
        ),
        severity="info",
        start_epoch=_ep(c, n - k),
        end_epoch=_ep(c, n - 1),
        curve=name,
        numbers={"tail_gain": trend_gain, "tail_share": share, "noise": noise}
        | ({"tail_rate": rate} if math.isfinite(rate) else {}),
    )


def _overfitting(c: Curves, ctx: Context) -> Finding | None:
    if c.val_loss is None:
        return None
    n = len(c)
    val, train = c.val_loss, c.train_loss
    if not (np.isfinite(val).all() and np.isfinite(train).all()):
        return None
    i_min = int(np.argmin(val))
    if i_min > n - 1 - OVERFIT_MIN_RISE_EPOCHS:
        return None
    v_min, t_end = float(val[i_min]), float(train[-1])
    v_end = float(np.mean(val[n - OVERFIT_MIN_RISE_EPOCHS :]))
    if v_min <= 0 or t_end <= 0:
        return None
    rise = v_end / v_min - 1
    ratio = v_end / t_end
    gap_then, gap_now = float(val[i_min] - train[i_min]), v_end - t_end
    noise = _noise(val)
    if rise < OVERFIT_VAL_RISE or ratio < OVERFIT_GAP_RATIO:
        return None
    if v_end - v_min < OVERFIT_RISE_OVER_NOISE * noise:
        return None
    ref = ctx.reference_loss
    if ref is not None and v_end - v_min < NEGLIGIBLE_FRACTION * ref:
        return None  # a rise too small to matter next to the know-nothing loss (both near 0)
    if not (train[-1] < train[i_min] and gap_now > gap_then):
        return None
    return Finding(
        code="overfitting",
        title="Overfitting",
        evidence=(
            f"val loss rose {_pct(rise)} from its minimum {_fmt(v_min)} at epoch "
            f"{_ep(c, i_min)} to {_fmt(v_end)} (mean of the last {OVERFIT_MIN_RISE_EPOCHS} epochs) "
            f"while train loss fell to {_fmt(t_end)}; val is "
            f"{ratio:.1f}x train (thresholds: +{_pct(OVERFIT_VAL_RISE)}, "
            f"{OVERFIT_GAP_RATIO:g}x)"
        ),
        advice=(
            f"stop at about epoch {_ep(c, i_min)} (early stopping), or regularise: more data or "
            "augmentation, weight decay, dropout, a smaller model"
        ),
        severity="warning",
        start_epoch=_ep(c, i_min),
        end_epoch=_ep(c, n - 1),
        curve="val_loss",
        numbers={
            "best_val_epoch": float(_ep(c, i_min)),
            "val_min": v_min,
            "val_end": v_end,
            "train_end": t_end,
            "val_rise": rise,
            "val_over_train": ratio,
        },
    )


def _underfitting(c: Curves, ctx: Context) -> Finding | None:
    n = len(c)
    train = c.train_loss
    if ctx.reference_loss is None or ctx.reference_loss <= 0 or not np.isfinite(train).all():
        return None
    best = float(train.min())
    level = best / ctx.reference_loss
    if level < POOR_FRACTION:
        return None
    tail_gain, k = _tail_gain(train)
    if tail_gain >= UNDERFIT_MAX_TAIL_GAIN:
        return None  # still falling fast: undertrained, train_longer's business
    still = (
        " (still creeping down: more epochs help a little, a bigger model more)"
        if tail_gain >= PLATEAU_REL_GAIN
        else ""
    )
    val_words = "no validation data to compare"
    numbers = {"best_train": best, "level_vs_reference": level, "tail_gain": tail_gain}
    if c.val_loss is not None:
        v_end, t_end = float(c.val_loss[-1]), float(train[-1])
        if not math.isfinite(v_end) or t_end <= 0:
            return None
        gap = abs(v_end - t_end) / t_end
        if gap > CLOSE_GAP:
            return None
        val_words = (
            f"val {_fmt(v_end)} is within {_pct(gap)} of train (threshold {_pct(CLOSE_GAP)})"
        )
        numbers["val_gap"] = gap
    return Finding(
        code="underfitting",
        title="Underfitting (model too small or too constrained)",
        evidence=(
            f"the best train loss {_fmt(best)} is {level:.2f}x the know-nothing loss "
            f"{_fmt(ctx.reference_loss)} ({ctx.reference_name}; threshold "
            f"{POOR_FRACTION:g}x), improving {_pct(tail_gain)} over the last {k} epochs"
            f"{still}; {val_words}"
        ),
        advice=(
            "the model cannot fit even the training data: make it bigger (wider/deeper), "
            "reduce regularisation (weight decay, dropout), try a higher LR, "
            "or check the features carry the signal"
        ),
        severity="warning",
        start_epoch=_ep(c, n - k),
        end_epoch=_ep(c, n - 1),
        curve="train_loss",
        numbers=numbers,
    )


def _oscillation(values: np.ndarray) -> tuple[float, float, float, int, int] | None:
    """(reversal fraction, mean up-jump, wasted share, first, last) or None if too short."""
    if values.size < OSC_MIN_EPOCHS or not np.isfinite(values).all() or (values <= 0).any():
        return None
    d = np.diff(values)
    sign = np.sign(d)
    nz = np.flatnonzero(sign != 0)
    if nz.size < 2:
        return None
    flips = np.flatnonzero(sign[nz][1:] != sign[nz][:-1])
    reversal = flips.size / (nz.size - 1)
    ups = np.flatnonzero(d > 0)
    if ups.size == 0:
        return None
    jump = float(np.mean(d[ups] / values[ups]))
    total = float(np.abs(d).sum())
    wasted = 1 - abs(float(values[-1] - values[0])) / total if total > 0 else 0.0
    if flips.size:  # from the start of the first reversed move to the end of the last one
        first, last = int(nz[flips[0]]), int(nz[flips[-1] + 1]) + 1
    else:
        first, last = 0, values.size - 1
    return reversal, jump, wasted, first, last


def _oscillates(values: np.ndarray | None) -> tuple[float, float, float, int, int] | None:
    """`_oscillation`'s numbers when they pass every OSC_ threshold, else None."""
    osc = None if values is None else _oscillation(values)
    if osc is None:
        return None
    reversal, jump, wasted, _, _ = osc
    if reversal < OSC_REVERSAL_FRACTION or jump < OSC_MIN_JUMP or wasted < OSC_WASTED_SHARE:
        return None
    return osc


def _oscillating(c: Curves, ctx: Context) -> Finding | None:
    """The train loss zigzags, and so does the val loss when there is one.

    The val loss is measured on fixed data, so it moves only when the weights do: a zigzag in
    the per-epoch mean train loss under a smooth val loss is minibatch sampling noise (a small
    last batch, a tiny dataset), not weights bouncing under too high an LR. A val loss that
    zigzags under a smooth train loss is left alone for the same reason: a small val set
    turns small weight changes into large swings on a few examples. A val loss that cannot
    be read that way (missing, non-finite, or exactly zero somewhere) leaves the train loss alone.
    """
    osc = _oscillates(c.train_loss)
    if osc is None:
        return None
    reversal, jump, wasted, first, last = osc
    numbers = {"reversal_fraction": reversal, "mean_up_jump": jump, "wasted_share": wasted}
    val_words = ""
    val_measured = c.val_loss is not None and _oscillation(c.val_loss) is not None
    if val_measured:
        val = _oscillates(c.val_loss)
        if val is None:
            return None
        val_words = (
            f"; the val loss zigzags with it ({_pct(val[0])} reversals, up {_pct(val[1])} "
            "on average), so the weights themselves bounce"
        )
        numbers["val_reversal_fraction"], numbers["val_mean_up_jump"] = val[0], val[1]
    return Finding(
        code="oscillating",
        title="Oscillating loss",
        evidence=(
            f"the train loss changed direction in {_pct(reversal)} of epoch-to-epoch moves "
            f"(threshold {_pct(OSC_REVERSAL_FRACTION)}), jumping up {_pct(jump)} on average "
            f"(threshold {_pct(OSC_MIN_JUMP)}); {_pct(wasted)} of its movement went back "
            f"and forth{val_words}"
        ),
        advice=(
            "lower the LR (2-10x) or raise the batch size; with SGD, lower momentum or add "
            "a decay; gradient clipping helps if the jumps are spikes"
        ),
        severity="warning",
        start_epoch=_ep(c, first),
        end_epoch=_ep(c, min(last, len(c) - 1)),
        curve="train_loss",
        numbers=numbers,
    )


PATTERNS: dict[str, PatternSpec] = {
    spec.code: spec
    for spec in (
        PatternSpec(
            "bad_init",
            "Bad initialisation",
            "loss far above the know-nothing loss at init, or stuck before it falls",
            _bad_init,
        ),
        PatternSpec(
            "lr_too_high",
            "LR too high",
            "train loss non-finite, climbing above its minimum, or high and flat",
            _lr_too_high,
        ),
        PatternSpec(
            "decayed_too_early",
            "LR decayed too early",
            "an early LR cut while the loss still fell fast, then a plateau",
            _decayed_too_early,
        ),
        PatternSpec(
            "train_longer",
            "Train longer",
            "the monitored metric is still improving at the end",
            _train_longer,
            explained_by=("lr_too_high",),
        ),
        PatternSpec(
            "overfitting",
            "Overfitting",
            "val loss rising from its minimum, far above a still-falling train loss",
            _overfitting,
        ),
        PatternSpec(
            "underfitting",
            "Underfitting",
            "train loss stays at a poor level, val close to train",
            _underfitting,
            explained_by=("lr_too_high", "decayed_too_early", "train_longer"),
        ),
        PatternSpec(
            "oscillating",
            "Oscillating loss",
            "the loss reverses direction from epoch to epoch",
            _oscillating,
        ),
    )
}


def diagnose_curves(
    records: Sequence[Any] | Curves,
    *,
    initial_loss: float | None = None,
    baseline_loss: float | None = None,
    baseline_name: str = "baseline",
    metric_mode: str = "max",
    diverged: bool = False,
    diverged_step: int | None = None,
    patterns: Iterable[str] | None = None,
) -> list[Finding]:
    """Label a run's learning curves with the patterns practitioners read.

    Args:
        records: per-epoch records (EpochRecord or dicts with epoch, lr, train_loss,
            val_loss, val_metric), or `Curves`.
        initial_loss: the training loss before any update (TrainResult.initial_loss).
        baseline_loss: the know-nothing loss: ln C for C-class cross-entropy, Var(y) for
            MSE regression. Judging "poor"/"high" uses it, else initial_loss, else epoch 1.
        baseline_name: how to name the baseline in evidence text (e.g. 'ln(10)').
        metric_mode: 'max' if a higher val_metric is better, 'min' otherwise.
        diverged: the run was stopped for divergence (TrainResult.status == 'diverged').
        diverged_step: the 1-based optimizer step where it was stopped (for evidence text).
        patterns: codes to run (default: all of PATTERNS).

    Returns:
        Findings, errors first, then warnings, then info; each pattern at most once.
        An empty list means the curves look healthy (or there were < MIN_EPOCHS epochs).
        A run that diverged before its first epoch ended gets `lr_too_high` alone.

    Raises:
        ConfigError: an unknown pattern code, a bad metric_mode, or a record with no train_loss.
    """
    if metric_mode not in ("max", "min"):
        raise ConfigError(f"metric_mode must be 'max' or 'min', got {metric_mode!r}")
    codes = list(PATTERNS) if patterns is None else list(patterns)
    for code in codes:
        if code not in PATTERNS:
            raise ConfigError(unknown_name("diagnosis pattern", code, PATTERNS))
    curves = records if isinstance(records, Curves) else curves_from_records(records)
    blew_up = diverged or not np.isfinite(curves.train_loss).all()
    init = _clean(initial_loss)
    base = _clean(baseline_loss)
    if len(curves) == 0 and diverged and "lr_too_high" in codes:
        ctx0 = Context(base or init, baseline_name, init, base, metric_mode, True, diverged_step)
        return [_diverged_before_first_epoch(ctx0)]
    if len(curves) == 0 or (len(curves) < MIN_EPOCHS and not blew_up):
        return []
    ref: float | None
    if base is not None:
        ref, ref_name = base, baseline_name
    elif init is not None:
        ref, ref_name = init, "loss at initialisation"
    else:
        first = float(curves.train_loss[0])
        ref, ref_name = (first, _EPOCH1) if math.isfinite(first) else (None, "none")
    ctx = Context(ref, ref_name, init, base, metric_mode, diverged, diverged_step)
    if len(curves) < MIN_EPOCHS:
        codes = [c for c in codes if c == "lr_too_high"]
    found = [f for f in (PATTERNS[code].detect(curves, ctx) for code in codes) if f is not None]
    seen = {f.code for f in found}
    found = [f for f in found if not seen.intersection(PATTERNS[f.code].explained_by)]
    return sorted(found, key=lambda f: (SEVERITY_ORDER[f.severity], f.start_epoch))


def _clean(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def summary_label(findings: Sequence[Finding]) -> str:
    """A short label for a table cell: 'healthy' or the codes joined by '; '."""
    return "; ".join(f.code for f in findings) if findings else "healthy"
