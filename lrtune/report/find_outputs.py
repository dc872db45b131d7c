"""Write a find run's files into its run directory: PNGs, CSV, JSON, schedule files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrtune.report.rundir import save_figure, write_csv, write_json

CSV_HEADER = ("repeat", "step", "lr", "loss", "smoothed")


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
                )
            )
    return rows


MEDIAN_HEADER = ("step", "lr", "median_loss", "median_smoothed", "band_low", "band_high")


def median_rows(result: Any) -> list[tuple[Any, ...]]:
    """The median over repeats (and the min-max band of the smoothed loss), per step."""
    lrs, raw, sm, lo, hi = result.aggregate()
    return [
        (i, float(lrs[i]), _num(raw[i]), _num(sm[i]), _num(lo[i]), _num(hi[i]))
        for i in range(len(lrs))
    ]


def _num(x: Any) -> float | None:
    v = float(x)
    return v if v == v and abs(v) != float("inf") else None


def write_find_outputs(run_dir: Path, outcome: Any) -> dict[str, Any]:
    """Write every file of a find run; fill outcome.files; return the result.json body."""
    from lrtune.report.find_plot import draw_lr_find, draw_sweep, lr_find_plot_data, sweep_plot_data

    result = outcome.result
    chosen = (outcome.plan.low, outcome.plan.high) if outcome.plan is not None else None
    files = {
        "plot": str(
            save_figure(draw_lr_find(lr_find_plot_data(result, chosen)), run_dir / "lr_find.png")
        ),
        "data": str(write_csv(run_dir / "lr_find.csv", CSV_HEADER, curve_rows(result))),
    }
    if len(result.curves) > 1:  # the curve the rules read and the plot draws
        files["median"] = str(
            write_csv(run_dir / "lr_find_median.csv", MEDIAN_HEADER, median_rows(result))
        )
    if outcome.sweep is not None:
        name = "lr_find_wd.png" if outcome.sweep.param == "weight_decay" else "lr_find_momentum.png"
        task_name = Path(str(result.info.get("task", ""))).name
        files["sweep_plot"] = str(
            save_figure(draw_sweep(sweep_plot_data(outcome.sweep, task_name)), run_dir / name)
        )
    if outcome.schedule is not None:
        from lrtune.report.schedule_plot import write_schedule_files

        s = outcome.schedule
        written = write_schedule_files(
            run_dir, s["spec"], s["base_lr"], s["steps_per_epoch"], s["epochs"]
        )
        files.update({f"schedule_{k}": str(v) for k, v in written.items()})
    files["result"] = str(run_dir / "result.json")
    outcome.files = files
    body = outcome.to_dict()
    body["run_dir"] = str(run_dir)
    body["files"] = files
    write_json(run_dir / "result.json", body)
    return body


def load_curves(run_dir: Path) -> tuple[Any, list[Any]]:
    """Settings and curves of a saved find run, rebuilt from result.json and lr_find.csv."""
    import csv
    import json

    import numpy as np

    from lrtune.rangetest import Curve

    body = json.loads((run_dir / "result.json").read_text())
    rows: dict[int, list[dict[str, str]]] = {}
    with open(run_dir / "lr_find.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(int(row["repeat"]), []).append(row)
    curves = []
    for r, meta in enumerate(body.get("repeats", [])):
        rr = rows.get(r, [])

        def f(key: str, rr: list[dict[str, str]] = rr) -> np.ndarray:
            return np.array([float(x[key]) if x[key] != "" else np.nan for x in rr])

        raw = f("loss")
        n = len(raw)
        stop = meta.get("stop_reason", "end")
        curves.append(
            Curve(
                lrs=f("lr"),
                losses=raw,
                smoothed=f("smoothed"),
                stop_reason=stop,
                seed=meta.get("seed", r),
                seconds=meta.get("seconds", 0.0),
                steps_run=n,
                skipped_steps=meta.get("skipped_steps", []),
            )
        )
    return body, curves


def rerender(run_dir: Path, console: Any) -> list[Path]:
    """Recompute the suggestions from the saved curve and redraw lr_find.png."""
    from lrtune.rangetest import RangeTestSettings, build_result
    from lrtune.report.find_plot import draw_lr_find, lr_find_plot_data

    body, curves = load_curves(run_dir)
    w = body.get("weights", {})
    result = build_result(
        RangeTestSettings(**body["settings"]),
        curves,
        body["headline"]["rule"],
        w.get("checksum_before", ""),
        w.get("checksum_after", ""),
        body.get("timings", {}).get("total_s", 0.0),
    )
    result.info.update({k: body[k] for k in ("task", "optimizer") if k in body})
    plan = body.get("plan")
    chosen = (plan["low"], plan["high"]) if plan else None
    written = [
        save_figure(draw_lr_find(lr_find_plot_data(result, chosen)), run_dir / "lr_find.png")
    ]
    s = body.get("schedule")
    if s and s.get("spec") is not None:
        from lrtune.report.schedule_plot import write_schedule_files

        spe, epochs = s["steps_per_epoch"], s["epochs"]
        written += write_schedule_files(run_dir, s["spec"], s["base_lr"], spe, epochs).values()
    return written
