"""`lrtune find TASK.py`: the LR range test, its plot, data, suggestions and a schedule."""

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


@click.command("find")
@click.argument("task", type=click.Path(dir_okay=False))
@click.option("--start-lr", type=float, default=1e-7, show_default=True, help="First LR of the ramp.")
@click.option("--end-lr", type=float, default=10.0, show_default=True, help="Last LR of the ramp.")
@click.option("--steps", type=int, default=100, show_default=True, help="Optimizer steps in the ramp.")
@click.option("--mode", type=click.Choice(["exp", "linear"]), default="exp", show_default=True, help="LR ramp shape.")
@click.option("--smooth", type=float, default=0.05, show_default=True, help="EMA weight of each new loss (0 = none).")
@click.option("--diverge", type=float, default=4.0, show_default=True, help="Stop when the smoothed loss passes this x its best.")
@click.option("--repeats", type=int, default=1, show_default=True, help="Range tests with different seeds: median curve, band, spread.")
@click.option("--suggest", "rule", default=None, help="Headline rule (valley, steepest, minimum, slide, ...). [default: the benchmark's best]")
@click.option("--optimizer", default="sgd", show_default=True, help="Optimizer when the task defines none: sgd (momentum 0.9), adam, adamw, ...")
@click.option("--weight-decay", type=float, default=None, help="Optimizer weight decay.")
@click.option("--batch-size", type=int, default=None, help="Batch size when train_data() returns a Dataset.")
@click.option("--accumulate", type=int, default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--amp", type=click.Choice(["bf16", "fp16"]), default=None, help="Mixed precision (fp16 with a GradScaler).")
@click.option("--val-every", type=int, default=None, help="Evaluate val loss every K steps; rules read it.")
@click.option("--val-batches", type=int, default=5, show_default=True, help="Val batches per evaluation.")
@click.option("--schedule", "schedule_name", default=None, help="Schedule to recommend. [default: onecycle for SGD, cosine+warmup for Adam]")
@click.option("--epochs", type=int, default=10, show_default=True, help="Epochs the recommended schedule spans.")
@device_option
@seed_option
@common_options
@handle_errors
def find(task: str, **o: Any) -> None:
    """LR range test on TASK.py: ramp the LR, watch the loss, suggest a learning rate.

    Writes lr_find.png, lr_find.csv, result.json and schedule.yaml/.py/.png into the run
    directory. The model is left bit-identical afterwards.
    """
    from lrtune.report.find_outputs import write_find_outputs
    from lrtune.report.rundir import make_run_dir, to_json
    from lrtune.suggest import HEADLINE_RULE
    from lrtune.rangetest import find_lr
    from lrtune.task import load_task

    console = make_console(o["quiet"], o["verbose"])
    t = load_task(task)
    params = {} if o["weight_decay"] is None else {"weight_decay": o["weight_decay"]}
    console.info(f"range test on {t.path}: lr {o['start_lr']:g} -> {o['end_lr']:g} over {o['steps']} steps")
    with console.progress("range test", o["steps"] * o["repeats"]) as bar:
        result = find_lr(
            t, start_lr=o["start_lr"], end_lr=o["end_lr"], steps=o["steps"], mode=o["mode"],
            smooth=o["smooth"], diverge=o["diverge"], accumulate=o["accumulate"], clip=o["clip"],
            amp=o["amp"], val_every=o["val_every"], val_batches=o["val_batches"],
            optimizer=o["optimizer"], optimizer_params=params, batch_size=o["batch_size"],
            device=o["device"], seed=o["seed"], repeats=o["repeats"],
            rule=o["rule"] or HEADLINE_RULE, progress=bar,
        )
    run_dir = make_run_dir("find", o["out"])
    schedule = None
    if result.lr is not None:
        from lrtune.schedules import recommend, write_schedule_files

        steps_per_epoch = max(1, (result.info.get("steps_per_epoch") or 1) // o["accumulate"])
        spec = recommend(result.lr, result.info["optimizer_family"], o["epochs"], steps_per_epoch, name=o["schedule_name"])
        schedule = {"spec": spec, "epochs": o["epochs"], "steps_per_epoch": steps_per_epoch,
                    "files": write_schedule_files(run_dir, spec, result.lr, steps_per_epoch, o["epochs"])}
    files = write_find_outputs(run_dir, result, schedule)
    for w in result.warnings:
        console.warning(w)
    render_summary(console, result, run_dir, files)
    if o["as_json"]:
        console.result(to_json(__import__("json").loads(open(files["result"]).read())).rstrip())
    interrupted = any(c.stop_reason == "interrupted" for c in result.curves)
    raise SystemExit(130 if interrupted else 0)


def render_summary(console: Any, result: Any, run_dir: Any, files: dict[str, str]) -> None:
    """The table of suggestions and the one-line answer."""
    rows = []
    for rule, lr in result.suggestions.items():
        spread = result.spread(rule)
        mark = "<- suggested" if rule == result.rule else ""
        rows.append((rule, f"{lr:.2e}" if lr else "-", f"{spread:.2f}x" if spread else "-", mark))
    console.table("Suggested learning rates", ("rule", "lr", "spread over runs", ""), rows)
    c0 = result.curves[0]
    stop = {"end": "reached --end-lr", "diverged": f"diverged at lr {c0.diverged_lr:.2e}" if c0.diverged_lr else "diverged",
            "nan": "loss became NaN", "interrupted": "interrupted"}[c0.stop_reason]
    console.info(f"{c0.steps_run} steps in {result.seconds:.1f}s, {stop}; weights restored: {'yes' if result.identical else 'NO'}")
    console.info(f"wrote {run_dir}/ (lr_find.png, lr_find.csv, result.json" + (", schedule.yaml/.py/.png)" if "schedule_yaml" in files or any("schedule" in k for k in files) else ")"))
    if result.lr is not None:
        console.result(f"suggested lr: {result.lr:.3g} ({result.rule}, confidence {result.confidence})")
    else:
        console.result("no suggestion: see the warnings above and lr_find.png")
