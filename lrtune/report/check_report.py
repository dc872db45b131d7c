"""Render a CheckReport: the terminal report, JUnit XML, a markdown summary, the loss-curve
PNG, diagnosis PNGs and result.json; and `rerender`, which redraws a check run directory
from its result.json (`lrtune report RUN_DIR`).

Plots follow compute-then-draw: `curve_plot_data(report)` returns the numbers (tests
assert on them) and `draw_curves(data)` only draws.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lrtune.report.rundir import save_figure, write_json, write_text

if TYPE_CHECKING:  # pragma: no cover
    from lrtune.check import CheckReport, CriterionResult
    from lrtune.diagnose import Finding

VERDICT_MARK = {"pass": "✅ pass", "fail": "❌ fail", "error": "⚠️ error"}
SEVERITY_MARK = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
FILES = {
    "result": "result.json",
    "junit": "junit.xml",
    "summary": "summary.md",
    "curve": "loss_curve.png",
}


# --------------------------------------------------------------------------- text
def setup_line(task: str, s: Mapping[str, Any]) -> str:
    """One line: task, optimizer, lr, schedule, epochs, seed, device (from run_setup)."""
    sched = s.get("schedule") or {}
    name = sched.get("name", "constant") if isinstance(sched, Mapping) else sched
    lr = s.get("lr")
    lr_text = f"{lr:.4g}" if isinstance(lr, (int, float)) else str(lr)
    if s.get("lr_source", "config") != "config":
        lr_text += f" ({s['lr_source']})"
    optimizer = str(s.get("optimizer"))
    if s.get("optimizer_source") == "task file":
        optimizer += " (from the task file)"
    return (
        f"task {task} · {optimizer} lr {lr_text} · {name} · "
        f"{s.get('epochs')} epochs · seed {s.get('seed')} · {s.get('device')}"
    )


def table_rows(report: CheckReport) -> list[tuple[str, str, str, str]]:
    """(criterion, measured, threshold, verdict) rows for the terminal and markdown."""
    return [(r.key, r.measured_text, r.threshold_text, r.verdict.upper()) for r in report.results]


def _epochs(f: Finding) -> str:
    if f.start_epoch == f.end_epoch:
        return f"epoch {f.start_epoch}"
    return f"epochs {f.start_epoch}-{f.end_epoch}"


def diagnosis_verdict(report: CheckReport) -> str:
    """One line: what the learning-curve diagnosis found, or why it found nothing."""
    from lrtune.diagnose import MIN_EPOCHS

    found = report.diagnosis
    if found:
        return "diagnosis: " + "; ".join(f"{f.code} ({f.severity}): {f.title}" for f in found)
    if report.passed:
        return "diagnosis: healthy learning curves"
    n = len(report.records)
    if report.status == "failed":
        return "diagnosis: none (the run raised an error before its curves could be read)"
    if report.interrupted:
        return "diagnosis: none (the run was interrupted; nothing was judged)"
    if n < MIN_EPOCHS:
        return (
            f"diagnosis: none ({n} epoch{'s' if n != 1 else ''} are too few to read a curve; "
            f"the patterns need {MIN_EPOCHS})"
        )
    return (
        f"diagnosis: the {n}-epoch learning curves show no known problem pattern; "
        "compare the measured values with the thresholds"
    )


def diagnosis_lines(report: CheckReport, width: int | None = None) -> list[str]:
    """The diagnosis in plain words for the terminal and CI logs.

    A passing check gets the one-line verdict; a failing one gets each finding (title,
    the numbers that triggered it, what to do). `width` wraps lines (None: no wrapping).
    """
    head = diagnosis_verdict(report)
    if report.passed or not report.diagnosis:
        return [head]
    lines = ["diagnosis of the learning curves (why it failed):"]
    indent = " " * 11
    for f in report.diagnosis:
        parts = (
            (f"  {f.severity.upper():8} {f.title} · {f.code} · {_epochs(f)}", indent),
            (f"{indent}{f.evidence}", indent),
            (f"{indent}-> {f.advice}", indent + "   "),
        )
        for part, hang in parts:
            lines += textwrap.wrap(part, width, subsequent_indent=hang) if width else [part]
    return lines


def show(console: Any, report: CheckReport, as_json: bool = False) -> None:
    """Print the report: the criteria (table or CI lines), the diagnosis, the headline.

    Everything goes to stdout, the headline last; `as_json` prints result.json instead.
    """
    from lrtune.report.rundir import to_json

    if as_json:
        console.result(to_json(report.to_dict()).rstrip())
        return
    if console.plain:  # CI logs: greppable lines; the table wraps badly at 80 columns
        for r in report.results:
            console.result(f"{r.verdict.upper():5}  {r.message}")
        width = None
    else:
        console.table(
            f"lrtune check {report.name}",
            ("criterion", "measured", "threshold", "verdict"),
            table_rows(report),
            to_stdout=True,
        )
        width = max(60, console.out.width - 1)
    for line in diagnosis_lines(report, width):
        console.result(line)
    console.result(report.headline)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def markdown_diagnosis(report: CheckReport, pngs: Mapping[str, str] | None = None) -> list[str]:
    """The summary's diagnosis: a section on a failure, one line on a pass."""
    if report.passed or not report.diagnosis:
        verdict = diagnosis_verdict(report).removeprefix("diagnosis: ")
        return ["", f"**Learning curves:** {_md_escape(verdict)}"]
    lines = ["", "### Diagnosis of the learning curves", ""]
    for f in report.diagnosis:
        lines += [
            f"- {SEVERITY_MARK.get(f.severity, '')} **{_md_escape(f.title)}** "
            f"(`{f.code}`, {_epochs(f)}): {_md_escape(f.evidence)}.  ",
            f"  *What to do:* {_md_escape(f.advice)}.",
        ]
    for code, png in (pngs or {}).items():
        lines += ["", f"![diagnosis: {code}]({png})"]
    return lines


