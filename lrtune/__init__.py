"""lrtune: learning-rate range finder and schedule tuner for PyTorch.

Heavy imports (torch) happen lazily: `import lrtune` is cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "find_lr": "lrtune.rangetest",
    "RangeTest": "lrtune.rangetest",
    "RangeTestResult": "lrtune.rangetest",
    "load_task": "lrtune.task",
    "Task": "lrtune.task",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrtune' has no attribute {name!r}")
