"""Files of a search run: trials.csv, curves.csv, best_schedule.yaml/.py, best_config.yaml,
report.md and result.json (the plots live in lrtune.report.search_plots), and the ranked
table on the terminal (`show`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrtune.report.rundir import write_csv, write_json, write_text
from lrtune.report.search_plots import (
    METRIC_LABELS,
    fmt_value,
    point_label,
    write_search_plots,
)
from lrtune.search.results import ConfigSummary, SearchResult, tie_break_name

# best_config.yaml's expect: threshold is this much looser than the worst seed.
EXPECT_SLACK = 0.2
CURVE_COLUMNS = ("epoch", "step", "lr", "train_loss", "val_loss", "val_metric", "seconds")


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple, Mapping)):
        return fmt_value(v)
    return "" if v is None else v


def _num(v: float | None, fmt: str = ".4g") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)


def trials_table(result: SearchResult) -> tuple[list[str], list[list[Any]]]:
    """trials.csv: one row per trial (parameters, seed, state, metrics, epochs, time)."""
    m = result.metric
    # The searched metric has its own best/final columns; the other curves' final values follow.
    others = [c for c in ("train_loss", "val_loss", "val_metric") if c != m]
    header = [
        "pass",
        "trial",
        "config",
        "rank",
        *result.names,
        "seed",
        "state",
        "objective",
        f"best_{m}",
        f"final_{m}",
        *[f"final_{c}" for c in others],
        "epochs_run",
        "epochs",
        "seconds",
        "lr",
        "schedule",
        "diagnosis",
        "error",
    ]
    rank = {(c.pass_name, c.config): c.rank for cs in result.ranking.values() for c in cs}
    rows = []
    for t in result.trials:
        last: Mapping[str, Any] = t.curve[-1] if t.curve else {}
        rows.append(
            [
                t.pass_name,
                t.number,
                t.config,
                rank.get((t.pass_name, t.config)) or "",
                *[fmt_value(t.point.get(n)) for n in result.names],
                t.seed,
                t.status,
                _cell(t.value),
                _cell(t.best),
                _cell(t.final),
                *[_cell(last.get(c)) for c in others],
                t.epochs_run,
                t.epochs_planned,
                f"{t.seconds:.2f}",
                _cell(t.lr),
                json.dumps(dict(t.schedule), sort_keys=False) if t.schedule else "",
                ";".join(t.diagnosis),
                t.error or "",
            ]
        )
    return header, rows


def curves_table(result: SearchResult) -> tuple[list[str], list[list[Any]]]:
    """curves.csv: one row per (trial, epoch)."""
    header = ["pass", "trial", "config", "seed", *CURVE_COLUMNS]
    rows = [
        [t.pass_name, t.number, t.config, t.seed, *[_cell(r.get(c)) for c in CURVE_COLUMNS]]
        for t in result.trials
        for r in t.curve
    ]
    return header, rows


def best_export(result: SearchResult) -> dict[str, Any] | None:
    """The best configuration as plain data: lr, schedule, score and its seeds' spread."""
    best = result.best
    if best is None:
        return None
    return {
        "pass": best.pass_name,
        "config": best.config,
        "params": dict(best.point),
        "lr": best.lr,
        "schedule": dict(best.schedule),
        "metric": result.metric,
        "objective": result.objective,
        "mean": best.mean,
        "std": best.std,
        "values": best.values,
        "seeds": [t.seed for t in best.trials],
    }


def summary(result: SearchResult, cfg: Any, files: Sequence[str]) -> dict[str, Any]:
    """result.json's body."""
    top = [
        {
            "rank": c.rank,
            "pass": c.pass_name,
            "config": c.config,
            "params": dict(c.point),
            "mean": c.mean,
            "std": c.std,
            "values": c.values,
            "tie_break": c.secondary,
            "tied_from": c.tied_from,
        }
        for c in result.top(cfg.settings.top_k)
    ]
    return {
        "command": "search",
        "config": str(cfg.run.source),
        "task": str(cfg.run.task),
        "method": cfg.settings.method,
        "metric": result.metric,
        "mode": result.mode,
        "objective": result.objective,
        "tie_break": tie_break_name(result.metric, result.objective),
        "pruner": cfg.settings.pruner,
        "seeds": list(cfg.settings.seeds),
        "workers": cfg.settings.workers,
        "optimizer": result.optimizer,
        "passes": [
            {
                "name": p,
                "epochs": result.epochs[p],
                "space": result.spaces.get(p, {}),
                "counts": result.counts(p),
            }
            for p in result.passes
        ],
        "searched": result.names,
        "steps_per_epoch": result.steps_per_epoch,
        "storage": result.storage,
        "studies": result.studies,
        "lr_auto": result.lr_auto,
        "finished": result.finished,
        "trials": len(result.trials),
        "counts": result.counts(),
        "ran_now": result.ran_now,
        "seconds": result.seconds,
        **result.epochs_saved(),
        "best": best_export(result),
        "top": top,
        "files": list(files),
    }