def markdown(
    report: CheckReport, png: str | None = None, diagnosis_pngs: Mapping[str, str] | None = None
) -> str:
    """The markdown summary (GitHub step summary, GitLab/MR comments).

    Args:
        report: the check report.
        png: the loss-curve image to link (a path relative to the summary), or None.
        diagnosis_pngs: finding code -> diagnosis image to link, likewise.
    """
    mark = "✅" if report.passed else "⚠️" if report.interrupted else "❌"
    word = "passed" if report.passed else "interrupted" if report.interrupted else "failed"
    lines = [
        f"## {mark} lrtune check {word}: {report.name}",
        "",
        f"`{report.config}` · {_md_escape(setup_line(report.task, report.setup))} · "
        f"{report.steps} steps in {report.seconds:.1f} s · run {report.status}",
        "",
        "| criterion | measured | threshold | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for r in report.results:
        lines.append(
            f"| `{r.key}` | {_md_escape(r.measured_text)} | {_md_escape(r.threshold_text)} "
            f"| {VERDICT_MARK[r.verdict]} |"
        )
    if report.error and report.status != "complete":
        lines += ["", f"**Run {report.status}:** {_md_escape(report.error)}"]
    for w in report.warnings:
        lines += ["", f"> warning: {_md_escape(w)}"]
    lines += markdown_diagnosis(report, diagnosis_pngs)
    if png:
        lines += ["", f"![loss curve]({png})"]
    lines += [
        "",
        "<details><summary>Per-epoch record</summary>",
        "",
        "| epoch | step | lr | train_loss | val_loss | val_metric | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in report.records:
        lines.append(
            "| "
            + " | ".join(
                _num(e.get(k))
                for k in ("epoch", "step", "lr", "train_loss", "val_loss", "val_metric", "seconds")
            )
            + " |"
        )
    lines += ["", "</details>", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- junit
def junit_xml(report: CheckReport, timestamp: str | None = None) -> str:
    """JUnit XML: one <testcase> per criterion; failures carry measured value and threshold."""
    import xml.etree.ElementTree as ET

    failures = sum(r.verdict == "fail" for r in report.results)
    errors = sum(r.verdict == "error" for r in report.results)
    counts = {
        "tests": str(len(report.results)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": "0",
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": "lrtune check", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": f"lrtune check: {report.name}", **counts})
    if timestamp:
        suite.set("timestamp", timestamp)
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("config", report.config),
        ("task", report.task),
        ("status", report.status),
        ("steps", report.steps),
        *((k, v) for k, v in report.setup.items() if not isinstance(v, (Mapping, list))),
    ):
        ET.SubElement(props, "property", {"name": str(key), "value": _num(value)})
    classname = f"lrtune.check.{report.name}"
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", {"classname": classname, "name": r.key, "time": "0"}
        )
        if r.verdict != "pass":
            tag = "failure" if r.verdict == "fail" else "error"
            kind = "CriterionFailed" if r.verdict == "fail" else "NotMeasured"
            node = ET.SubElement(case, tag, {"message": r.message, "type": kind})
            node.text = _case_detail(report, r)
        out = ET.SubElement(case, "system-out")
        out.text = f"{r.help}\nmeasured: {r.measured_text}\nthreshold: {r.threshold_text}"
    if not report.passed:  # the suite's own output: why it failed, from the curves
        ET.SubElement(suite, "system-out").text = "\n".join(diagnosis_lines(report))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _case_detail(report: CheckReport, r: CriterionResult) -> str:
    lines = [r.message, setup_line(report.task, report.setup), f"run status: {report.status}"]
    if report.error:
        lines.append(f"run error: {report.error}")
    last = report.records[-1] if report.records else None
    if last:
        lines.append(
            f"last epoch {last.get('epoch')}: train_loss {_num(last.get('train_loss'))}, "
            f"val_loss {_num(last.get('val_loss'))}, val_metric {_num(last.get('val_metric'))}"
        )
    return "\n".join([*lines, *diagnosis_lines(report)])


# --------------------------------------------------------------------------- plot
class Line(NamedTuple):
    """A threshold line: on which panel, where, its label, and whether it was met."""

    panel: str  # 'loss' | 'metric' | 'x' (a vertical budget line, in epochs)
    value: float
    label: str
    passed: bool
    series: str  # 'train' | 'val' | 'budget': picks the dash style
    judged: bool = True  # False: the criterion could not be measured (run failed/interrupted)


class CurvePlotData(NamedTuple):
    """Everything the loss-curve figure shows; x is in epochs (a step is 1/steps_per_epoch).

    Epoch-mean training losses sit at mid-epoch (they average it); validation values
    sit at the epoch's end, where they were measured.
    """

    title: str
    step_x: list[float]
    step_loss: list[float]
    train_x: list[float]
    train_loss: list[float | None]
    val_x: list[float]
    val_loss: list[float | None]
    val_metric: list[float | None]
    baseline_train_x: list[float]
    baseline_train: list[float | None]
    baseline_val_x: list[float]
    baseline_val: list[float | None]
    tolerance: float | None
    lines: list[Line]
    initial: tuple[float, float] | None
    diverged: tuple[float, float] | None
    diverged_step: int | None
    baseline_worst: tuple[float, float, str] | None  # (x, y, label) when beyond tolerance
    log_y: bool
    epochs_planned: float
    diagnosis: list[str]  # footer lines on a failed check: each finding and what to do


def _threshold_lines(report: CheckReport, spe: float) -> list[Line]:
    lines: list[Line] = []
    initial = report.initial_loss
    for r in report.results:
        ok, judged = r.verdict == "pass", r.verdict != "error"
        mark = "met" if ok else "NOT met" if judged else "not judged"
        if r.key in ("final_train_loss_below", "val_loss_below"):
            series = "train" if r.key.startswith("final") else "val"
            label = f"{series} loss {r.threshold_text} ({mark})"
            lines.append(Line("loss", float(r.threshold), label, ok, series, judged))
        elif r.key == "loss_drop_at_least" and initial is not None and math.isfinite(initial):
            y = abs(initial) * (1 - float(r.threshold))
            label = f"train loss {r.threshold_text}: < {y:.3g} ({mark})"
            lines.append(Line("loss", y, label, ok, "train", judged))
        elif r.key.startswith("val_metric"):
            label = f"val metric {r.threshold_text} ({mark})"
            lines.append(Line("metric", float(r.threshold), label, ok, "val", judged))
        elif r.key in ("max_epochs", "max_steps"):
            x = float(r.threshold) / (spe if r.key == "max_steps" else 1.0)
            label = f"budget {r.threshold_text} ({mark})"
            lines.append(Line("x", x, label, ok, "budget", judged))
    return lines


def curve_plot_data(report: CheckReport) -> CurvePlotData:
    """Compute the loss-curve figure's data from a report (pure)."""
    records = list(report.records)
    spe = _steps_per_epoch(report)
    # Step i's loss is measured before update i+1, so it sits at x = i / steps_per_epoch.
    steps = [(i / spe, y) for i, y in enumerate(report.step_losses)]
    finite = [(x, y) for x, y in steps if y is not None and math.isfinite(y)]
    diverged = finite[-1] if report.status == "diverged" and finite else None
    initial = report.initial_loss
    start = (0.0, initial) if initial is not None and math.isfinite(initial) else None
    base = list(report.baseline or [])
    tolerance = next(
        (float(r.threshold.tolerance) for r in report.results if r.key == "baseline"), None
    )
    lines = _threshold_lines(report, spe)
    ys = [y for _, y in finite]
    ys += [v for e in records for v in (e.get("train_loss"), e.get("val_loss")) if v is not None]
    ys += [line.value for line in lines if line.panel == "loss"]
    ys = [y for y in ys if math.isfinite(y)]
    log_y = bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 20
    verdict = "PASS" if report.passed else "FAIL"
    names = [r.key for r in report.failed]
    failed = ", ".join(names) if len(names) <= 2 else f"{names[0]} and {len(names) - 1} more"
    if report.interrupted:
        verdict = f"INTERRUPTED after {len(records)} of {report.setup.get('epochs')} epochs"
        failed = "nothing judged"
    title = (
        f"lrtune check {report.name}: {verdict}"
        + (f" ({failed})" if failed else "")
        + "\ntraining and validation loss against the check's thresholds"
        + f" (seed {report.setup.get('seed')}, lr {_num(report.setup.get('lr'))})"
    )
    return CurvePlotData(
        title=title,
        step_x=[x for x, _ in finite],
        step_loss=[y for _, y in finite],
        train_x=[float(e["epoch"]) - 0.5 for e in records],
        train_loss=[e.get("train_loss") for e in records],
        val_x=[float(e["epoch"]) for e in records],
        val_loss=[e.get("val_loss") for e in records],
        val_metric=[e.get("val_metric") for e in records],
        baseline_train_x=[float(e["epoch"]) - 0.5 for e in base],
        baseline_train=[e.get("train_loss") for e in base],
        baseline_val_x=[float(e["epoch"]) for e in base],
        baseline_val=[e.get("val_loss") for e in base],
        tolerance=tolerance,
        lines=lines,
        initial=start,
        diverged=diverged,
        diverged_step=len(finite) if diverged is not None else None,
        baseline_worst=_baseline_worst(records, base, tolerance),
        log_y=log_y,
        epochs_planned=float(report.setup.get("epochs") or len(records) or 1),
        diagnosis=[]
        if report.passed
        else [
            f"Diagnosis ({_epochs(f)}): {f.title}. What to do: {f.advice}."
            for f in report.diagnosis
        ],
    )


def _baseline_worst(
    records: Sequence[Mapping[str, Any]],
    base: Sequence[Mapping[str, Any]],
    tolerance: float | None,
) -> tuple[float, float, str] | None:
    """Where the run is furthest above the baseline, when that is beyond the tolerance."""
    if tolerance is None or not base:
        return None
    ref = {int(e["epoch"]): e for e in base}
    worst: tuple[float, float, float, str] | None = None
    for e in records:
        b = ref.get(int(e["epoch"]))
        for metric, shift in (("train_loss", 0.5), ("val_loss", 0.0)):
            v, r = e.get(metric), None if b is None else b.get(metric)
            if v is None or r is None or not math.isfinite(v):
                continue
            excess = (v - r) / max(abs(r), 1e-8)
            if worst is None or excess > worst[0]:
                worst = (excess, float(e["epoch"]) - shift, float(v), metric)
    if worst is None or worst[0] <= tolerance:
        return None
    return worst[1], worst[2], f"{worst[0]:+.0%} vs baseline ({worst[3]})"


def _steps_per_epoch(report: CheckReport) -> float:
    if report.setup.get("steps_per_epoch"):
        return float(report.setup["steps_per_epoch"])
    if report.records and report.records[0].get("step"):
        return float(report.records[0]["step"])
    return float(max(report.steps, 1))


def _has(values: Sequence[float | None]) -> bool:
    return any(v is not None and math.isfinite(v) for v in values)


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


DASH = {"train": "--", "val": "-.", "budget": ":"}
# Threshold labels sit in the right margin, each at its line's height, nudged apart so that
# labels of near lines (a loss < 0.2 and a drop to < 0.219) never print on top of each
# other: at least this far apart, in axes-height fractions (about 1.5 lines of 8 pt text).
LABEL_GAP = 0.06


def spread_labels(positions: Sequence[float], gap: float = LABEL_GAP) -> list[float]:
    """Label heights (axes fractions) as close to `positions` as possible, in the same
    order, with neighbours at least `gap` apart and inside [0, 1] when they fit (pure)."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    placed: list[float] = []
    for i in order:  # upwards: push each label above the one below it
        y = min(max(positions[i], 0.0), 1.0)
        placed.append(y if not placed else max(y, placed[-1] + gap))
    for k in range(len(placed) - 1, -1, -1):  # then back down from the top edge
        ceiling = 1.0 if k == len(placed) - 1 else placed[k + 1] - gap
        placed[k] = max(min(placed[k], ceiling), 0.0)
    out = [0.0] * len(positions)
    for i, y in zip(order, placed, strict=True):
        out[i] = y
    return out


def _axes_fraction(ax: Any, value: float) -> float:
    """Where a y value sits in an axis, as a fraction of its height (log scales too)."""
    return float(ax.transAxes.inverted().transform(ax.transData.transform((0.0, value)))[1])


def draw_curves(data: CurvePlotData) -> Any:
    """Draw the figure (returns it; the caller saves it)."""
    from lrtune.report.rundir import pyplot

    plt = pyplot()
    has_metric = _has(data.val_metric) or any(line.panel == "metric" for line in data.lines)
    fig, axes = plt.subplots(
        2 if has_metric else 1,
        1,
        figsize=(9, 7.5 if has_metric else 5),
        sharex=True,
        gridspec_kw={"height_ratios": [2.3, 1]} if has_metric else None,
        squeeze=False,
    )
    ax = axes[0][0]
    ax.plot(
        data.step_x,
        data.step_loss,
        color="tab:blue",
        alpha=0.3 if _has(data.train_loss) else 0.9,  # alone when the run died early
        lw=0.8,
        marker="" if _has(data.train_loss) else ".",
        label="train loss, per step",
    )
    if _has(data.train_loss):
        ax.plot(
            data.train_x,
            _nan(data.train_loss),
            "o-",
            color="tab:blue",
            label="train loss, epoch mean",
        )
    if _has(data.val_loss):
        ax.plot(
            data.val_x,
            _nan(data.val_loss),
            "s-",
            color="tab:orange",
            label="val loss, end of epoch",
        )
    if data.baseline_train_x:
        ax.plot(
            data.baseline_train_x,
            _nan(data.baseline_train),
            "o--",
            color="tab:blue",
            alpha=0.45,
            mfc="none",
            label="baseline train",
        )
        if _has(data.baseline_val):
            ax.plot(
                data.baseline_val_x,
                _nan(data.baseline_val),
                "s--",
                color="tab:orange",
                alpha=0.45,
                mfc="none",
                label="baseline val",
            )
        if data.tolerance is not None:
            for xs, ys, color in (
                (data.baseline_train_x, data.baseline_train, "tab:blue"),
                (data.baseline_val_x, data.baseline_val, "tab:orange"),
            ):
                if _has(ys):
                    low = _nan(ys)
                    high = [v + abs(v) * data.tolerance for v in low]
                    ax.fill_between(xs, low, high, color=color, alpha=0.10, lw=0)
            ax.fill_between(
                [],
                [],
                [],
                color="grey",
                alpha=0.2,
                label=f"baseline tolerance (+{data.tolerance:.0%})",
            )
    if data.baseline_worst is not None:
        x, y, label = data.baseline_worst
        ax.plot(x, y, "o", ms=14, mfc="none", mec="red", mew=2)
        ax.annotate(
            label,
            (x, y),
            xytext=(-10, 10),
            textcoords="offset points",
            color="red",
            fontsize=9,
            ha="right",
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1},
        )
    if data.initial is not None:
        ax.plot(
            *data.initial, "D", color="black", ms=5, label=f"initial loss {data.initial[1]:.3g}"
        )
    if data.diverged is not None:
        ax.plot(*data.diverged, "X", color="red", ms=13, label="diverged here")
        ax.annotate(
            f"  diverged at step {data.diverged_step}",
            data.diverged,
            color="red",
            fontsize=9,
            va="center",
        )
    if data.log_y:
        ax.set_yscale("log")
    panels = {"loss": ax, "metric": axes[1][0] if has_metric else None}
    for line in data.lines:
        color = _line_color(line)
        if line.panel == "x":  # a budget (its label is placed once the y limits are final)
            for row in axes:
                row[0].axvline(line.value, color=color, ls=":", lw=1.6)
        elif panels.get(line.panel) is not None:
            panels[line.panel].axhline(line.value, color=color, ls=DASH[line.series], lw=1.3)
    ax.set_ylabel("loss" + (" (log scale)" if data.log_y else ""))
    ax.set_title(data.title, fontsize=10.5)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    if has_metric:
        mx = axes[1][0]
        mx.set_ylabel("val metric")
        mx.grid(True, alpha=0.3)
        if _has(data.val_metric):
            mx.plot(data.val_x, _nan(data.val_metric), "o-", color="tab:purple", label="val metric")
            mx.legend(fontsize=8, loc="lower right")
        else:
            mx.text(
                0.5,
                0.5,
                "no validation value: the run ended before its first epoch did",
                transform=mx.transAxes,
                ha="center",
                color="grey",
            )
    axes[-1][0].set_xlabel("epoch")
    # The planned run length: a run that died early shows how far it got.
    right = max(
        [data.epochs_planned, *data.val_x, *(ln.value for ln in data.lines if ln.panel == "x")]
    )
    axes[-1][0].set_xlim(0, right + 0.1)
    fig.tight_layout()
    for panel, target in panels.items():  # labels last: the y limits are final now
        if target is not None:
            _label_thresholds(target, [ln for ln in data.lines if ln.panel == panel])
    _label_budgets(ax, data.lines)
    if data.diagnosis:  # below the axes; save_figure's tight bbox keeps it in the PNG
        text = "\n".join(textwrap.fill(line, 120) for line in data.diagnosis)
        fig.text(0.01, -0.01, text, fontsize=8.5, va="top", ha="left", color="darkred")
    return fig


def _line_color(line: Line) -> str:
    return "tab:green" if line.passed else "tab:red" if line.judged else "tab:gray"


def budget_label_place(fractions: Sequence[float]) -> tuple[float, str]:
    """(height, vertical alignment) of a vertical budget label: in the tallest stretch of
    the axes that no horizontal threshold line crosses, from its edge (pure)."""
    cuts = sorted([0.0, 1.0, *(min(max(f, 0.0), 1.0) for f in fractions)])
    low, high = max(zip(cuts, cuts[1:], strict=False), key=lambda ab: ab[1] - ab[0])
    if high >= 1.0:
        return 0.98, "top"
    if low <= 0.0:
        return 0.02, "bottom"
    return (low + high) / 2, "center"


def _label_budgets(ax: Any, lines: Sequence[Line]) -> None:
    """Each budget's label along its vertical line, clear of the threshold lines."""
    at = [_axes_fraction(ax, ln.value) for ln in lines if ln.panel == "loss"]
    y, va = budget_label_place(at)
    for line in (ln for ln in lines if ln.panel == "x"):
        ax.text(
            line.value,
            y,
            f"{line.label} ",
            transform=ax.get_xaxis_transform(),
            color=_line_color(line),
            fontsize=8,
            rotation=90,
            va=va,
            ha="right",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1},
        )


