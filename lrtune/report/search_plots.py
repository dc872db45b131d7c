"""Plots of a search: compute the plot data from a SearchResult, then draw it.

- learning_curves.png: every trial's search metric per epoch (the top configurations in
  colour, the best thickest, pruned trials faint, failed/diverged ones dotted), next to
  the training loss.
- schedules.png: the LR curves of the top-k configurations (from lrtune.schedules.lr_curve).
- heatmap.png: the mean objective over the two searched parameters (grid: a table of
  cells; random: a scatter), only when exactly two parameters are searched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrtune.search.results import ConfigSummary, SearchResult

METRIC_LABELS = {
    "val_loss": "validation loss",
    "val_metric": "validation metric",
    "train_loss": "training loss",
}
# A loss axis goes logarithmic when its largest value is this many times its smallest (a
# first epoch far above the rest would squash the curves that are being compared).
LOG_Y_RATIO = 10
TOP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def fmt_value(v: Any) -> str:
    """A searched value as labels and tables show it."""
    return _fmt(v)


def point_label(point: Mapping[str, Any], names: Sequence[str] | None = None) -> str:
    """'gamma=0.1, step_size=2' for a point (only the searched names)."""
    keys = list(names) if names is not None else list(point)
    return ", ".join(f"{k}={_fmt(point[k])}" for k in keys if k in point) or "(fixed)"


def _fmt(v: Any) -> str:
    """A searched value in a label: 0.1, [3, 6], none, {epochs: 1}."""
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


# -- learning curves ---------------------------------------------------------------------
@dataclass(frozen=True)
class CurveLine:
    """One trial's curves and how to draw it."""

    label: str | None
    epochs: list[int]
    metric: list[float]
    train: list[float]
    style: str  # 'best' | 'top' | 'other' | 'pruned' | 'failed'
    color: str
    config: int
    seed: int


@dataclass(frozen=True)
class CurvesData:
    """Everything learning_curves.png shows."""

    title: str
    metric_label: str
    lines: list[CurveLine]
    log_y: bool
    show_train: bool


def _nan(v: Any) -> float:
    return float(v) if v is not None else math.nan


def learning_curves_data(result: SearchResult, top_k: int = 5) -> CurvesData:
    """Lines for every trial of the final pass, styled by rank and state."""
    pass_name = result.final_pass
    top = result.top(top_k, pass_name)
    color_of = {c.config: TOP_COLORS[i % len(TOP_COLORS)] for i, c in enumerate(top)}
    rank_of = {c.config: c.rank for c in top}
    best = top[0].config if top else None
    lines: list[CurveLine] = []
    labelled: set[int] = set()
    for t in result.trials:
        if t.pass_name != pass_name or not t.curve:
            continue
        if t.status in ("failed", "diverged"):
            style, color = "failed", "#d62728"
        elif t.status == "pruned":
            style, color = "pruned", "#7f7f7f"
        elif t.config == best:
            style, color = "best", color_of[t.config]
        elif t.config in color_of:
            style, color = "top", color_of[t.config]
        else:
            style, color = "other", "#9e9e9e"
        label = None
        if t.config in color_of and t.config not in labelled and style in ("best", "top"):
            labelled.add(t.config)  # the legend shows a completed seed's line style
            label = f"#{rank_of[t.config]} {point_label(t.point, result.names)}"
        lines.append(
            CurveLine(
                label=label,
                epochs=[int(r["epoch"]) for r in t.curve],
                metric=[_nan(r.get(result.metric)) for r in t.curve],
                train=[_nan(r.get("train_loss")) for r in t.curve],
                style=style,
                color=color,
                config=t.config,
                seed=t.seed,
            )
        )
    for style, label in (("pruned", "pruned"), ("failed", "failed / diverged")):
        first = next((ln for ln in lines if ln.style == style), None)
        if first is not None:
            i = lines.index(first)
            lines[i] = CurveLine(**{**first.__dict__, "label": label})
    finite = [v for ln in lines for v in ln.metric if math.isfinite(v) and v > 0]
    log_y = result.metric != "val_metric" and _wide(finite)
    what = METRIC_LABELS.get(result.metric, result.metric)
    n = sum(1 for t in result.trials if t.pass_name == pass_name)
    drawn = f"{len(lines)} of {n}" if len(lines) < n else f"{n}"  # unfinished, or no epoch
    better = "higher" if result.mode == "max" else "lower"
    title = f"{what.capitalize()} per epoch, {drawn} trials, {better} is better" + (
        f" ({pass_name} pass)" if pass_name != "main" else ""
    )
    return CurvesData(
        title=title,
        metric_label=what,
        lines=lines,
        log_y=log_y,
        show_train=result.metric != "train_loss",
    )