def started_body(
    cfg: Any,
    steps_per_epoch: int,
    storage: str | None,
    studies: Any,
    optimizer: str | None = None,
) -> dict:
    """result.json while a search runs: enough for `lrtune report` to rebuild every output
    from the storage if the search is killed before it writes the full result.json."""
    return {
        "command": "search",
        "config": str(cfg.run.source),
        "task": str(cfg.run.task),
        "method": cfg.settings.method,
        "metric": cfg.settings.metric,
        "mode": cfg.settings.mode,
        "workers": cfg.settings.workers,
        "optimizer": optimizer or cfg.run.optimizer.name,
        "steps_per_epoch": steps_per_epoch,
        "storage": storage,
        "studies": studies,
        "finished": False,
        "ran_now": 0,
        "seconds": 0.0,
        "files": [],
    }


def _seed_spread(c: ConfigSummary) -> str:
    if c.std is None or c.mean is None:
        return ""
    vals = c.values
    return f"{_num(c.std)} (range {_num(min(vals))} .. {_num(max(vals))})"


def tie_notes(result: SearchResult, k: int, pass_name: str | None = None) -> list[str]:
    """One line per group of configurations tied on the mean objective that reaches into a
    pass's top k (the whole group: a best tied with the runner-up is news).

    'ranks 1-3 tie on mean validation metric 0.9889; ordered by mean final val_loss,
    lower first: 0.0412, 0.0533, 0.0601'.
    """
    groups: dict[int, list[ConfigSummary]] = {}
    for c in result.ranking.get(pass_name or result.final_pass, []):
        if c.tied_from is not None and c.tied_from <= k:
            groups.setdefault(c.tied_from, []).append(c)
    what = METRIC_LABELS.get(result.metric, result.metric)
    breaker = tie_break_name(result.metric, result.objective)
    notes = []
    for g in (g for g in groups.values() if len(g) > 1):
        values = ", ".join(_num(c.secondary) for c in g)
        note = (
            f"ranks {g[0].rank}-{g[-1].rank} tie on mean {what} {_num(g[0].mean)}; "
            f"ordered by mean {breaker}, lower first: {values}"
        )
        if len({c.secondary for c in g}) < len(g):
            note += " (equal ones in configuration order)"
        notes.append(note)
    return notes


def ranking_markdown(result: SearchResult, pass_name: str, k: int) -> list[str]:
    """The ranked table of one pass, as markdown lines."""
    configs = result.ranking.get(pass_name, [])
    shown = [c for c in configs if c.rank is not None][:k]
    unranked = [c for c in configs if c.rank is None]
    what = METRIC_LABELS.get(result.metric, result.metric)
    lines = [
        f"| rank | {' | '.join(result.names) or 'config'} | mean {what} | std over seeds "
        "| seeds done | per seed | trials |",
        "|---:|" + "---|" * max(1, len(result.names)) + "---:|---:|---:|---|---|",
    ]
    for c in shown:
        params = " | ".join(fmt_value(c.point.get(n)) for n in result.names) or "(fixed)"
        per_seed = ", ".join(f"{t.seed}: {_num(t.value)}" for t in c.trials)
        states = ", ".join(f"{n} {s}" for s, n in c.statuses.items())
        lines.append(
            f"| {c.rank} | {params} | {_num(c.mean)} | {_num(c.std)} | {c.seeds_text} "
            f"| {per_seed} | {states} |"
        )
    notes = tie_notes(result, k, pass_name)
    if notes:
        lines.append("")
        lines += [f"Tie: {note}." for note in notes]
    if unranked:
        lines.append("")
        lines.append(f"Not ranked ({len(unranked)} configurations with no completed seed):")
        lines.append("")
        for c in unranked[:20]:
            states = ", ".join(f"{n} {s}" for s, n in c.statuses.items())
            lines.append(f"- {point_label(c.point, result.names)}: {states}")
    return lines


