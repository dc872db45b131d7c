"""The range-test plot: compute the data (lr_find_plot_data), then draw it (draw_lr_find)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrtune.suggest import geometric_median

MARKERS = {
    "valley": ("o", "#d62728"),
    "steepest": ("v", "#2ca02c"),
    "minimum": ("s", "#9467bd"),
    "slide": ("D", "#8c564b"),
    "consensus": ("*", "#ff7f0e"),
    "edge": ("^", "#17becf"),
}


@dataclass(frozen=True)
class SuggestionMark:
    """One suggestion on the plot."""

    rule: str
    lr: float
    loss: float
    headline: bool


@dataclass(frozen=True)
class FindPlotData:
    """Everything the range-test figure shows."""

    title: str
    lrs: np.ndarray
    raw: np.ndarray
    smoothed: np.ndarray
    band: tuple[np.ndarray, np.ndarray] | None
    marks: tuple[SuggestionMark, ...]
    diverged: tuple[float, float] | None
    diverged_label: str
    ylim: tuple[float, float]
    chosen_range: tuple[float, float] | None
    ylabel: str
    note: str
    interval: tuple[float, float] | None = None  # the headline's ~95% interval over repeats


def _loss_at(lrs: np.ndarray, losses: np.ndarray, lr: float) -> float:
    ok = np.isfinite(losses)
    if not ok.any():
        return float("nan")
    return float(np.interp(np.log10(lr), np.log10(lrs[ok]), losses[ok]))


def lr_find_plot_data(result: Any, chosen_range: tuple[float, float] | None = None) -> FindPlotData:
    """Compute the plot data from a RangeTestResult."""
    lrs, raw, sm, lo, hi = result.aggregate()
    n_rep = len(result.curves)
    marks = []
    for rule, lr in result.suggestions.items():
        if lr is None or lr <= 0:
            continue
        marks.append(SuggestionMark(rule, float(lr), _loss_at(lrs, sm, lr), rule == result.rule))
    marks.sort(key=lambda m: (not m.headline, m.lr))
    # Where the runs diverged: the geometric median of the runs that did, and how many.
    diverged = None
    diverged_label = ""
    dvs = [c.diverged_lr for c in result.curves if c.diverged_lr]
    dv = geometric_median(dvs)
    if dv is not None and len(lrs):
        diverged = (dv, _loss_at(lrs, sm, dv))
        n = len(result.curves)
        diverged_label = "diverged" if n == 1 else f"diverged ({len(dvs)} of {n} runs)"
    finite = sm[np.isfinite(sm)]
    if len(finite):
        start = finite[: max(1, len(finite) // 10)].max()
        # Show the raw dip too (clipped at its 5th percentile), not only the smoothed floor.
        raw_ok = raw[: len(finite)][np.isfinite(raw[: len(finite)])]
        raw_low = float(np.percentile(raw_ok, 5)) if len(raw_ok) else float(finite.min())
        low = min(float(finite.min()), raw_low)
        rng = max(float(start) - low, 1e-3 * max(abs(low), 1e-12))
        ylim = (low - 0.15 * rng, float(start) + 0.6 * rng)
    else:
        ylim = (0.0, 1.0)
    info = result.info
    what = info.get("optimizer", "")
    task = info.get("task", "")
    name = task.rsplit("/", 1)[-1] if task else "model"
    s = result.settings
    rep = f", median of {n_rep} runs" if n_rep > 1 else ""
    title = f"LR range test: {name} ({what}, {s.steps} steps, {s.mode} ramp{rep})"
    headline = next((m for m in marks if m.headline), None)
    unc = result.uncertainty() if headline else None
    interval = (headline.lr / unc, headline.lr * unc) if headline and unc else None
    note = (
        f"suggested lr = {headline.lr:.2e} ({headline.rule})"
        + (f"\n95% interval {result.interval_text()} over {n_rep} runs" if interval else "")
        if headline
        else "no suggestion (see warnings)"
    )
    val_mode = bool(s.val_every)
    return FindPlotData(
        title=title,
        lrs=lrs,
        raw=raw,
        smoothed=sm,
        band=(lo, hi) if n_rep > 1 else None,
        marks=tuple(marks),
        diverged=diverged,
        diverged_label=diverged_label,
        ylim=ylim,
        chosen_range=chosen_range,
        ylabel="training loss" + (" (rules read the validation loss)" if val_mode else ""),
        note=note,
        interval=interval,
    )


def draw_lr_find(d: FindPlotData) -> Any:
    """Draw the figure from FindPlotData; returns a matplotlib Figure (never shows it)."""
    from lrtune.report.rundir import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    if len(d.lrs):
        ax.plot(d.lrs, d.raw, color="#1f77b4", alpha=0.25, lw=1, label="raw loss")
        if d.band is not None:
            ax.fill_between(
                d.lrs, d.band[0], d.band[1], color="#1f77b4", alpha=0.15, label="min-max over runs"
            )
        ax.plot(d.lrs, d.smoothed, color="#1f77b4", lw=2.2, label="smoothed loss")
    if d.chosen_range is not None:
        ax.axvspan(*d.chosen_range, color="#ffbf00", alpha=0.15, label="recommended range")
    for m in d.marks:
        marker, color = MARKERS.get(m.rule, ("o", "k"))
        size = 13 if m.headline else 8
        label = f"{m.rule}: {m.lr:.2e}" + ("  (suggested)" if m.headline else "")
        ax.plot(
            [m.lr],
            [m.loss],
            marker=marker,
            color=color,
            ms=size,
            ls="none",
            markeredgecolor="black" if m.headline else color,
            zorder=6 if m.headline else 5,  # the headline stays visible when rules agree
            label=label,
        )
        if m.headline:
            ax.axvline(m.lr, color=color, ls=":", lw=1.2, alpha=0.8)
            if d.interval is not None:  # how far the runs let the headline move
                ax.plot(d.interval, [m.loss, m.loss], color=color, lw=2.5, alpha=0.9, zorder=5)
                for end in d.interval:
                    ax.plot([end], [m.loss], marker="|", color=color, ms=12, zorder=5)
            ax.annotate(
                f"{m.lr:.1e}",
                (m.lr, m.loss),
                textcoords="offset points",
                xytext=(8, 10),
                fontsize=10,
                fontweight="bold",
                color=color,
            )
    if d.diverged is not None:
        ax.axvline(d.diverged[0], color="#555555", ls="--", lw=1)
        ax.annotate(
            d.diverged_label,
            (d.diverged[0], d.ylim[1]),
            textcoords="offset points",
            xytext=(-4, -14),
            ha="right",
            fontsize=9,
            color="#555555",
        )
    ax.set_xscale("log")
    ax.set_ylim(*d.ylim)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(d.ylabel)
    ax.set_title(d.title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.08)
    ax.legend(loc="lower left", fontsize=8.5, framealpha=0.9)  # low LRs sit high: keep clear
    ax.text(
        0.99,
        0.02,
        d.note,
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=10,
        bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"},
    )
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class SweepPlotData:
    """Overlaid range tests, one per value of a hyper-parameter."""

    title: str
    label: str
    curves: tuple[tuple[float, np.ndarray, np.ndarray], ...]  # (value, lrs, smoothed)
    best: float | None
    ylim: tuple[float, float]


def sweep_plot_data(sweep: Any, task_name: str = "") -> SweepPlotData:
    """Compute the overlay plot data from a SweepResult."""
    curves = []
    lows, starts = [], []
    for v, r in zip(sweep.values, sweep.results):
        lrs, _, smoothed, _, _ = r.aggregate()  # the median over repeats
        curves.append((float(v), lrs, smoothed))
        fin = smoothed[np.isfinite(smoothed)]
        if len(fin):
            lows.append(float(fin.min()))
            starts.append(float(fin[: max(1, len(fin) // 10)].max()))
    if lows:
        low, start = min(lows), max(starts)
        rng = max(start - low, 1e-3 * max(abs(low), 1e-12))
        ylim = (low - 0.1 * rng, start + 0.4 * rng)
    else:
        ylim = (0.0, 1.0)
    label = {"weight_decay": "weight decay", "momentum": "momentum"}.get(sweep.param, sweep.param)
    title = f"LR range test per {label}{': ' + task_name if task_name else ''}"
    return SweepPlotData(title, label, tuple(curves), sweep.best, ylim)


def draw_sweep(d: SweepPlotData) -> Any:
    """Draw the overlay; the recommended value is drawn thick and named in the legend."""
    from lrtune.report.rundir import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    cmap = plt.get_cmap("viridis")
    n = max(1, len(d.curves) - 1)
    for k, (v, lrs, sm) in enumerate(d.curves):
        best = d.best is not None and v == d.best
        ax.plot(
            lrs,
            sm,
            color=cmap(k / n),
            lw=3 if best else 1.5,
            zorder=4 if best else 2,  # the recommended curve on top
            label=f"{d.label} = {v:g}" + ("  (recommended)" if best else ""),
        )
        ok = np.isfinite(sm)
        if ok.any():
            i = int(np.nanargmin(sm))
            ax.plot(
                [lrs[i]],
                [sm[i]],
                "o",
                color=cmap(k / n),
                ms=8 if best else 5,
                markeredgecolor="black" if best else cmap(k / n),
            )
    ax.set_xscale("log")
    ax.set_ylim(*d.ylim)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (smoothed; dots = minimum)")
    ax.set_title(d.title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return fig
