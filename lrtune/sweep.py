"""Leslie Smith's hyper-parameter range tests: one LR range test per weight decay (or momentum),
curves overlaid, and the value that reaches the lowest loss while tolerating the largest LR."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrtune.errors import ConfigError

SWEEPABLE = {"weight_decay": "weight decay", "momentum": "momentum"}
LOSS_TOLERANCE = 0.02  # within 2% of the best minimum loss counts as "as low"


@dataclass
class SweepResult:
    """One range test per value of `param`; `best` is the recommended value."""

    param: str
    values: list[float]
    results: list[Any]  # RangeTestResult per value
    best: float | None
    why: str

    def table(self) -> list[dict[str, Any]]:
        """Per value: min loss, LR at the min, divergence LR, headline LR."""
        rows = []
        from lrtune.suggest import prepare_curve

        for v, r in zip(self.values, self.results):
            # The median curve over repeats, cut before a divergence (what the rules read).
            lrs, _, smoothed, _, _ = r.aggregate()
            diverged = any(c.stop_reason in ("diverged", "nan") for c in r.curves)
            end = len(lrs) - (1 if diverged else 0)
            lr, loss = prepare_curve(lrs[:end], smoothed[:end])
            i = int(np.argmin(loss)) if len(loss) else None
            rows.append(
                {
                    self.param: v,
                    "min_loss": float(loss[i]) if i is not None else None,
                    "lr_at_min": float(lr[i]) if i is not None else None,
                    "diverged_lr": r.curves[0].diverged_lr,
                    "suggested_lr": r.lr,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"param": self.param, "best": self.best, "why": self.why, "table": self.table()}


def parse_values(text: str, flag: str) -> list[float]:
    """'0,1e-5,1e-4' -> [0.0, 1e-5, 1e-4]; errors name the flag and quote the value."""
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if len(values) < 2:
        raise ConfigError(f"{flag} needs at least two values to compare, got {text!r}")
    if any(v < 0 for v in values):
        raise ConfigError(f"{flag} values must be >= 0, got {text!r}")
    return values


def choose(
    param: str, values: Sequence[float], table: Sequence[Mapping[str, Any]]
) -> tuple[float | None, str]:
    """Among values whose minimum loss is within LOSS_TOLERANCE of the best, take the one
    whose loss minimum sits at the largest LR (it tolerates the largest LR)."""
    ok = [(v, row) for v, row in zip(values, table) if row["min_loss"] is not None]
    if not ok:
        return None, "no range test produced a usable curve"
    best_loss = min(row["min_loss"] for _, row in ok)
    near = [
        (v, row) for v, row in ok if row["min_loss"] <= best_loss + LOSS_TOLERANCE * abs(best_loss)
    ]
    v, row = max(near, key=lambda p: (p[1]["lr_at_min"], -p[1]["min_loss"]))
    return v, (
        f"{SWEEPABLE[param]} {v:g} reaches a minimum loss of {row['min_loss']:.4g} "
        f"(best of all: {best_loss:.4g}, tolerance {100 * LOSS_TOLERANCE:.0f}%) at the largest LR "
        f"({row['lr_at_min']:.2e}) among those that get as low"
    )


def sweep(
    run_one: Callable[[float], Any], param: str, values: Sequence[float], progress: Any = None
) -> SweepResult:
    """Run `run_one(value)` (a range test with that value) for each value and choose the best."""
    if param not in SWEEPABLE:
        raise ConfigError(f"cannot sweep '{param}'; valid: {', '.join(SWEEPABLE)}")
    results = [run_one(v) for v in values]
    out = SweepResult(param, list(values), results, None, "")
    out.best, out.why = choose(param, values, out.table())
    return out