def report_markdown(result: SearchResult, cfg: Any, images: Sequence[str]) -> str:
    """report.md: what was searched, the ranked table, the plots, the best config."""
    s = cfg.settings
    what = METRIC_LABELS.get(result.metric, result.metric)
    counts = result.counts()
    saved = result.epochs_saved()
    out = [
        f"# lrtune search: {Path(str(cfg.run.task)).name}",
        "",
        f"- config: `{cfg.run.source}`",
        f"- method: {s.method}, metric: {result.metric} ({s.mode}, {result.objective} epoch), "
        f"pruner: {s.pruner}, seeds: {list(s.seeds)}, workers: {s.workers}",
        f"- optimizer: {result.optimizer}, batch size: {cfg.run.batch_size or 'task default'}",
    ]
    if result.lr_auto is not None:
        out.append(f"- lr: auto -> {result.lr_auto:.4g} (LR range test)")
    for p in result.passes:
        space = ", ".join(f"{k} in {v}" for k, v in result.spaces.get(p, {}).items())
        out.append(f"- pass `{p}`: {result.epochs[p]} epochs; {space or 'nothing searched'}")
    out += [
        f"- trials: {len(result.trials)} ("
        + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        + f"); training time {sum(t.seconds for t in result.trials):.1f} s in all"
        + (f", wall time of this invocation {result.seconds:.1f} s" if result.seconds else ""),
        f"- epochs run: {saved['epochs_run']} of {saved['epochs_full']} "
        f"(pruning saved {saved['epochs_saved_by_pruning']})",
    ]
    for p in result.passes:
        if result.pruning.get(p):
            out.append(f"- pass `{p}`: {result.pruning[p]}")
    if not result.finished:
        out.append(f"- **unfinished**: continue with `lrtune search --resume {result.run_dir}`")
    best = result.best
    out += ["", "## Best configuration", ""]
    if best is None:
        out.append("No configuration completed on every seed.")
    else:
        spread = _seed_spread(best)
        out += [
            f"{point_label(best.point, result.names)}: mean {what} **{_num(best.mean)}**"
            + (f", std over {len(best.values)} seeds {spread}" if spread else ""),
            "",
            f"Base LR {_num(best.lr)} with the schedule below "
            "(`best_schedule.yaml`, `best_schedule.py`, `best_config.yaml`):",
            "",
            "```yaml",
            _yaml({"lr": best.lr, "schedule": dict(best.schedule)}).rstrip(),
            "```",
        ]
    for p in reversed(result.passes):
        title = "Ranking" if p == result.final_pass else f"Ranking of the {p} pass"
        out += ["", f"## {title} ({result.epochs[p]} epochs)", ""]
        out += ranking_markdown(result, p, s.top_k if p == result.final_pass else 10)
    if images:
        out += ["", "## Plots", ""]
        out += [f"![{Path(i).stem}]({Path(i).name})" for i in images]
    bad = [t for t in result.trials if t.status in ("failed", "diverged")]
    if bad:
        out += ["", "## Failed and diverged trials", ""]
        for t in bad[:30]:
            out.append(
                f"- trial {t.number} ({point_label(t.point, result.names)}, seed {t.seed}): "
                f"{t.status}: {t.error or ''}"
            )
    diag: dict[str, int] = {}
    for t in result.trials:
        for code in t.diagnosis:
            diag[code] = diag.get(code, 0) + 1
    if diag:
        out += ["", "## Diagnosis of the learning curves", ""]
        out += [f"- {code}: {n} trials" for code, n in sorted(diag.items(), key=lambda x: -x[1])]
    return "\n".join(out) + "\n"


def _yaml(obj: Any, flow: bool | None = None) -> str:
    import yaml

    from lrtune.report.rundir import _jsonable

    return str(yaml.safe_dump(_jsonable(obj), sort_keys=False, default_flow_style=flow))


def write_best(result: SearchResult, cfg: Any, run_dir: Path) -> list[Path]:
    """best_schedule.yaml, best_schedule.py and best_config.yaml (nothing when no best)."""
    from lrtune import schedules

    best = result.best
    if best is None or best.lr is None:
        return []
    epochs = result.epochs[best.pass_name]
    spe = result.steps_per_epoch
    spread = f" +- {_num(best.std)}" if best.std is not None else ""
    header = (
        f"# Best schedule from lrtune search ({cfg.run.source}): "
        f"{point_label(best.point, result.names)}\n"
        f"# base lr {best.lr:.6g} ({result.optimizer}), {epochs} epochs; "
        f"{result.metric} {_num(best.mean)}{spread} over {len(best.values)} seed(s)\n"
    )
    written = [
        write_text(run_dir / "best_schedule.yaml", header + schedules.to_yaml(best.schedule))
    ]
    snippet = schedules.to_python(best.schedule, best.lr, spe, epochs)
    written.append(
        write_text(
            run_dir / "best_schedule.py",
            f"# Best schedule from lrtune search ({cfg.run.source}): "
            f"{point_label(best.point, result.names)}\n"
            f"# Create the optimizer with lr={best.lr:.6g}, then:\n" + snippet.rstrip() + "\n",
        )
    )
    config = {k: v for k, v in cfg.data.items() if k not in ("search", "lr", "schedule", "epochs")}
    done = [t for t in best.trials if t.status == "complete"]
    config.update(
        {
            "epochs": epochs,
            "lr": float(best.lr),
            "schedule": dict(best.schedule),
            "seed": int((done or list(best.trials))[0].seed),
            "expect": check_expect(result, best),
        }
    )
    written.append(
        write_text(
            run_dir / "best_config.yaml",
            f"# The best configuration of lrtune search ({cfg.run.source}), as a config for\n"
            "#   lrtune check best_config.yaml\n"
            f"# Its expect: threshold is {EXPECT_SLACK:.0%} looser than the worst seed of the "
            "search: tighten it to taste.\n" + _yaml(config, flow=False),
        )
    )
    return written


