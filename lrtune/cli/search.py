"""`lrtune search GRID.yaml`: grid or random search over decay schedules and the base LR."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from lrtune.cli.options import common_options, handle_errors, make_console


@click.command("search")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Trials in parallel processes (overrides search.workers).",
)
@click.option(
    "--refine",
    is_flag=True,
    help="Coarse pass with short epochs, then a longer pass around the best.",
)
@click.option(
    "--resume",
    "resume",
    type=click.Path(file_okay=False),
    default=None,
    help="Continue the search in this run directory (finished trials are kept).",
)
@click.option(
    "--storage",
    default=None,
    help="Database URL shared by workers on many machines (postgresql://, sqlite:///...).",
)
@click.option(
    "--max-trials",
    type=int,
    default=None,
    help="Run at most this many trials now; continue later with --resume.",
)
@click.option(
    "--device",
    default=None,
    help="auto | cpu | cuda | cuda:N | mps (overrides the config's device).",
)
@click.option(
    "--yes", "-y", is_flag=True, help="Run a search larger than the trial limit without asking."
)
@common_options
@handle_errors
def search(config: str | None, **o: Any) -> None:
    """Search the schedules (and LRs) in CONFIG.yaml; rank them, plot them, export the best.

    Writes trials.csv, curves.csv, learning_curves.png, schedules.png, heatmap.png (two
    searched parameters), best_schedule.yaml/.py, best_config.yaml, report.md and
    result.json into the run directory. Exit 1 when no trial succeeded.
    """
    from lrtune.errors import ConfigError, RunFailed
    from lrtune.report.rundir import make_run_dir, to_json, write_json, write_yaml
    from lrtune.report.search_report import show, started_body, write_search_outputs
    from lrtune.search import load_search_config
    from lrtune.search.report import SAVED_CONFIG
    from lrtune.search.runner import Search
    from lrtune.search.storage import journal_path, redact_url

    console = make_console(o["quiet"], o["verbose"])
    if o["max_trials"] is not None and o["max_trials"] < 1:
        raise ConfigError(f"--max-trials must be >= 1, got {o['max_trials']}")
    if o["resume"]:
        if config is not None:
            raise ConfigError("give either CONFIG or --resume RUN_DIR, not both")
        saved = Path(o["resume"]) / SAVED_CONFIG
        if not saved.exists():
            raise ConfigError(f"{o['resume']}: not a search run directory (no {SAVED_CONFIG})")
        cfg = load_search_config(saved, workers=o["workers"], refine=o["refine"], yes=True)
    else:
        if config is None:
            raise ConfigError("missing CONFIG.yaml (or --resume RUN_DIR)")
        cfg = load_search_config(config, workers=o["workers"], refine=o["refine"], yes=o["yes"])
        # Refuse a bad --out before any work: another command's run, or another search.
        out = make_run_dir("search", o["out"], create=False) if o["out"] else None
        if out is not None and o["storage"] is None and journal_path(out).exists():
            raise ConfigError(
                f"{out} already holds a search: continue it with --resume {out}, "
                "or choose another --out"
            )
    if o["device"]:
        cfg = replace(cfg, run=replace(cfg.run, device=o["device"]))
    search = Search(
        cfg,
        Path(o["resume"] or o["out"] or "."),
        storage=o["storage"],
        resume=bool(o["resume"]),
        max_trials=o["max_trials"],
    )
    search.prepare()  # every check that needs the task file, before the run dir exists
    if o["resume"]:
        run_dir = Path(o["resume"])
    else:
        run_dir = make_run_dir("search", o["out"])
        write_yaml(run_dir / SAVED_CONFIG, cfg.data)
        search.set_run_dir(run_dir)
    if not (run_dir / "result.json").exists():  # so a killed search can still be reported
        storage = redact_url(o["storage"]) if o["storage"] else None
        write_json(
            run_dir / "result.json",
            started_body(
                cfg, search.steps_per_epoch, storage, search.study_names(), search.optimizer
            ),
        )
    _announce(console, cfg, run_dir, bool(o["resume"]), search.optimizer)
    live = LiveTrials(console, cfg)
    search.emit = live
    try:
        with live:
            result = search.run()
    except KeyboardInterrupt:
        console.error(
            f"interrupted: continue with  lrtune search --resume {run_dir}  "
            f"(the trials so far:  lrtune report {run_dir})"
        )
        raise
    body = write_search_outputs(result, cfg, run_dir)
    show(console, result, cfg.settings.top_k, run_dir, as_json=o["as_json"])
    if o["as_json"]:
        console.result(to_json(body).rstrip())
    if result.n_complete == 0 and result.finished:
        counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
        raise RunFailed(f"no trial succeeded ({counts}): see {run_dir / 'trials.csv'}")


def _announce(console: Any, cfg: Any, run_dir: Path, resume: bool, optimizer: str) -> None:
    s = cfg.settings
    what = (
        f"grid of {cfg.n_points()} configurations"
        if s.method == "grid"
        else f"{cfg.n_points()} random configurations"
    )
    passes = (
        f"coarse pass of {s.refine.coarse_epochs} epochs, then a refine pass of {cfg.run.epochs}"
        if s.refine
        else f"{cfg.run.epochs} epochs each"
    )
    verb = "resuming" if resume else "search"
    console.info(
        f"{verb}: {what} x {len(s.seeds)} seed(s) = {cfg.n_trials()} trials, {passes}; "
        f"metric {s.metric} ({s.mode}), pruner {s.pruner}, {s.workers} worker(s); "
        f"optimizer {optimizer}"
    )
    console.info(f"run directory: {run_dir}")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _params(point: Any, names: list[str]) -> str:
    from lrtune.report.search_plots import point_label

    return point_label(point, names)


class LiveTrials:
    """The search's progress: a live rich table on a terminal, one line per trial otherwise."""

    MAX_ROWS = 14

    def __init__(self, console: Any, cfg: Any) -> None:
        self.console = console
        self.cfg = cfg
        self.names = list(cfg.space.names)
        self.metric = cfg.settings.metric
        self.rows: dict[tuple[str, int], dict[str, Any]] = {}
        self.pass_name = ""
        self.total = 0
        self.done = 0
        self.best: float | None = None
        self.live: Any = None
        self.start = time.monotonic()

    # -- context -------------------------------------------------------------------------
    def __enter__(self) -> LiveTrials:
        if not self.console.quiet and not self.console.plain:
            from rich.live import Live

            self.live = Live(
                self._table(), console=self.console.err, refresh_per_second=4, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)
            self.live = None

    # -- events --------------------------------------------------------------------------
    def __call__(self, e: Any) -> None:
        if e.kind == "lr_auto":
            self.console.info(f"lr: auto -> {e.value:.4g} (LR range test)")
            return
        if e.kind == "pass_start":
            self.pass_name, self.total, self.done = e.pass_name, e.total or 0, e.done or 0
            if self.pass_name != "main":
                self.console.info(f"{self.pass_name} pass: {self.total} trials, {e.epochs} epochs")
            if e.note:
                self.console.info(f"{self.pass_name} pass: {e.note}")
        elif e.kind == "trial_start":
            self.rows[(e.pass_name, e.number)] = {
                "number": e.number,
                "params": _params(e.point or {}, self.names),
                "seed": e.seed,
                "state": "running",
                "epoch": f"0/{e.epochs}",
                "value": None,
                "seconds": None,
                "started": time.monotonic(),
            }
        elif e.kind == "epoch":
            row = self.rows.get((e.pass_name, e.number))
            if row is not None:
                row["epoch"] = f"{e.epoch}/{e.epochs}"
                row["value"] = e.value
        elif e.kind == "trial_end":
            self.done += 1
            row = self.rows.setdefault((e.pass_name, e.number), {"number": e.number})
            row.update(
                state=e.status,
                epoch=f"{e.epoch}/{e.epochs}",
                value=e.value,
                seconds=e.seconds,
                error=e.error,
                params=_params(e.point or {}, self.names),
                seed=e.seed,
            )
            if e.status == "complete" and e.value is not None:
                better = self.best is None or (
                    e.value < self.best if self.cfg.settings.mode == "min" else e.value > self.best
                )
                if better:
                    self.best = e.value
            if self.live is None:
                self._plain_line(row)
        if self.live is not None:
            self.live.update(self._table())

    def _plain_line(self, row: dict[str, Any]) -> None:
        err = f"  {row['error']}" if row.get("error") and row["state"] != "pruned" else ""
        self.console.info(
            f"[{self.done}/{self.total}] #{row['number']} {row['state']:<8} "
            f"{self.metric} {_fmt(row['value'])}  epochs {row['epoch']}  "
            f"{_fmt(row['seconds'])}s  {row['params']}, seed {row['seed']}{err}"
        )

    def _table(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.start
        title = (
            f"{self.pass_name or 'search'}: {self.done}/{self.total} trials done, "
            f"best {self.metric} {_fmt(self.best)}, {elapsed:.0f} s"
        )
        table = Table(title=title, title_justify="left")
        for col in ("trial", "parameters", "seed", "state", "epoch", self.metric, "time"):
            table.add_column(col)
        rows = [r for (p, _), r in self.rows.items() if p == self.pass_name]
        running = [r for r in rows if r["state"] == "running"]
        finished = [r for r in rows if r["state"] != "running"]
        shown = finished[-max(1, self.MAX_ROWS - len(running)) :] + running
        styles = {"complete": "green", "pruned": "dim", "failed": "red", "diverged": "red"}
        for r in shown:
            secs = r["seconds"] if r["seconds"] is not None else time.monotonic() - r["started"]
            table.add_row(
                str(r["number"]),
                r["params"],
                str(r["seed"]),
                r["state"],
                r["epoch"],
                _fmt(r["value"]),
                f"{secs:.1f}s",
                style=styles.get(r["state"], "bold"),
            )
        return table
