"""Errors and exit codes: the only place that decides what a failure means to the shell."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Process exit codes, per DESIGN.md."""

    OK = 0
    FAILED = 1  # a check failed, or a search found no successful trial
    USAGE = 2  # bad input: task file, config, option
    INTERRUPTED = 130  # Ctrl-C


class LrtuneError(Exception):
    """Base class for errors lrtune reports to the user as one line."""

    exit_code: ExitCode = ExitCode.USAGE


class TaskError(LrtuneError):
    """The user's task file is missing, broken, or returns the wrong thing."""


class ConfigError(LrtuneError):
    """A YAML config or schedule spec is invalid."""


class RunFailed(LrtuneError):
    """The work ran but produced no usable result (exit code 1)."""

    exit_code = ExitCode.FAILED


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' when a close match exists (case-insensitive), else ''."""
    lowered = {str(c).lower(): str(c) for c in choices}
    match = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """One-line message for an unknown name: lists the valid ones and suggests the closest."""
    valid = sorted(choices)
    return f"unknown {kind} '{name}'{did_you_mean(name, valid)}; valid: {', '.join(valid)}"
