"""`lrtune report RUN_DIR`: re-render plots and tables from a run directory's saved results."""

from __future__ import annotations

import click

from lrtune.cli.options import (
    debug_option,
    handle_errors,
    make_console,
    quiet_option,
    verbose_option,
)

# result.json "command" -> "module:function(run_dir, console) -> list of written paths"
RENDERERS = {
    "find": "lrtune.report.find_outputs:rerender",
    "search": "lrtune.search.report:rerender",
    "check": "lrtune.report.check_report:rerender",
    "doctor": "lrtune.report.doctor_report:rerender",
}


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"run_dir", "command", "files"} as JSON on stdout (the report goes to stderr).',
)
@quiet_option
@verbose_option
@debug_option
@handle_errors
def report(run_dir: str, as_json: bool, quiet: bool, verbose: bool, debug: bool) -> None:
    """Re-render the plots and tables of RUN_DIR (a find, search, check or doctor run).

    The files are rewritten in place, inside RUN_DIR, from its saved results (nothing is
    trained again); the written paths are listed on stdout.
    """
    import contextlib
    import importlib
    import json
    import sys
    from pathlib import Path

    from lrtune.errors import ConfigError, unknown_name
    from lrtune.report.rundir import to_json

    console = make_console(quiet, verbose)
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
    render = getattr(importlib.import_module(module), func)
    # With --json, stdout holds the JSON alone: the rendered tables go to stderr.
    to_stderr = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with to_stderr:
        written = render(path, console)
    console.info(f"re-rendered {len(written)} file(s) in {path}/")
    if as_json:
        files = [str(p) for p in written]
        console.result(to_json({"run_dir": str(path), "command": command, "files": files}).rstrip())
        return
    for p in written:
        console.result(str(p))
