"""Suggestion rules: pure functions over one range-test curve, one signature, one registry.

Contract (every rule):
    rule(lrs, losses) -> float | None

`lrs` is increasing and positive; `losses` is the smoothed loss at each LR that the engine
reads (`Curve.usable`), already cut at divergence and stripped of non-finite points by
`prepare_curve`. A rule returns the suggested learning rate, or None when the curve gives it
nothing to go on (fewer than 3 points, or a flat curve). Rules never raise on short or odd
curves and never look at anything but these two arrays.

The headline rule (`HEADLINE_RULE`) is chosen by `benchmarks/suggest_quality.py`: the rule
whose suggestion, trained for a short fixed budget, comes closest to the best LR of a grid
sweep (lowest median regret, within 2 points on every task) on tasks it was not tuned for.
See `benchmarks/README.md` for the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lrtune.errors import ConfigError, unknown_name

Rule = Callable[[np.ndarray, np.ndarray], "float | None"]

MIN_POINTS = 8  # fewer usable points than this and no rule is trusted
FLAT = 1e-6  # a curve whose range is below this share of its level is flat: no suggestion
OUTLIER_DECADES = 1.0  # a repeat's suggestion this far (log10) from their median is left out


@dataclass(frozen=True)
class RuleInfo:
    """A registered suggestion rule."""

    name: str
    fn: Rule
    description: str


def prepare_curve(
    lrs: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray,
    skip_start: float = 0.1,
    skip_end: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the curve to the part rules should read.

    Drops the first `skip_start` fraction of points (the EMA warm-up and the very first
    noisy steps, as fastai does), `skip_end` points at the end, and non-finite points.
    """
    lr = np.asarray(lrs, dtype=float)
    loss = np.asarray(losses, dtype=float)
    n = len(lr)
    start = int(n * skip_start) if n >= 2 * MIN_POINTS else 0
    end = n - skip_end if skip_end and n - skip_end > start else n
    lr, loss = lr[start:end], loss[start:end]
    keep = np.isfinite(lr) & np.isfinite(loss) & (lr > 0)
    return lr[keep], loss[keep]


