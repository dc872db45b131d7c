"""Shared click options, declared once; commands stack them. Keep torch out of this module."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

out_option = click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Run directory (default: runs/<command>-<timestamp>/).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result JSON on stdout (for scripts)."
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Only errors and results.")
verbose_option = click.option("--verbose", "-v", is_flag=True, help="Also print debug lines.")
debug_option = click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto | cpu | cuda | cuda:N | mps.",
)
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


def common_options(f: F) -> F:
    """--out, --json, --quiet, --verbose, --debug."""
    for opt in reversed((out_option, json_option, quiet_option, verbose_option, debug_option)):
        f = opt(f)
    return f


def handle_errors(f: F) -> F:
    """Turn LrtuneError into one line + its exit code, Ctrl-C into 130; --debug shows tracebacks."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        from lrtune.errors import ExitCode, LrtuneError

        try:
            return f(*args, **kwargs)
        except LrtuneError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))

    return wrapper  # type: ignore[return-value]


def make_console(quiet: bool = False, verbose: bool = False) -> Any:
    """The command's Console (imported lazily: rich is cheap, but keep --help minimal)."""
    from lrtune.console import Console

    return Console(quiet=quiet, verbose=verbose)