def check_expect(result: SearchResult, best: ConfigSummary) -> dict[str, Any]:
    """An `expect:` block for lrtune check: no divergence, and the search metric within
    EXPECT_SLACK of the worst completed seed of the best configuration."""
    expect: dict[str, Any] = {"no_divergence": True}
    values = best.values
    key = {
        ("val_loss", "min"): "val_loss_below",
        ("train_loss", "min"): "final_train_loss_below",
        ("val_metric", "max"): "val_metric_at_least",
        ("val_metric", "min"): "val_metric_at_most",
    }.get((result.metric, result.mode))
    if not values or key is None:
        return expect
    worst = max(values) if result.mode == "min" else min(values)
    loosen = 1 + EXPECT_SLACK if key.endswith(("below", "most")) else 1 - EXPECT_SLACK
    expect[key] = float(f"{worst * loosen:.3g}")
    return expect


def write_search_outputs(result: SearchResult, cfg: Any, run_dir: Path) -> dict[str, Any]:
    """Write every output file; returns result.json's body."""
    run_dir = Path(run_dir)
    files: list[Path] = []
    header, rows = trials_table(result)
    files.append(write_csv(run_dir / "trials.csv", header, rows))
    header, rows = curves_table(result)
    files.append(write_csv(run_dir / "curves.csv", header, rows))
    images = write_search_plots(result, run_dir, cfg.settings.top_k)
    files += images
    files += write_best(result, cfg, run_dir)
    files.append(
        write_text(run_dir / "report.md", report_markdown(result, cfg, [str(i) for i in images]))
    )
    names = [p.name for p in files] + ["result.json"]
    body = summary(result, cfg, names)
    write_json(run_dir / "result.json", body)
    return body


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def show(
    console: Any, result: SearchResult, top_k: int, run_dir: Path, as_json: bool = False
) -> None:
    """The ranked top-k table and the counts on stderr, then the answer lines on stdout
    (stderr too with --json, so that stdout holds only the JSON)."""
    answer = console.info if as_json else console.result
    names = list(result.names)
    top = result.top(top_k)
    if top:
        rows = []
        for c in top:
            spread = f" ± {c.std:.3g}" if c.std is not None else ""
            rows.append(
                (
                    c.rank,
                    *[fmt_value(c.point.get(n)) for n in names],
                    f"{c.mean:.4g}{spread}",
                    c.seeds_text,
                    ", ".join(_fmt(v) for v in c.values),
                )
            )
        console.table(
            f"Top {len(top)} of {len(result.ranking.get(result.final_pass, []))} configurations "
            f"({result.final_pass} pass, {result.epochs[result.final_pass]} epochs)",
            ("rank", *names, f"mean {result.metric}", "seeds", "per seed"),
            rows,
        )
        for note in tie_notes(result, top_k):
            console.info(f"tie: {note}")
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items() if n)
    saved = result.epochs_saved()
    took = f" in {result.seconds:.1f} s" if result.seconds else ""  # unknown: killed
    console.info(
        f"{len(result.trials)} trials ({counts}){took}; epochs run "
        f"{saved['epochs_run']} of {saved['epochs_full']} (pruning saved "
        f"{saved['epochs_saved_by_pruning']})"
    )
    if not result.finished:
        stopped = f"stopped after {result.ran_now} trials" if result.ran_now else "unfinished"
        console.warning(f"{stopped}: continue with  lrtune search --resume {run_dir}")
    best = result.best
    if best is not None:
        spread = f" ± {best.std:.3g}" if best.std is not None else ""
        answer(
            f"best: {point_label(best.point, names)} ({result.metric} {_num(best.mean)}{spread}); "
            f"lr {_num(best.lr)}, schedule {run_dir / 'best_schedule.yaml'}"
        )
    answer(f"results: {run_dir}")
