"""One plot per learning-curve diagnosis: the curves with the triggering epochs shaded.

Compute (`diagnosis_plot_data`), then draw (`draw_diagnosis`), then write
(`write_diagnosis_plots`). Tests assert on the data; the drawing only draws.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrtune.diagnose import Curves, Finding, curves_from_records
from lrtune.report.rundir import pyplot, save_figure

SHADE_COLORS = {"error": "tab:red", "warning": "tab:orange", "info": "tab:blue"}
LINE_COLORS = {
    "train loss": "tab:blue",
    "val loss": "tab:orange",
    "val metric": "tab:green",
    "LR": "tab:purple",
}
#: A loss panel switches to a log y axis when its values span more than this factor.
LOG_Y_SPAN = 20.0
WRAP = 110


@dataclass(frozen=True)
class Line:
    """One series on a panel."""

    label: str
    values: tuple[float, ...]
    highlight: bool  # the series the finding is about: drawn thicker


@dataclass(frozen=True)
class Panel:
    """One stacked axis: its y label, lines and scale."""

    ylabel: str
    lines: tuple[Line, ...]
    log_y: bool


@dataclass(frozen=True)
class Guide:
    """A dashed curve on the loss panel: where a trend was heading (from a finding's
    `trend_from_epoch`, `trend_from`, `trend_to_epoch`, `trend_to` numbers), drawn as a
    constant rate (geometric) between the two points, as the diagnosis projects it."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    label: str


@dataclass(frozen=True)
class DiagnosisPlotData:
    """Everything `draw_diagnosis` needs; no matplotlib objects."""

    title: str
    evidence: str
    advice: str
    epochs: tuple[int, ...]
    panels: dict[str, Panel]  # 'loss', then 'metric' and 'lr' when present
    shade: tuple[int, int]  # inclusive epoch range of the finding
    shade_color: str
    guide: Guide | None = None
    #: a horizontal reference on the loss panel: (value, label), e.g. the loss at initialisation
    level: tuple[float, str] | None = None


GUIDE_KEYS = ("trend_from_epoch", "trend_from", "trend_to_epoch", "trend_to")
GUIDE_POINTS = 9


def _guide(finding: Finding) -> Guide | None:
    nums = finding.numbers
    if not all(k in nums and math.isfinite(float(nums[k])) for k in GUIDE_KEYS):
        return None
    x0, y0, x1, y1 = (float(nums[k]) for k in GUIDE_KEYS)
    if y0 <= 0 or y1 <= 0 or x1 <= x0:
        return None
    t = np.linspace(0.0, 1.0, GUIDE_POINTS)
    return Guide(
        _tuple(x0 + t * (x1 - x0)),
        _tuple(y0 * (y1 / y0) ** t),
        "where the pre-cut pace was heading",
    )


def _tuple(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) if math.isfinite(float(v)) else math.nan for v in x)


def _span(*arrays: np.ndarray) -> float:
    vals = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays])
    if vals.size == 0:
        return 1.0
    return float(vals.max() / vals.min())


def diagnosis_plot_data(records: Sequence[Any] | Curves, finding: Finding) -> DiagnosisPlotData:
    """The panels, lines and shaded range for one finding.

    Args:
        records: the per-epoch records the finding was computed from (or their Curves).
        finding: one Finding from `lrtune.diagnose.diagnose_curves`.
    """
    c = records if isinstance(records, Curves) else curves_from_records(records)
    panels: dict[str, Panel] = {}
    loss_lines = [Line("train loss", _tuple(c.train_loss), finding.curve == "train_loss")]
    loss_arrays = [c.train_loss]
    if c.val_loss is not None:
        loss_lines.append(Line("val loss", _tuple(c.val_loss), finding.curve == "val_loss"))
        loss_arrays.append(c.val_loss)
    panels["loss"] = Panel("loss", tuple(loss_lines), _span(*loss_arrays) > LOG_Y_SPAN)
    if c.val_metric is not None:
        panels["metric"] = Panel(
            "val metric",
            (Line("val metric", _tuple(c.val_metric), finding.curve == "val_metric"),),
            False,
        )
    lr = c.lr[np.isfinite(c.lr)]
    if lr.size and (finding.curve == "lr" or float(lr.max()) != float(lr.min())):
        panels["lr"] = Panel(
            "learning rate", (Line("LR", _tuple(c.lr), finding.curve == "lr"),), _span(c.lr) > 5
        )
    return DiagnosisPlotData(
        title=f"Diagnosis: {finding.title}, {_epochs_words(finding)}",
        evidence=finding.evidence,
        advice=finding.advice,
        epochs=tuple(int(e) for e in c.epoch),
        panels=panels,
        shade=(finding.start_epoch, finding.end_epoch),
        shade_color=SHADE_COLORS.get(finding.severity, "tab:gray"),
        guide=_guide(finding),
        level=_level(finding),
    )


def _epochs_words(finding: Finding) -> str:
    if finding.start_epoch == finding.end_epoch:
        return f"epoch {finding.start_epoch}"
    return f"epochs {finding.start_epoch}-{finding.end_epoch}"


def _level(finding: Finding) -> tuple[float, str] | None:
    """The loss at initialisation, when the finding measured against it."""
    value = finding.numbers.get("initial_loss")
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        return None
    return float(value), f"loss at initialisation ({float(value):.3g})"


