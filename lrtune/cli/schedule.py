"""`lrtune schedule list|show`: the schedule registry and schedule plots.

Only click is imported here at module level; the library loads inside the commands.
"""

from __future__ import annotations

from typing import Any

import click

from lrtune.cli.options import (
    common_options,
    debug_option,
    handle_errors,
    json_option,
    make_console,
    quiet_option,
    verbose_option,
)

# Preview run for `show` when the options are not given.
SHOW_EPOCHS = 10
SHOW_STEPS_PER_EPOCH = 100
SHOW_LR = 0.1


@click.group(name="schedule", context_settings={"help_option_names": ["-h", "--help"]})
def schedule() -> None:
    """List, plot and export LR schedules (YAML specs, see configs/schedules/)."""


@schedule.command(name="list")
@json_option
@quiet_option
@verbose_option
@debug_option
@handle_errors
def list_(as_json: bool, quiet: bool, verbose: bool, debug: bool) -> None:
    """List every schedule with its parameters, defaults and a one-line description."""
    import json

    from lrtune.schedules import REGISTRY

    console = make_console(quiet, verbose)
    if as_json:
        data = {
            name: {
                "description": info.description,
                "torch_class": info.torch_class,
                "default_interval": info.default_interval,
                "warmup": not info.own_warmup,
                "params": {
                    p.name: {
                        "kind": p.kind,
                        "default": p.default_text(),
                        "range": p.range_text(),
                        "help": p.help,
                    }
                    for p in info.params
                },
            }
            for name, info in REGISTRY.items()
        }
        console.result(json.dumps(data, indent=2))
        return
    rows = []
    for name, info in REGISTRY.items():
        params = [f"{p.name}={p.default_text()}" for p in info.params]
        if not info.own_warmup:
            params.append("warmup={epochs|steps: N}")
        rows.append((name, info.default_interval, f"{info.description}\n{', '.join(params)}"))
    console.table(
        "LR schedules (parameters with their defaults; 'run length' = fitted to the run)",
        ("name", "interval", "description / parameters"),
        rows,
        to_stdout=True,
    )
    console.info(
        "Lengths (step_size, milestones, T_max, ...) count in the spec's interval: epochs or "
        "steps. Any schedule with 'warmup' takes warmup: {epochs: N} or {steps: N}."
    )


def _load_spec(path: str) -> dict[str, Any]:
    """The schedule mapping of a schedule YAML, or of a run config's `schedule:` key."""
    from lrtune.config import load_yaml
    from lrtune.errors import ConfigError

    data = load_yaml(path)
    if "name" not in data and isinstance(data.get("schedule"), dict):
        data = data["schedule"]
    if "name" not in data:
        raise ConfigError(f"{path}: expected a schedule with a 'name' (or a 'schedule:' key)")
    return data


@schedule.command(name="show")
@click.argument("spec_file", metavar="SPEC.yaml")
@click.option(
    "--epochs",
    type=int,
    default=SHOW_EPOCHS,
    show_default=True,
    help="Epochs in the run the schedule is laid out over.",
)
@click.option(
    "--steps-per-epoch",
    type=int,
    default=SHOW_STEPS_PER_EPOCH,
    show_default=True,
    help="Optimizer steps per epoch.",
)
@click.option(
    "--lr", type=float, default=SHOW_LR, show_default=True, help="Base LR (the optimizer's lr)."
)
@click.option("--log-y", is_flag=True, help="Log-scale LR axis.")
@common_options
@handle_errors
def show(
    spec_file: str,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    log_y: bool,
    out: str | None,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    debug: bool,
) -> None:
    """Plot a schedule (PNG) and print its LR at each epoch; also writes the resolved YAML,
    the PyTorch snippet and the per-step CSV."""
    import json

    from lrtune.errors import ConfigError
    from lrtune.report.rundir import make_run_dir, save_figure
    from lrtune.report.schedule_plot import (
        draw_schedule,
        schedule_plot_data,
        write_schedule_files,
    )
    from lrtune.schedules import run_warnings

    console = make_console(quiet, verbose)
    spec = _load_spec(spec_file)
    try:
        data = schedule_plot_data(spec, lr, steps_per_epoch, epochs)
        warnings = run_warnings(spec, steps_per_epoch, epochs)
    except ConfigError as exc:
        raise ConfigError(f"{spec_file}: {exc}") from None
    run_dir = make_run_dir("schedule", out)
    files = write_schedule_files(run_dir, spec, lr, steps_per_epoch, epochs)
    if log_y:
        files["png"] = save_figure(draw_schedule(data, log_y=True), run_dir / "schedule.png")
    for line in warnings:
        console.warning(line)
    if data.note:
        console.info(f"note: {data.name} is {data.note}")
    if as_json:
        console.result(
            json.dumps(
                {
                    "name": data.name,
                    "interval": data.interval,
                    "lr": lr,
                    "epochs": epochs,
                    "steps_per_epoch": steps_per_epoch,
                    "epoch_lrs": [{"epoch": e, "step": s, "lr": v} for e, s, v in data.table],
                    "final_lr": data.lrs[-1],
                    "warnings": warnings,
                    "files": {k: str(v) for k, v in files.items()},
                },
                indent=2,
            )
        )
    else:
        step, peak = data.peak
        rows: list[tuple[int | str, int, str]] = [(e, s, f"{v:.4g}") for e, s, v in data.table]
        rows.append(("end", data.total_steps - 1, f"{data.lrs[-1]:.4g}"))
        console.table(
            f"{data.name}: LR at the first step of each epoch (peak {peak:.4g} at step {step})",
            ("epoch", "step", "lr"),
            rows,
            to_stdout=True,
        )
    names = ", ".join(path.name for path in files.values())
    console.info(f"wrote {names} in {run_dir}")
