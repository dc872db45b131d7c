"""`lrtune check CONFIG.yaml`: a seeded training run that passes or fails in CI."""

from __future__ import annotations

from typing import Any

import click

from lrtune.cli.options import common_options, handle_errors, make_console

EPILOG = """\b
Exit codes: 0 every criterion passed, 1 a criterion failed, 2 bad config or task file.
Criteria (under expect: in the YAML): no_divergence, final_train_loss_below,
loss_drop_at_least, val_loss_below, val_metric_at_least, val_metric_at_most,
max_epochs, max_steps, baseline (+ tolerance). See docs/ci.md.
"""


@click.command(epilog=EPILOG)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@click.option(
    "--summary",
    type=click.Path(dir_okay=False),
    help="Also write the markdown summary here ($GITHUB_STEP_SUMMARY is appended to when set).",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="Record this run as the config's baseline file instead of comparing against it.",
)
@click.option("--device", default=None, help="Override the config's device (cpu, cuda, ...).")
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@common_options
@handle_errors
def check(
    config: str,
    junit: str | None,
    summary: str | None,
    update_baseline: bool,
    device: str | None,
    seed: int | None,
    out: str | None,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    debug: bool,
) -> None:
    """Train CONFIG's task once, seeded, and judge it against the config's `expect:` criteria."""
    import datetime as dt
    import time

    from lrtune.check import (
        baseline_payload,
        evaluate,
        interrupted_report,
        load_baseline,
        parse_check_config,
        preflight,
        reference_loss,
        run_check,
        run_setup,
        steps_per_epoch,
    )
    from lrtune.errors import ConfigError
    from lrtune.report.check_report import setup_line, show, write_outputs
    from lrtune.report.rundir import make_run_dir, write_json
    from lrtune.runtime import resolve_device
    from lrtune.task import load_task
    from lrtune.training import resolve_lr

    console = make_console(quiet, verbose)
    ctx = click.get_current_context()
    cfg = parse_check_config(config)
    make_run_dir("check", out, create=False)  # refuse another command's --out before any work
    ref = cfg.expect.baseline
    if update_baseline and ref is None:
        raise ConfigError(f"{config}: --update-baseline needs 'baseline: FILE' under expect:")
    baseline = load_baseline(ref.path) if ref is not None and not update_baseline else None
    task = load_task(cfg.run.task)
    preflight(cfg, task)
    if cfg.run.lr == "auto":
        console.info("lr: auto -> running a range test first (use a fixed lr for fast, stable CI)")
    lr = resolve_lr(cfg.run, task)
    device = str(resolve_device(device or cfg.run.device))
    seed = cfg.run.seed if seed is None else seed
    setup = run_setup(cfg, lr, device, seed, steps_per_epoch(cfg, task), task)
    run_dir = make_run_dir("check", out)
    started = dt.datetime.now().isoformat(timespec="seconds")

    console.info(f"lrtune check {cfg.run.source}")
    console.info(f"  {setup_line(str(cfg.run.task), setup)}")
    epochs = cfg.run.epochs
    finished: list[Any] = []  # the epochs done, kept for a Ctrl-C report
    clock = time.perf_counter()
    try:
        with console.progress(f"check {cfg.name}", total=epochs) as sink:

            def on_epoch(record: Any) -> None:
                finished.append(record)
                line = epoch_line(record, epochs)
                if console.plain:  # CI logs: one line per epoch, not a progress bar
                    console.info(line)
                else:
                    sink(record.epoch, status=line)

            result = run_check(cfg, task, lr=lr, device=device, seed=seed, on_epoch=on_epoch)
    except KeyboardInterrupt:
        # result.json (marked interrupted) and the JUnit file (every criterion an error)
        # still get written: CI shows an incomplete check, not an empty directory.
        seconds = time.perf_counter() - clock
        stopped = interrupted_report(cfg, finished, setup=setup, seconds=seconds)
        write_outputs(stopped, run_dir, junit=junit, summary=summary, timestamp=started)
        show(console, stopped, as_json=as_json)
        console.error(f"interrupted: the epochs so far are in {run_dir}")
        ctx.exit(int(stopped.exit_code))

    reference = reference_loss(cfg, task, device)
    report = evaluate(cfg, result, setup=setup, baseline=baseline, reference=reference)
    paths = write_outputs(report, run_dir, junit=junit, summary=summary, timestamp=started)

    show(console, report, as_json=as_json)
    for line in report.warnings:
        console.warning(line)
    if update_baseline and ref is not None:
        if report.passed:
            write_json(ref.path, baseline_payload(report))
            console.info(f"baseline written: {ref.path}")
        else:
            console.warning(f"baseline not written, the run failed the check: {ref.path}")
    console.info(f"run dir: {run_dir}")
    for key in ("junit_copy", "summary_copy"):
        if key in paths:
            console.info(f"wrote {paths[key]}")
    ctx.exit(int(report.exit_code))


def epoch_line(r: Any, epochs: int) -> str:
    """One progress line per epoch (short: CI logs wrap at 80 columns)."""
    parts = [f"epoch {r.epoch}/{epochs}", f"train {r.train_loss:.4f}"]
    if r.val_loss is not None:
        parts.append(f"val {r.val_loss:.4f}")
    if r.val_metric is not None:
        parts.append(f"metric {r.val_metric:.4f}")
    parts.append(f"lr {r.lr:.3g}")
    parts.append(f"{r.seconds:.2f}s")
    return "  ".join(parts)
