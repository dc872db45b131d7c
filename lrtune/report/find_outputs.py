"""Write a range test's files into its run directory: PNG, CSV, JSON (+ schedule files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrtune.report.rundir import write_csv, write_json

CSV_HEADER = ("repeat", "step", "lr", "loss", "smoothed", "smoothed_zero_lag")


def curve_rows(result: Any) -> list[tuple[Any, ...]]:
    """One row per recorded step of every repeat (NaN written as empty)."""
    rows = []
    for r, c in enumerate(result.curves):
        for i in range(len(c.lrs)):
            rows.append(
                (
                    r,
                    i,
                    float(c.lrs[i]),
                    _num(c.losses[i]),
                    _num(c.smoothed[i]),
                    _num(c.centered[i]) if i < len(c.centered) else None,
                )
            )
    return rows


def _num(x: Any) -> float | None:
    v = float(x)
    return v if v == v and abs(v) != float("inf") else None


def write_find_outputs(
    run_dir: Path,
    result: Any,
    schedule: dict[str, Any] | None = None,
    chosen_range: tuple[float, float] | None = None,
) -> dict[str, str]:
    """Write lr_find.png, lr_find.csv and result.json; return {kind: path}."""
    from lrtune.report.find_plot import draw_lr_find, lr_find_plot_data
    from lrtune.report.rundir import save_figure

    files = {
        "plot": str(save_figure(draw_lr_find(lr_find_plot_data(result, chosen_range)), run_dir / "lr_find.png")),
        "data": str(write_csv(run_dir / "lr_find.csv", CSV_HEADER, curve_rows(result))),
    }
    if schedule is not None:
        files.update(schedule.get("files", {}))
    body = result.to_dict()
    body["run_dir"] = str(run_dir)
    if schedule is not None:
        body["schedule"] = {k: v for k, v in schedule.items() if k != "files"}
    body["files"] = {**files, "result": str(run_dir / "result.json")}
    files["result"] = str(write_json(run_dir / "result.json", body))
    return files