def _plain_log_labels(ax: Any) -> None:
    """Label a log y axis with plain numbers (0.3, 2), not 3x10^-1: losses are read, not
    counted. Within two decades, minor ticks at 2, 3 and 5 x 10^k are labelled too."""
    from matplotlib.ticker import FuncFormatter

    lo, hi = ax.get_ylim()
    narrow = lo > 0 and math.log10(hi / lo) < 2

    def minor(v: float, _pos: int) -> str:
        if not narrow or v <= 0:
            return ""
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6)
        return f"{v:g}" if mantissa in (2.0, 3.0, 5.0) else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def draw_diagnosis(data: DiagnosisPlotData) -> Any:
    """Draw one diagnosis figure (stacked panels sharing the epoch axis); returns the Figure."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    heights = [2.2 if name == "loss" else 1.2 for name in data.panels]
    fig, axes = plt.subplots(
        len(heights),
        1,
        sharex=True,
        figsize=(8.5, 2.0 + sum(heights) * 1.3),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    x = np.asarray(data.epochs)
    lo, hi = data.shade
    for ax, (name, panel) in zip(axes[:, 0], data.panels.items(), strict=True):
        ax.axvspan(lo - 0.5, hi + 0.5, color=data.shade_color, alpha=0.15, lw=0)
        for line in panel.lines:
            ax.plot(
                x,
                np.asarray(line.values),
                marker="o" if len(x) <= 40 else None,
                ms=3,
                lw=2.6 if line.highlight else 1.3,
                alpha=1.0 if line.highlight else 0.8,
                color=LINE_COLORS.get(line.label),
                label=line.label + (" (evidence)" if line.highlight else ""),
                drawstyle="steps-mid" if name == "lr" else "default",
            )
        if name == "loss" and data.level is not None:
            ax.axhline(data.level[0], ls=":", lw=1.3, color="0.35", label=data.level[1])
        if name == "loss" and data.guide is not None:
            g = data.guide
            ax.plot(g.x, g.y, ls="--", lw=1.6, color="0.25", label=g.label)
            ax.plot(g.x[-1], g.y[-1], ls="", color="0.25", marker=">", ms=6)
        if panel.log_y:
            ax.set_yscale("log")
            _plain_log_labels(ax)
        ax.set_ylabel(panel.ylabel)
        ax.grid(True, alpha=0.3)
        if len(panel.lines) > 1 or any(line.highlight for line in panel.lines):
            ax.legend(loc="best", fontsize=8)
    axes[0, 0].set_title(textwrap.fill(data.evidence, WRAP), fontsize=8.5, loc="left", color="0.2")
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(data.title, fontsize=12, fontweight="bold", x=0.01, ha="left")
    fig.text(
        0.01,
        -0.01,
        textwrap.fill(f"What to do: {data.advice}", WRAP),
        fontsize=8.5,
        style="italic",
        va="top",
        ha="left",
    )
    fig.tight_layout()
    return fig


def write_diagnosis_plots(
    records: Sequence[Any] | Curves, findings: Sequence[Finding], out_dir: str | Path
) -> list[Path]:
    """Write diagnosis_<code>.png for each finding into out_dir; returns the paths."""
    curves = records if isinstance(records, Curves) else curves_from_records(records)
    out = Path(out_dir)
    paths = []
    for finding in findings:
        fig = draw_diagnosis(diagnosis_plot_data(curves, finding))
        paths.append(save_figure(fig, out / f"diagnosis_{finding.code}.png"))
    return paths


# -- doctor plots ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OverfitPlotData:
    """The overfit-a-small-batch check: loss per step against its target."""

    title: str
    steps: tuple[int, ...]
    losses: tuple[float, ...]
    target: float
    target_label: str
    reached: bool


def overfit_plot_data(data: dict[str, Any]) -> OverfitPlotData:
    """From the doctor's 'overfit' plot data (losses, target, examples, lr, reference_name)."""
    losses = tuple(float(v) for v in data["losses"])
    target = float(data["target"])
    reached = bool(losses) and min(losses) <= target
    ref = data.get("reference")
    label = f"target {target:.3g}"
    if ref:
        label += f" = {target / ref:.2g} x {data['reference_name']}"
    verdict = "reached the target" if reached else "did NOT reach the target"
    return OverfitPlotData(
        title=f"Overfit {data['examples']} examples (Adam, lr {data['lr']:g}): {verdict}",
        steps=tuple(range(len(losses))),
        losses=losses,
        target=target,
        target_label=label,
        reached=reached,
    )


def draw_overfit(data: OverfitPlotData) -> Any:
    """Loss per step on the fixed batch, log-y, with the target line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    y = np.asarray(data.losses, dtype=float)
    ax.plot(data.steps, y, color="tab:blue", lw=1.8, label="training loss on the fixed batch")
    ax.axhline(
        data.target,
        color="tab:green" if data.reached else "tab:red",
        ls="--",
        lw=1.2,
        label=data.target_label,
    )
    if np.isfinite(y).any() and (y[np.isfinite(y)] > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(data.title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def write_doctor_plots(run_dir: str | Path, plot_data: dict[str, Any]) -> dict[str, str]:
    """Write the doctor's evidence plots (overfit.png, range_test.png) that have data."""
    out = Path(run_dir)
    written: dict[str, str] = {}
    if "overfit" in plot_data and plot_data["overfit"]["losses"]:
        fig = draw_overfit(overfit_plot_data(plot_data["overfit"]))
        written["overfit"] = str(save_figure(fig, out / "overfit.png"))
    result = plot_data.get("range_test")
    if result is not None and hasattr(result, "plot"):
        path = out / "range_test.png"
        result.plot(path)
        written["range_test"] = str(path)
    return written
