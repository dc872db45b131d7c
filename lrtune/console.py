"""The one printer: diagnostics to stderr, results to stdout, rich on a terminal, plain under CI."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console as RichConsole
from rich.table import Table


def _plain() -> bool:
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


class Console:
    """Prints everything lrtune shows. Markup is off so user paths print verbatim.

    Args:
        quiet: only errors and results.
        verbose: also debug lines.
    """

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet = quiet
        self.verbose = verbose
        no_color = bool(os.environ.get("NO_COLOR"))
        self.err = RichConsole(
            stderr=True, markup=False, highlight=False, no_color=no_color, soft_wrap=True
        )
        self.out = RichConsole(markup=False, highlight=False, no_color=no_color, soft_wrap=True)
        self.plain = _plain()

    def info(self, msg: str) -> None:
        """A normal progress/status line (stderr)."""
        if not self.quiet:
            self.err.print(msg)

    def debug(self, msg: str) -> None:
        """A line shown only with --verbose."""
        if self.verbose and not self.quiet:
            self.err.print(msg, style="dim")

    def warning(self, msg: str) -> None:
        """A warning in plain words (stderr)."""
        if not self.quiet:
            self.err.print(f"warning: {msg}", style="yellow")

    def error(self, msg: str) -> None:
        """One error line (stderr); always shown."""
        self.err.print(f"error: {msg}", style="bold red")

    def result(self, text: str) -> None:
        """Machine-readable or final output (stdout); always shown."""
        self.out.print(text, markup=False, highlight=False)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        to_stdout: bool = False,
    ) -> None:
        """Render a table (stderr unless to_stdout)."""
        if self.quiet and not to_stdout:
            return
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*[str(c) for c in row])
        (self.out if to_stdout else self.err).print(table)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[ProgressSink]:
        """A progress bar on a terminal; a few plain log lines otherwise."""
        sink = ProgressSink(self, description, total)
        try:
            yield sink
        finally:
            sink.close()


class ProgressSink:
    """Callable handed to engines as their progress callback: sink(done, **fields)."""

    def __init__(self, console: Console, description: str, total: int) -> None:
        self.console = console
        self.description = description
        self.total = max(int(total), 1)
        self._last_plain = 0.0
        self._progress = None
        self._task_id = None
        self._pending: tuple[int, str] | None = None
        if not console.quiet and not console.plain:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
                console=console.err,
                transient=False,
            )
            self._progress.start()
            self._task_id = self._progress.add_task(description, total=self.total, status="")

    def __call__(self, done: int, total: int | None = None, status: str = "") -> None:
        if total is not None:
            self.total = max(int(total), 1)
        if self._progress is not None and self._task_id is not None:
            self._progress.update(self._task_id, completed=done, total=self.total, status=status)
            return
        if self.console.quiet:
            return
        self._pending = (done, status)
        now = time.monotonic()
        if now - self._last_plain >= 5.0 or done >= self.total:
            self._last_plain = now
            self._print(done, status)

    def _print(self, done: int, status: str) -> None:
        extra = f" {status}" if status else ""
        self.console.info(f"{self.description}: {done}/{self.total}{extra}")
        self._pending = None

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._pending is not None:  # plain mode: the last state, if not printed yet
            self._print(*self._pending)