def _label_thresholds(ax: Any, lines: Sequence[Line]) -> None:
    """Each horizontal threshold's label in the right margin, at its height (nudged apart
    from its neighbours, with a short leader back to the line)."""
    at = [_axes_fraction(ax, line.value) for line in lines]
    for line, y_line, y_text in zip(lines, at, spread_labels(at), strict=True):
        color = _line_color(line)
        ax.annotate(
            line.label,
            xy=(1.0, y_line),
            xycoords="axes fraction",
            xytext=(1.025, y_text),
            textcoords="axes fraction",
            color=color,
            fontsize=8,
            ha="left",
            va="center",
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": color, "lw": 0.8, "shrinkA": 0, "shrinkB": 2},
        )


# --------------------------------------------------------------------------- files
def write_run_files(
    report: CheckReport, run_dir: Path, timestamp: str | None = None
) -> dict[str, Path]:
    """Write junit.xml, loss_curve.png, summary.md and, on a failure, diagnosis PNGs.

    Everything but result.json: `rerender` calls this on a saved report.

    Returns:
        name -> path of every file written (diagnosis PNGs as 'diagnosis_<code>').
    """
    from lrtune.report.diagnosis_plot import write_diagnosis_plots

    paths: dict[str, Path] = {}
    paths["junit"] = write_text(run_dir / FILES["junit"], junit_xml(report, timestamp))
    paths["curve"] = save_figure(draw_curves(curve_plot_data(report)), run_dir / FILES["curve"])
    # One figure per finding, when there is an epoch curve to shade (a run that blew up
    # in its first epoch has none: loss_curve.png shows its steps and the diagnosis).
    pngs: dict[str, str] = {}
    if not report.passed and report.diagnosis and len(report.records) >= 2:
        written = write_diagnosis_plots(report.records, report.diagnosis, run_dir)
        for finding, path in zip(report.diagnosis, written, strict=True):
            paths[path.stem] = path
            pngs[finding.code] = path.name
    summary = markdown(report, FILES["curve"], pngs)
    paths["summary"] = write_text(run_dir / FILES["summary"], summary)
    return paths