STYLES: dict[str, dict[str, Any]] = {
    "best": {"linewidth": 2.6, "alpha": 1.0, "zorder": 5},
    "top": {"linewidth": 1.5, "alpha": 0.9, "zorder": 4},
    "other": {"linewidth": 1.0, "alpha": 0.55, "zorder": 2},
    "pruned": {"linewidth": 0.9, "alpha": 0.35, "zorder": 1},
    "failed": {"linewidth": 1.0, "alpha": 0.7, "zorder": 1, "linestyle": ":"},
}


def draw_learning_curves(data: CurvesData) -> Any:
    """The learning-curves figure (not saved)."""
    from lrtune.report.rundir import pyplot

    plt = pyplot()
    ncols = 2 if data.show_train else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 4.4), squeeze=False)
    panels = [(axes[0][0], "metric", data.metric_label)]
    if data.show_train:
        panels.append((axes[0][1], "train", "training loss"))
    for ax, attr, ylabel in panels:
        for ln in data.lines:
            ys = getattr(ln, attr)
            kw = dict(STYLES[ln.style])
            ax.plot(
                ln.epochs,
                ys,
                color=ln.color,
                label=ln.label if attr == "metric" else None,
                marker="x" if ln.style == "pruned" else None,
                markevery=[len(ys) - 1] if ln.style == "pruned" and ys else None,
                **kw,
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if data.log_y or (attr == "train" and _wide([v for ln in data.lines for v in ln.train])):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_title(data.title, fontsize=10)
    if data.show_train:
        axes[0][1].set_title("Training loss per epoch (same trials)", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        # Ranked entries first (#1, #2, ...), then 'pruned' and 'failed'.
        order = sorted(range(len(labels)), key=lambda i: _legend_key(labels[i]))
        axes[0][0].legend(
            [handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="best"
        )
    fig.tight_layout()
    return fig


def _legend_key(label: str) -> tuple[int, int]:
    if label.startswith("#"):
        return (0, int(label[1:].split()[0]))
    return (1, 0)


def _wide(values: Sequence[float]) -> bool:
    finite = [v for v in values if math.isfinite(v) and v > 0]
    return bool(finite) and max(finite) / min(finite) > LOG_Y_RATIO


# -- schedules ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleLine:
    """The LR of every optimizer step of one configuration: lr[i] holds from x[i] to x[i+1]
    (in epochs); the last value is repeated to close the run."""

    label: str
    x: list[float]
    lr: list[float]
    color: str


@dataclass(frozen=True)
class SchedulesData:
    """Everything schedules.png shows."""

    title: str
    lines: list[ScheduleLine] = field(default_factory=list)
    log_y: bool = True


def schedules_data(result: SearchResult, top_k: int = 5) -> SchedulesData:
    """LR curves of the top-k configurations of the final pass."""
    from lrtune import schedules

    pass_name = result.final_pass
    epochs = result.epochs[pass_name]
    spe = result.steps_per_epoch
    lines = []
    for i, c in enumerate(result.top(top_k, pass_name)):
        if c.lr is None or not c.schedule:
            continue
        try:
            lrs = schedules.lr_curve(c.schedule, c.lr, spe, epochs)
        except Exception:  # a schedule the plot cannot lay out: leave it out of the plot
            continue
        score = f"{c.mean:.4g}" if c.mean is not None else "n/a"
        lines.append(
            ScheduleLine(
                label=f"#{c.rank} {point_label(c.point, result.names)} ({result.metric} {score})",
                x=[s / spe for s in range(len(lrs) + 1)],
                lr=[*lrs, lrs[-1]],
                color=TOP_COLORS[i % len(TOP_COLORS)],
            )
        )
    vals = [v for ln in lines for v in ln.lr if v > 0]
    log_y = bool(vals) and max(vals) / min(vals) > 5
    return SchedulesData(
        title=f"LR schedules of the top {len(lines)} configurations ({epochs} epochs)",
        lines=lines,
        log_y=log_y,
    )


def draw_schedules(data: SchedulesData) -> Any:
    """The schedules figure (not saved)."""
    from lrtune.report.rundir import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, ln in enumerate(data.lines):
        ax.plot(
            ln.x,
            ln.lr,
            color=ln.color,
            label=ln.label,
            linewidth=2.4 if i == 0 else 1.4,
            zorder=10 - i,
            drawstyle="steps-post",  # each optimizer step holds its LR until the next
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    if data.log_y:
        ax.set_yscale("log")
    ax.set_title(data.title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if data.lines:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


# -- heatmap ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeatmapData:
    """Mean objective over two searched parameters.

    Grid: `x_values` x `y_values` cells in `cells[y][x]` (None where no config completed).
    Random: one (x, y, value) per completed configuration in `points`.
    """

    title: str
    x_name: str
    y_name: str
    value_label: str
    mode: str
    x_values: list[Any] = field(default_factory=list)
    y_values: list[Any] = field(default_factory=list)
    cells: list[list[float | None]] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)
    points: list[tuple[float, float, float]] = field(default_factory=list)
    x_log: bool = False
    y_log: bool = False
    best: tuple[Any, Any] | None = None


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def heatmap_data(result: SearchResult) -> HeatmapData | None:
    """The heatmap's data, or None unless exactly two parameters are searched."""
    if len(result.names) != 2:
        return None
    x_name, y_name = result.names
    pass_name = result.final_pass
    configs: list[ConfigSummary] = result.ranking.get(pass_name, [])
    what = METRIC_LABELS.get(result.metric, result.metric)
    label = (
        f"mean {what} ({result.objective} epoch)"
        if result.objective == "final"
        else (f"mean best {what}")
    )
    best = result.best
    best_xy = (best.point.get(x_name), best.point.get(y_name)) if best else None
    better = "lower" if result.mode == "min" else "higher"
    title = f"{what.capitalize()} by {x_name} and {y_name} ({better} is better)"
    if pass_name != "main":
        title += f", {pass_name} pass"
    kinds = result.kinds.get(pass_name, {})
    is_range = any(kinds.get(n) in ("range", "log") for n in (x_name, y_name))
    numeric = all(
        isinstance(c.point.get(n), (int, float)) and not isinstance(c.point.get(n), bool)
        for c in configs
        for n in (x_name, y_name)
    )
    if is_range and numeric:
        pts = [
            (float(c.point[x_name]), float(c.point[y_name]), float(c.mean))
            for c in configs
            if c.mean is not None
        ]
        return HeatmapData(
            title=title,
            x_name=x_name,
            y_name=y_name,
            value_label=label,
            mode=result.mode,
            points=pts,
            x_log=kinds.get(x_name) == "log",
            y_log=kinds.get(y_name) == "log",
            best=best_xy,
        )
    xs = sorted({_key(c.point.get(x_name)) for c in configs}, key=_sort_key)
    ys = sorted({_key(c.point.get(y_name)) for c in configs}, key=_sort_key)
    cells: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    notes: list[list[str]] = [[""] * len(xs) for _ in ys]
    for c in configs:
        yi, xi = ys.index(_key(c.point.get(y_name))), xs.index(_key(c.point.get(x_name)))
        if c.mean is None:  # say why there is no value: pruned, failed, diverged
            notes[yi][xi] = "/".join(sorted(c.statuses))
            continue
        cells[yi][xi] = c.mean
    return HeatmapData(
        title=title,
        x_name=x_name,
        y_name=y_name,
        value_label=label,
        mode=result.mode,
        x_values=xs,
        y_values=ys,
        cells=cells,
        notes=notes,
        best=(_key(best_xy[0]), _key(best_xy[1])) if best_xy else None,
    )


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def draw_heatmap(data: HeatmapData) -> Any:
    """The heatmap figure (not saved)."""
    import numpy as np

    from lrtune.report.rundir import pyplot

    plt = pyplot()
    cmap = "viridis_r" if data.mode == "min" else "viridis"
    if data.points:
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        x, y, v = zip(*data.points, strict=True)
        sc = ax.scatter(x, y, c=v, cmap=cmap, s=60, edgecolors="k", linewidths=0.4)
        if data.best is not None:
            ax.scatter(
                [data.best[0]],
                [data.best[1]],
                marker="*",
                s=320,
                c="none",
                edgecolors="red",
                linewidths=1.5,
                label="best",
            )
            ax.legend(fontsize=8, loc="best")
        if data.x_log:
            ax.set_xscale("log")
        if data.y_log:
            ax.set_yscale("log")
        fig.colorbar(sc, ax=ax, label=data.value_label)
    else:
        arr = np.array(
            [[np.nan if v is None else v for v in row] for row in data.cells], dtype=float
        )
        fig, ax = plt.subplots(
            figsize=(
                max(4.5, 1.3 * len(data.x_values) + 2.5),
                max(3.2, 0.8 * len(data.y_values) + 1.8),
            )
        )
        im = ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, aspect="auto", origin="lower")
        ax.set_xticks(range(len(data.x_values)), [_tick(v) for v in data.x_values])
        ax.set_yticks(range(len(data.y_values)), [_tick(v) for v in data.y_values])
        for yi, row in enumerate(arr):
            for xi, v in enumerate(row):
                is_best = data.best == (data.x_values[xi], data.y_values[yi])
                if np.isfinite(v):
                    text = f"{v:.4g}" + (" *" if is_best else "")
                    r, g, b, _ = im.cmap(im.norm(v))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # text readable on the cell
                else:
                    text, dark = (data.notes[yi][xi] if data.notes else "") or "n/a", False
                ax.text(
                    xi,
                    yi,
                    text,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "black",
                    fontweight="bold" if is_best else "normal",
                )
        fig.colorbar(im, ax=ax, label=data.value_label)
    ax.set_xlabel(data.x_name)
    ax.set_ylabel(data.y_name)
    ax.set_title(data.title + ("" if data.points else "  (* = best)"), fontsize=10)
    fig.tight_layout()
    return fig


def _tick(v: Any) -> str:
    return _fmt(v)


def write_search_plots(result: SearchResult, run_dir: Path, top_k: int = 5) -> list[Path]:
    """Compute, draw and write every plot; returns the paths written."""
    from lrtune.report.rundir import save_figure

    written = [
        save_figure(
            draw_learning_curves(learning_curves_data(result, top_k)),
            run_dir / "learning_curves.png",
        )
    ]
    sched = schedules_data(result, top_k)
    if sched.lines:
        written.append(save_figure(draw_schedules(sched), run_dir / "schedules.png"))
    heat = heatmap_data(result)
    if heat is not None:
        written.append(save_figure(draw_heatmap(heat), run_dir / "heatmap.png"))
    return written
