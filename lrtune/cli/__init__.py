"""The `lrtune` command group. Subcommands live in lrtune/cli/<name>.py and load lazily,
so `lrtune --help` never imports torch."""

from __future__ import annotations

import importlib
from typing import Any

import click

from lrtune import __version__

# command name -> (module under lrtune.cli, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "find": ("find", "find", "LR range test: curve, suggested learning rates, schedule."),
    "search": ("search", "search", "Grid/random search over decay schedules (Optuna)."),
    "check": ("check", "check", "CI convergence check: exit 1 when a config stops converging."),
    "doctor": ("doctor", "doctor", "Sanity checks and diagnosis for a task file."),
    "schedule": ("schedule", "schedule", "List, plot and export LR schedules."),
    "report": ("report", "report", "Re-render plots and tables from a run directory."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked or asked for help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        try:
            mod = importlib.import_module(f"lrtune.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lrtune.cli.{module}":
                return None  # command not built yet
            raise
        cmd: click.Command = getattr(mod, attr)
        return cmd

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if args and name not in COMMANDS and not name.startswith("-"):
            from lrtune.errors import did_you_mean

            ctx.fail(f"no such command '{name}'{did_you_mean(name, COMMANDS)}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text from the table above: listing commands must not import them.
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lrtune")
def cli() -> None:
    """lrtune: find a learning rate and a decay schedule for your PyTorch model.

    \b
    Typical workflow:
      lrtune doctor TASK.py          sanity checks (initial loss, overfit a batch, ...)
      lrtune find TASK.py            LR range test -> suggested LR + schedule
      lrtune search GRID.yaml        search decay schedules, pick the best
      lrtune check CONFIG.yaml       guard convergence in CI
    """


def main(argv: Any = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="lrtune")
