"""Show a doctor report on the terminal, and redraw a doctor run from its doctor.json.

`render` is shared by `lrtune doctor` and `lrtune report RUN_DIR`; `rerender` is the
`lrtune report` entry for doctor runs (the data behind the plots is saved in doctor.json
under 'plot_data', so nothing is re-run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lrtune.errors import ConfigError

FILE = "doctor.json"


def render(console: Any, report: Any, to_stdout: bool) -> None:
    """The report as a table (rich on a terminal) or as plain lines (CI, pipes)."""
    if console.plain:
        lines = []
        for c in report.checks:
            lines.append(f"{c.verdict:<4}  {c.title}: {c.measured}")
            if c.advice:
                lines.append(f"      -> {c.advice}")
        text = "\n".join(lines)
        if to_stdout:
            console.result(text)
        else:
            console.info(text)
        return
    rows = [(c.title, c.verdict, c.measured, c.advice) for c in report.checks]
    console.table(
        f"lrtune doctor: {report.task}", ("check", "verdict", "measured", "advice"), rows, to_stdout
    )


def summary_line(report: Any) -> str:
    """'doctor: FAILED (5 PASS, 1 WARN, 2 FAIL) in 3.2s'."""
    counts = report.counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    verdict = "FAILED" if counts["FAIL"] else "ok"
    return f"doctor: {verdict} ({summary}) in {report.seconds:.1f}s"


def rerender(run_dir: Path, console: Any) -> list[Path]:
    """Redraw overfit.png and range_test.png from doctor.json and print the checks table.

    Returns:
        The PNGs written.

    Raises:
        ConfigError: doctor.json is missing or is not a doctor report.
    """
    from lrtune.doctor import plot_data_from_json, report_from_dict
    from lrtune.report.diagnosis_plot import write_doctor_plots

    path = Path(run_dir) / FILE
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable doctor report ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: not an lrtune doctor report")
    try:
        report = report_from_dict(body)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    saved = body.get("plot_data")
    written: dict[str, str] = {}
    if saved is None:
        console.warning(
            f"{path} has no plot data (written by an older lrtune): the plots are not redrawn"
        )
    else:
        written = write_doctor_plots(run_dir, plot_data_from_json(saved))
    render(console, report, to_stdout=True)
    console.result(summary_line(report))
    return [Path(p) for p in written.values()]
