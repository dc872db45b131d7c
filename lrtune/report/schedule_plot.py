"""Schedule plots and the files `lrtune find` / `lrtune schedule show` write.

Compute (`schedule_plot_data`), then draw (`draw_schedule`), then write (`plot_schedule`,
`write_schedule_files`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from lrtune.report.rundir import pyplot, save_figure, write_csv, write_text
from lrtune.schedules import lr_curve, plan, resolve, to_python, to_yaml
from lrtune.schedules.base import fmt_number

MAX_TABLE_ROWS = 20  # epochs shown in the printed table (evenly spaced, last always)
MAX_EPOCH_LINES = 60  # above this many epochs, boundaries are drawn every k epochs

_STEPPED = {"step": "stepped every optimizer step", "epoch": "stepped once per epoch"}
PHASE_COLORS = {"warmup": "tab:orange", "warm-up": "tab:orange", "decay": "tab:green"}


class SchedulePlotData(NamedTuple):
    """Everything the schedule figure and table show, computed once."""

    name: str
    interval: str
    base_lr: float
    steps_per_epoch: int
    epochs: int
    lrs: list[float]  # LR of every optimizer step
    phases: list[tuple[str, int, int]]  # (label, first step, end step)
    table: list[tuple[int, int, float]]  # (epoch 1-based, its first step, LR there)
    note: str  # a caveat to print under the plot ('' for none)

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the run."""
        return len(self.lrs)

    @property
    def peak(self) -> tuple[int, float]:
        """(step, LR) of the highest LR."""
        lr = max(self.lrs)
        return self.lrs.index(lr), lr


def _table_epochs(epochs: int) -> list[int]:
    if epochs <= MAX_TABLE_ROWS:
        return list(range(1, epochs + 1))
    picks = {1 + round(i * (epochs - 1) / (MAX_TABLE_ROWS - 1)) for i in range(MAX_TABLE_ROWS)}
    return sorted(picks)


def schedule_plot_data(
    spec: Mapping[str, Any] | str, base_lr: float, steps_per_epoch: int, epochs: int
) -> SchedulePlotData:
    """Compute the curve, phases and epoch table of a schedule (ConfigError on a bad spec)."""
    p = plan(spec, steps_per_epoch, epochs)
    lrs = lr_curve(spec, base_lr, steps_per_epoch, epochs)
    table = [
        (e, (e - 1) * steps_per_epoch, lrs[(e - 1) * steps_per_epoch])
        for e in _table_epochs(epochs)
    ]
    note = ""
    if p.info.needs_metric:
        note = (
            "drawn as if the validation loss keeps improving; each plateau of "
            f"{p.params['patience'] + 1} epochs cuts the LR x{fmt_number(p.params['factor'])}"
        )
    return SchedulePlotData(
        name=p.info.name,
        interval=p.interval,
        base_lr=float(base_lr),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        lrs=lrs,
        phases=p.phases(),
        table=table,
        note=note,
    )


def _phase_color(label: str) -> str | None:
    for key, color in PHASE_COLORS.items():
        if key in label:
            return color
    return None


def draw_schedule(data: SchedulePlotData, log_y: bool = False) -> Any:
    """Draw LR vs optimizer step: epoch boundaries, warmup/decay phases shaded. Returns the
    matplotlib Figure (not shown, not saved)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    n, spe = data.total_steps, data.steps_per_epoch
    ax.plot(
        range(n + 1),
        [*data.lrs, data.lrs[-1]],
        drawstyle="steps-post",
        color="tab:blue",
        lw=1.8,
        zorder=3,
    )
    every = max(1, -(-data.epochs // MAX_EPOCH_LINES))
    for e in range(every, data.epochs, every):
        ax.axvline(e * spe, color="0.82", lw=0.8, ls=":", zorder=1)
    for label, start, end in data.phases:
        color = _phase_color(label)
        if color is not None:
            ax.axvspan(
                start,
                end,
                color=color,
                alpha=0.15,
                lw=0,
                zorder=0,
                label=f"{label}: steps {start}-{end}",
            )
    if any(_phase_color(label) for label, _, _ in data.phases):
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.set_xlim(0, n)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(data.lrs) * 1.1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate" + (" (log)" if log_y else ""))
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.set_xlabel("epoch (dotted lines: epoch boundaries)", fontsize=8)
    step, peak = data.peak
    g = "{:.3g}".format
    ax.set_title(
        f"LR schedule '{data.name}' ({_STEPPED[data.interval]}), base lr {g(data.base_lr)}, "
        f"{data.epochs} epochs x {spe} steps\n"
        f"start {g(data.lrs[0])}  ->  peak {g(peak)} at step {step}  ->  final "
        f"{g(data.lrs[-1])}",
        fontsize=10,
    )
    if data.note:
        fig.text(0.01, -0.02, f"{data.name}: {data.note}", fontsize=8, color="0.3")
    ax.grid(axis="y", color="0.92", zorder=0)
    fig.tight_layout()
    return fig


def plot_schedule(
    spec: Mapping[str, Any] | str,
    base_lr: float,
    steps_per_epoch: int,
    epochs: int,
    path: str | Path,
    log_y: bool = False,
) -> Path:
    """Compute, draw and save the schedule plot as PNG."""
    data = schedule_plot_data(spec, base_lr, steps_per_epoch, epochs)
    return save_figure(draw_schedule(data, log_y=log_y), path)


def write_schedule_files(
    run_dir: str | Path,
    spec: Mapping[str, Any] | str,
    base_lr: float,
    steps_per_epoch: int,
    epochs: int,
) -> dict[str, Path]:
    """Write schedule.yaml (every number explicit), schedule.py (the torch snippet),
    schedule.png (the plot) and schedule.csv (step, epoch, lr) into `run_dir`.

    Returns:
        {'yaml', 'python', 'png', 'csv'} -> path.

    Raises:
        ConfigError: an invalid spec or run.
    """
    run_dir = Path(run_dir)
    data = schedule_plot_data(spec, base_lr, steps_per_epoch, epochs)
    resolved = resolve(spec, steps_per_epoch, epochs, base_lr=base_lr)
    lr = fmt_number(float(base_lr))
    header = (
        f"# lrtune schedule, made for lr {lr} (set it on the optimizer) and {epochs} epochs x "
        f"{steps_per_epoch} steps.\n"
        f"# Plot it: lrtune schedule show schedule.yaml --lr {lr} --epochs {epochs} "
        f"--steps-per-epoch {steps_per_epoch}\n"
    )
    spe = steps_per_epoch
    return {
        "yaml": write_text(run_dir / "schedule.yaml", header + to_yaml(resolved)),
        "python": write_text(
            run_dir / "schedule.py", to_python(spec, base_lr, steps_per_epoch, epochs)
        ),
        "png": save_figure(draw_schedule(data), run_dir / "schedule.png"),
        "csv": write_csv(
            run_dir / "schedule.csv",
            ("step", "epoch", "lr"),
            ((s, s // spe + 1, repr(lr_)) for s, lr_ in enumerate(data.lrs)),
        ),
    }
