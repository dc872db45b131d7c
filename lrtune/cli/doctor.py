"""`lrtune doctor TASK.py`: sanity checks on a task file, each PASS/WARN/FAIL with advice."""

from __future__ import annotations

from typing import Any

import click

from lrtune.cli.options import (
    common_options,
    device_option,
    handle_errors,
    make_console,
    seed_option,
)

CHECK_NAMES = "data, labels, inputs, overlap, initial_loss, gradients, overfit, range_test"


@click.command("doctor")
@click.argument("task", type=click.Path(dir_okay=False))
@click.option(
    "--optimizer",
    default="sgd",
    show_default=True,
    help="Optimizer for the gradient check and the range test (sgd, adam, adamw, ...); "
    "the task file's optimizer() is used instead when it defines one.",
)
@click.option(
    "--lr",
    type=float,
    default=None,
    help="LR to check gradients at. [default: 0.01 for SGD, 1e-3 for Adam-like optimizers]",
)
@click.option(
    "--batch-size", type=int, default=None, help="Batch size when train_data() returns a Dataset."
)
@click.option(
    "--only", multiple=True, help=f"Run only these checks (comma-separated): {CHECK_NAMES}."
)
@click.option(
    "--skip", multiple=True, help="Skip these checks (comma-separated), e.g. --skip range_test."
)
@click.option(
    "--allow-frozen",
    is_flag=True,
    help="Frozen parameters are intended (fine-tuning): WARN, not FAIL.",
)
@click.option(
    "--overfit-steps",
    type=int,
    default=None,
    help="Step budget of the overfit check. [default: 300]",
)
@click.option(
    "--range-test-steps", type=int, default=None, help="Steps of the range test. [default: 100]"
)
@device_option
@seed_option
@common_options
@handle_errors
def doctor(task: str, **o: Any) -> None:
    """Sanity-check TASK.py before tuning: data, labels, input scale, train/val overlap,
    initial loss, gradients, overfitting one small batch, and an LR range test.

    Prints a table (check, verdict, measured, advice), writes doctor.json and evidence
    plots into the run directory. Exit code 1 when any check FAILs, 0 otherwise.
    """
    from lrtune.doctor import DoctorSettings, parse_names, plot_data_to_json, run_doctor
    from lrtune.report.diagnosis_plot import write_doctor_plots
    from lrtune.report.doctor_report import render, summary_line
    from lrtune.report.rundir import make_run_dir, to_json, write_json

    console = make_console(o["quiet"], o["verbose"])
    extra = {k: o[k] for k in ("overfit_steps", "range_test_steps") if o[k] is not None}
    settings = DoctorSettings(
        optimizer=o["optimizer"],
        lr=o["lr"],
        batch_size=o["batch_size"],
        device=o["device"],
        seed=o["seed"],
        only=parse_names(o["only"]),
        skip=parse_names(o["skip"]),
        allow_frozen=o["allow_frozen"],
        **extra,
    )
    names = settings.selected()
    console.info(f"doctor: {len(names)} checks on {task}")
    with console.progress("doctor", len(names)) as bar:
        report, plot_data = run_doctor(task, settings, progress=bar, debug=o["debug"])
    run_dir = make_run_dir("doctor", o["out"])
    report.plots = write_doctor_plots(run_dir, plot_data)
    data = report.to_dict()
    # The plots' data, so `lrtune report RUN_DIR` can redraw them without re-running
    # (in the file only: --json prints the report, not hundreds of curve points).
    write_json(run_dir / "doctor.json", {**data, "plot_data": plot_data_to_json(plot_data)})
    render(console, report, to_stdout=not o["as_json"])
    console.info(
        f"wrote {run_dir}/ (doctor.json{''.join(', ' + k + '.png' for k in report.plots)})"
    )
    if o["as_json"]:
        console.result(to_json(data).rstrip())
    else:
        console.result(summary_line(report))
    raise SystemExit(int(report.exit_code))