def _ok(lrs: np.ndarray, losses: np.ndarray, minimum: int = 3) -> bool:
    """Enough points, aligned arrays, and a curve that moves at all."""
    if len(lrs) < max(minimum, 3) or len(lrs) != len(losses):
        return False
    level = float(np.max(np.abs(losses)))
    return float(np.ptp(losses)) > FLAT * max(level, 1e-12)


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The LR of the steepest descent: most negative d(loss)/d(log10 lr) before the minimum."""
    if not _ok(lrs, losses):
        return None
    stop = int(np.argmin(losses)) + 1
    if stop < 3:
        return None
    x = np.log10(lrs[:stop])
    grad = np.gradient(losses[:stop], x)
    i = int(np.argmin(grad))
    return float(lrs[i]) if grad[i] < 0 else None


def valley(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's valley: half way down the longest decreasing subsequence of the curve."""
    n = len(losses)
    if not _ok(lrs, losses):
        return None
    # Longest decreasing subsequence ending at each point (O(n^2); n is a few hundred).
    lds = np.ones(n, dtype=int)
    for i in range(1, n):
        earlier = losses[:i] > losses[i]
        if earlier.any():
            lds[i] = int(lds[:i][earlier].max()) + 1
    max_end = int(np.argmax(lds))
    max_start = max_end - int(lds[max_end]) + 1
    if max_end - max_start < 2:
        return None
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[min(idx, n - 1)])


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The LR at the lowest loss, divided by 10 (fastai's `minimum`)."""
    if not _ok(lrs, losses):
        return None
    return float(lrs[int(np.argmin(losses))]) / 10.0


def slide(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's slide: walk left from the end until the slope over a window flattens out."""
    n = len(losses)
    if not _ok(lrs, losses, MIN_POINTS):
        return None
    lr_diff = max(2, int(round(0.15 * n)))
    thresh = 0.005 * float(np.ptp(losses))  # scale-free version of fastai's 0.005
    grad = np.gradient(losses)
    r = n - 1
    l_ = r - lr_diff
    best = lrs[l_]
    while l_ >= 0 and abs(grad[r] - grad[l_]) > thresh:
        best = lrs[l_]
        r -= 1
        l_ -= 1
    return float(best)


def geometric_median(values: Sequence[float | None]) -> float | None:
    """Median in log space of the positive values (None when there are none)."""
    vals = [v for v in values if v is not None and v > 0]
    return float(np.exp(np.median(np.log(vals)))) if vals else None


@dataclass(frozen=True)
class Combined:
    """One rule's suggestions over repeats, combined: the geometric mean of the inliers.

    `se` is the standard error of log10(lr) over the inliers (None with fewer than two), the
    number `lrtune find` drives down by adding repeats; `outliers` are the suggestions left
    out for being more than OUTLIER_DECADES from the median (a repeat whose curve misled the
    rule, e.g. early noise read as the steepest drop).
    """

    lr: float | None
    se: float | None
    used: int
    outliers: tuple[float, ...] = ()

    @property
    def uncertainty(self) -> float | None:
        """The lr's 95% interval as a factor, lr / f .. lr * f (Student's t: with 3 repeats
        the sample spread is itself uncertain, so the interval is wider than 2 se)."""
        if self.se is None:
            return None
        return float(10 ** (t_quantile(self.used - 1) * self.se))


# Student's t, two-sided 95%, by degrees of freedom (1..30); beyond that, close to 1.96.
_T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14,
        2.13, 2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05,
        2.05, 2.04)  # fmt: skip


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    return _T95[df - 1] if df <= len(_T95) else 1.96


def combine(values: Sequence[float | None]) -> Combined:
    """Combine per-repeat suggestions: geometric mean after leaving out far outliers.

    Each repeat of a range test has its own model initialisation and data order, so its
    suggestion is an independent draw; averaging them in log space is what shrinks the
    run-to-run spread (benchmarks/suggest_quality.py: lower than reading the median curve).
    """
    vals = [float(v) for v in values if v is not None and v > 0 and np.isfinite(v)]
    if not vals:
        return Combined(None, None, 0)
    x = np.log10(vals)
    keep = np.abs(x - np.median(x)) <= OUTLIER_DECADES
    if not keep.any():  # an even count split far apart: no majority to call the rest outliers
        keep[:] = True
    k = x[keep]
    se = float(np.std(k, ddof=1) / np.sqrt(len(k))) if len(k) >= 2 else None
    outliers = tuple(v for v, kept in zip(vals, keep) if not kept)
    return Combined(float(10 ** np.mean(k)), se, len(k), outliers)


def consensus(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """Geometric median of steepest, valley and minimum: robust to any one rule misfiring.

    Each of the three misfires on some curves (steepest jumps to the sharp drop just before
    a blow-up, or to early noise; valley starts on a long plateau; the minimum of a flat,
    noisy bottom wanders); they rarely misfire the same way at once, so the middle one holds.
    """
    return geometric_median([r(lrs, losses) for r in (steepest, valley, minimum)])


def edge(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """One decade below where the loss starts rising again: 1/10 of the LR where the
    smoothed loss first climbs 5% of its range above its minimum, after the minimum."""
    if not _ok(lrs, losses, MIN_POINTS):
        return None
    i_min = int(np.argmin(losses))
    rise = losses[i_min] + 0.05 * float(np.ptp(losses[: i_min + 1]) or 0.0)
    after = np.nonzero(losses[i_min:] > rise)[0]
    i = i_min + int(after[0]) if len(after) else len(lrs) - 1
    return float(lrs[i]) / 10.0


RULES: dict[str, RuleInfo] = {
    info.name: info
    for info in (
        RuleInfo(
            "consensus",
            consensus,
            "geometric median of steepest, valley and minimum (the benchmark's best)",
        ),
        RuleInfo("valley", valley, "fastai's valley: half way down the longest decreasing run"),
        RuleInfo("steepest", steepest, "steepest descent of the smoothed loss (torch-lr-finder)"),
        RuleInfo("minimum", minimum, "LR at the minimum loss / 10 (fastai)"),
        RuleInfo("slide", slide, "fastai's slide: where the slope flattens before the rise"),
        RuleInfo("edge", edge, "1/10 of the LR where the loss climbs back above its minimum"),
    )
}

# Chosen by benchmarks/suggest_quality.py (20 training seeds): of the rules tried, the lowest
# median regret and the lowest worst case over six real tasks (1.27 points), and at most 0.42
# points on three held-out ones; see benchmarks/README.md.
HEADLINE_RULE = "consensus"


def get_rule(name: str) -> RuleInfo:
    """Look up a rule by name.

    Raises:
        ConfigError: unknown name (lists the valid ones).
    """
    if name not in RULES:
        raise ConfigError(unknown_name("suggestion rule", name, RULES))
    return RULES[name]


def suggest_all(lrs: Sequence[float], losses: Sequence[float]) -> dict[str, float | None]:
    """Every registered rule on one (prepared) curve."""
    lr, loss = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if len(lr) < MIN_POINTS:
        return dict.fromkeys(RULES)
    return {name: info.fn(lr, loss) for name, info in RULES.items()}
