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
@click.option(
    "--start-lr", type=float, default=1e-7, show_default=True, help="First LR of the ramp."
)
@click.option("--end-lr", type=float, default=10.0, show_default=True, help="Last LR of the ramp.")
@click.option(
    "--steps", type=int, default=100, show_default=True, help="Optimizer steps in the ramp."
)
@click.option(
    "--mode",
    type=click.Choice(["exp", "linear"]),
    default="exp",
    show_default=True,
    help="LR ramp shape.",
)
@click.option(
    "--smooth",
    type=float,
    default=0.05,
    show_default=True,
    help="EMA weight of each new loss (0 = none).",
)
@click.option(
    "--diverge",
    type=float,
    default=4.0,
    show_default=True,
    help="Stop when the smoothed loss passes this x its best.",
)
@click.option(
    "--repeats",
    default="auto",
    show_default=True,
    help="Range tests, each with its own seed (init and data order): 'auto' runs 3 and adds "
    "more while their suggestions disagree; a number runs exactly that many.",
)
@click.option(
    "--max-repeats",
    type=int,
    default=20,
    show_default=True,
    help="Most range tests --repeats auto may run.",
)
@click.option(
    "--suggest",
    "rule",
    default=None,
    help="Headline rule: consensus, valley, steepest, minimum, slide, edge. [default: consensus]",
)
@click.option(
    "--optimizer",
    default="sgd",
    show_default=True,
    help="Optimizer when the task defines none: sgd (momentum 0.9), adam, adamw, ...",
)
@click.option("--weight-decay", type=float, default=None, help="Optimizer weight decay.")
@click.option(
    "--batch-size", type=int, default=None, help="Batch size when train_data() returns a Dataset."
)
@click.option(
    "--accumulate", type=int, default=1, show_default=True, help="Micro-batches per optimizer step."
)
@click.option("--clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option(
    "--amp",
    type=click.Choice(["bf16", "fp16"]),
    default=None,
    help="Mixed precision (fp16 with a GradScaler).",
)
@click.option(
    "--val-every", type=int, default=None, help="Evaluate val loss every K steps; rules read it."
)
@click.option(
    "--val-batches", type=int, default=5, show_default=True, help="Val batches per evaluation."
)
@click.option(
    "--schedule",
    "schedule_name",
    default=None,
    help="Schedule to recommend. [default: onecycle for SGD, cosine+warmup for Adam]",
)
@click.option(
    "--epochs",
    type=int,
    default=10,
    show_default=True,
    help="Epochs the recommended schedule spans.",
)
@click.option(
    "--for",
    "target",
    type=click.Choice(["onecycle", "constant", "step", "cosine"]),
    default=None,
    help="Give the LRs this schedule family needs (onecycle: max_lr and base).",
)
@click.option(
    "--wd",
    "wd_values",
    default=None,
    help="Weight-decay range test: comma-separated values, e.g. 0,1e-5,1e-4,1e-3.",
)
@click.option(
    "--momentum",
    "momentum_values",
    default=None,
    help="Momentum range test: comma-separated values, e.g. 0.85,0.9,0.95,0.99.",
)
@device_option
@seed_option
@common_options
@handle_errors
def find(task: str, **o: Any) -> None:
    """LR range test on TASK.py: ramp the LR, watch the loss, suggest a learning rate.

    Writes lr_find.png, lr_find.csv, result.json and schedule.yaml/.py/.png into the run
    directory. The model is left bit-identical afterwards.
    """
    from lrtune.findrun import FindOptions, run_find
    from lrtune.report.find_outputs import write_find_outputs
    from lrtune.report.rundir import make_run_dir, to_json
    from lrtune.task import load_task

    console = make_console(o["quiet"], o["verbose"])
    opts = FindOptions.from_cli(o)
    t = load_task(task)
    make_run_dir("find", o["out"], create=False)  # refuse a bad --out before the work
    if t.has_custom_optimizer and opts.optimizer != FindOptions.optimizer:
        console.warning(f"--optimizer {opts.optimizer} is ignored: {t.path} defines optimizer()")
    console.info(
        f"range test on {t.path}: lr {opts.start_lr:g} -> {opts.end_lr:g} over {opts.steps} steps"
    )
    with console.progress("range test", opts.total_steps) as bar:
        outcome = run_find(t, opts, progress=bar)
    run_dir = make_run_dir("find", o["out"])
    body = write_find_outputs(run_dir, outcome)
    for w in outcome.result.warnings:
        console.warning(w)
    # With --json, stdout holds only the JSON; the answer line goes to stderr.
    answer = render_summary(console, outcome, run_dir)
    if o["as_json"]:
        console.info(answer)
        console.result(to_json(body).rstrip())
    else:
        console.result(answer)
    raise SystemExit(130 if outcome.interrupted else 0)


