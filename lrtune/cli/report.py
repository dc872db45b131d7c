"""`lrtune report RUN_DIR`: re-render plots and tables from a run directory's saved results."""

from __future__ import annotations

from typing import Any

import click

from lrtune.cli.options import common_options, handle_errors, make_console

# result.json "command" -> "module:function(run_dir, console) -> list of written paths"
RENDERERS = {
    "find": "lrtune.report.find_outputs:rerender",
    "search": "lrtune.search.report:rerender",
    "check": "lrtune.report.check_report:rerender",
    "doctor": "lrtune.report.doctor_report:rerender",
}


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@common_options
@handle_errors
def report(run_dir: str, **o: Any) -> None:
    """Re-render the plots and tables of RUN_DIR (a find, search, check or doctor run)."""
    import importlib
    import json
    from pathlib import Path

    from lrtune.errors import ConfigError, unknown_name

    console = make_console(o["quiet"], o["verbose"])
    path = Path(run_dir)
    for name in ("result.json", "doctor.json"):
        if (path / name).is_file():
            try:
                body = json.loads((path / name).read_text())
            except ValueError as exc:
                raise ConfigError(f"{path / name}: not valid JSON ({exc})") from None
            if not isinstance(body, dict):
                raise ConfigError(f"{path / name}: expected a JSON object")
            break
    else:
        raise ConfigError(f"{path}: no result.json here; is it an lrtune run directory?")
    command = body.get("command") or ("doctor" if (path / "doctor.json").is_file() else "")
    if command not in RENDERERS:
        raise ConfigError(f"{path}: {unknown_name('run kind', command, RENDERERS)}")
    module, func = RENDERERS[command].split(":")
    written = getattr(importlib.import_module(module), func)(path, console)
    console.info(f"re-rendered {len(written)} file(s) in {path}/")
    for p in written:
        console.result(str(p))