def write_outputs(
    report: CheckReport,
    run_dir: Path,
    *,
    junit: str | Path | None = None,
    summary: str | Path | None = None,
    timestamp: str | None = None,
) -> dict[str, Path]:
    """Write result.json and every file of `write_run_files` into the run dir.

    Also copies the JUnit XML / summary to `junit` / `summary` when given, and appends
    the summary to $GITHUB_STEP_SUMMARY when that variable is set.

    Returns:
        name -> path of every file written.
    """
    body = {**report.to_dict(), "started": timestamp}
    paths = {"result": write_json(run_dir / FILES["result"], body)}
    paths.update(write_run_files(report, run_dir, timestamp))
    if junit:
        paths["junit_copy"] = write_text(Path(junit), junit_xml(report, timestamp))
    if summary:
        paths["summary_copy"] = write_text(Path(summary), markdown(report))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        # Appended, not replaced: other steps of the job write to the same file.
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown(report) + "\n")
        paths["github_step_summary"] = Path(step_summary)
    return paths


def rerender(run_dir: Path, console: Any) -> list[Path]:
    """`lrtune report RUN_DIR` on a check run: redraw every file from result.json.

    Re-reads the learning curves with the current diagnosis, rewrites junit.xml,
    summary.md, loss_curve.png (and diagnosis PNGs on a failure), and prints the report
    as `lrtune check` does. result.json itself is left as it was. Nothing is trained.

    Returns:
        The files written.

    Raises:
        ConfigError: result.json is missing, unreadable or not a check result.
    """
    from lrtune.check import CheckReport
    from lrtune.errors import ConfigError

    path = Path(run_dir) / FILES["result"]
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable check result ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: not an lrtune check result.json")
    try:
        report = CheckReport.from_dict(body)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    written = write_run_files(report, Path(run_dir), body.get("started"))
    show(console, report)
    return list(written.values())