def render_summary(console: Any, outcome: Any, run_dir: Any) -> str:
    """Print the tables of suggestions (and sweep); return the one-line answer."""
    result = outcome.result
    if outcome.sweep is not None:
        sw = outcome.sweep
        rows = [
            (
                f"{r[sw.param]:g}",
                _lr(r["min_loss"], ".4g"),
                _lr(r["lr_at_min"]),
                _lr(r["suggested_lr"]),
                "<- recommended" if r[sw.param] == sw.best else "",
            )
            for r in sw.table()
        ]
        console.table(
            f"Range test per {sw.param.replace('_', ' ')}",
            (sw.param, "min loss", "lr at min", "suggested lr", ""),
            rows,
        )
    rule_rows: list[tuple[str, ...]] = []
    for rule, lr in result.suggestions.items():
        rule_rows.append(
            (
                rule,
                _lr(lr),
                result.interval_text(rule) or "-",
                _ratio(result.spread(rule)),
                "<- suggested" if rule == result.rule else "",
            )
        )
    n, low = len(result.curves), outcome.options.min_repeats
    why = f"; the first {low} disagreed, so auto added {n - low}" if n > low else ""
    console.table(
        f"Suggested learning rates ({n} range tests{why})",
        ("rule", "lr", "95% interval", "max/min", ""),
        rule_rows,
    )
    c0 = result.curves[0]
    stops = {
        "end": "reached --end-lr",
        "diverged": "diverged",
        "nan": "loss became NaN",
        "interrupted": "interrupted",
    }
    stop = stops[c0.stop_reason] + (f" at lr {c0.diverged_lr:.2e}" if c0.diverged_lr else "")
    console.info(
        f"{sum(c.steps_run for c in result.curves)} steps in {result.seconds:.1f}s, {stop}; "
        f"weights restored bit for bit: {'yes' if result.identical else 'NO'}"
    )
    console.info(
        f"wrote {run_dir}/: "
        + ", ".join(sorted(p.rsplit("/", 1)[-1] for p in outcome.files.values()))
    )
    if result.lr is None:
        return "no suggestion: see the warnings and lr_find.png"
    interval = result.interval_text()
    within = f"; 95% interval {interval} over {len(result.curves)} runs" if interval else ""
    line = f"suggested lr: {result.lr:.3g} ({result.rule}{within}; confidence {result.confidence})"
    p = outcome.plan
    if p is not None and p.target == "onecycle":
        line += f"; onecycle max_lr {p.high:.3g}, starting at {p.low:.3g}"
    elif p is not None and p.target != "constant":
        line += f"; {p.target} from lr {p.lr:.3g}"
    if outcome.sweep is not None and outcome.sweep.best is not None:
        line += f"; {outcome.sweep.param.replace('_', ' ')} {outcome.sweep.best:g}"
    return line


def _lr(x: Any, fmt: str = ".2e") -> str:
    return "-" if x is None else format(x, fmt)


def _ratio(x: float | None) -> str:
    """A max/min ratio: 1.2x, 19.6x, 84,975x."""
    return "-" if not x else f"{x:.1f}x" if x < 100 else f"{x:,.0f}x"
