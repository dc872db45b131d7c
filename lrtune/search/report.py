"""`lrtune report RUN_DIR` on a search run: rebuild its SearchResult and write every output
again, training nothing.

The Optuna storage is the source of truth (the run directory's `study.journal`, or the
`--storage` database that result.json names): it holds every trial's point, seed, state,
learning curve and initial loss, so the result rebuilt from it is the one `lrtune search`
built, for a search that finished and for one that was stopped, interrupted or killed
midway. trials.csv and curves.csv are outputs, rewritten from it. search.yaml gives the
config and result.json the rest (steps per epoch, the study names, the last invocation's
wall time). Every stored curve is diagnosed again with the current lrtune.diagnose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lrtune.errors import ConfigError
from lrtune.search.config import SearchConfig, load_search_config
from lrtune.search.results import SearchResult
from lrtune.search.storage import journal_path

SAVED_CONFIG = "search.yaml"  # written by `lrtune search` into the run directory
RESULT = "result.json"
# What reading a damaged storage raises: a broken journal line, a malformed trial attribute,
# and AssertionError from Optuna's journal replay on an unknown operation.
UNREADABLE = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    OSError,
    AssertionError,
)


def rerender(run_dir: Path, console: Any) -> list[Path]:
    """Rewrite every output of a search run directory from its storage; show the ranking.

    Writes trials.csv, curves.csv, learning_curves.png, schedules.png, heatmap.png (two
    searched parameters), best_schedule.yaml/.py, best_config.yaml, report.md and
    result.json, and prints the ranked top-k table as `lrtune search` does.

    Returns:
        The files written.

    Raises:
        ConfigError: search.yaml, result.json or the storage is missing or unreadable.
    """
    from lrtune.report.search_report import show, write_search_outputs

    run_dir = Path(run_dir)
    cfg, result = load_run(run_dir)
    body = write_search_outputs(result, cfg, run_dir)
    show(console, result, cfg.settings.top_k, run_dir)
    return [run_dir / name for name in body["files"]]


def load_run(run_dir: Path) -> tuple[SearchConfig, SearchResult]:
    """The config and the SearchResult of a search run directory (finished or not).

    Raises:
        ConfigError: one line naming the file that is missing, unreadable or wrong.
    """
    from lrtune.search.runner import Search

    run_dir = Path(run_dir)
    body = _read_result(run_dir / RESULT)
    saved = run_dir / SAVED_CONFIG
    if not saved.is_file():
        raise ConfigError(f"{run_dir}: not a search run directory (no {SAVED_CONFIG})")
    cfg = load_search_config(saved, yes=True)
    where = run_dir / RESULT
    # The paths and --workers as the search was given them (search.yaml holds the task's
    # absolute path, and no --workers).
    source, task = body.get("config"), body.get("task")
    same = isinstance(task, str) and Path(task).resolve() == cfg.run.task.resolve()
    workers = _number(body, "workers", int, cfg.settings.workers, where)
    cfg = replace(
        cfg,
        run=replace(
            cfg.run,
            source=Path(source) if isinstance(source, str) else saved,
            task=Path(task) if same and isinstance(task, str) else cfg.run.task,
        ),
        settings=replace(cfg.settings, workers=max(1, int(workers))),
    )
    storage = body.get("storage")
    if storage is not None and not (isinstance(storage, str) and "://" in storage):
        raise ConfigError(f"{where}: 'storage' must be a database URL, got {storage!r}")
    if storage is None and not journal_path(run_dir).is_file():
        raise ConfigError(f"{journal_path(run_dir)}: missing: the search's trials are stored there")
    studies = body.get("studies") or {}
    if not isinstance(studies, Mapping):
        raise ConfigError(f"{where}: 'studies' must be a mapping, got {studies!r}")
    search = Search(cfg, run_dir, storage=storage)
    spe = body.get("steps_per_epoch")
    if spe is None:  # a run directory from before result.json recorded it: ask the task
        spe = search.steps_per_epoch
    elif isinstance(spe, bool) or not isinstance(spe, int) or spe < 1:
        raise ConfigError(f"{where}: 'steps_per_epoch' must be a positive integer, got {spe!r}")
    seconds = _number(body, "seconds", float, 0.0, where)
    ran_now = int(_number(body, "ran_now", int, 0, where))
    optimizer = body.get("optimizer")
    try:
        result = search.load(
            spe,
            studies=studies,
            seconds=seconds,
            ran_now=ran_now,
            optimizer=optimizer if isinstance(optimizer, str) else None,
        )
    except UNREADABLE as exc:
        text = str(exc).strip().splitlines()
        raise ConfigError(
            f"{storage or journal_path(run_dir)}: cannot read the search's trials "
            f"({type(exc).__name__}{': ' + text[0] if text else ''}): is it damaged?"
        ) from exc
    return cfg, result


def _read_result(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable search result ({exc})") from None
    if not isinstance(body, dict) or body.get("command") != "search":
        raise ConfigError(f"{path}: not the result.json of an lrtune search")
    return body


def _number(body: Mapping[str, Any], key: str, kind: type, default: float, where: Path) -> float:
    """A non-negative number of result.json (`default` when absent)."""
    value = body.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: '{key}' must be a number >= 0, got {value!r}")
    return float(value)
