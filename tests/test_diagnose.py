"""lrtune.diagnose: each pattern on a synthetic curve made to show it, none on healthy curves."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrtune import diagnose
from lrtune.diagnose import Finding, diagnose_curves, summary_label
from lrtune.errors import ConfigError

LN10 = math.log(10)
N = 30
E = np.arange(N, dtype=float)


@dataclass(frozen=True)
class Record:
    """Stands in for training.EpochRecord (same attribute names)."""

    epoch: int
    lr: float
    train_loss: float
    val_loss: float | None
    val_metric: float | None


def records(
    train: Any, val: Any = None, metric: Any = None, lr: Any = None, as_dicts: bool = True
) -> list[Any]:
    """Per-epoch records from arrays (epochs numbered from 1)."""
    out: list[Any] = []
    for i in range(len(train)):
        row = {
            "epoch": i + 1,
            "lr": 0.1 if lr is None else float(lr[i]),
            "train_loss": float(train[i]),
            "val_loss": None if val is None else float(val[i]),
            "val_metric": None if metric is None else float(metric[i]),
        }
        out.append(row if as_dicts else Record(**row))
    return out


def healthy(seed: int = 0, lr: Any = None) -> list[Any]:
    """A converged run: losses fall and level off, val a little above train, small noise."""
    rng = np.random.default_rng(seed)
    train = 0.05 + 2.0 * np.exp(-E / 3) * (1 + 0.01 * rng.standard_normal(N))
    val = 0.12 + 2.0 * np.exp(-E / 3) + 0.01 * rng.standard_normal(N)
    metric = 0.97 - 0.85 * np.exp(-E / 3) + 0.003 * rng.standard_normal(N)
    if lr is None:
        lr = 0.1 * np.where(E < 18, 1.0, 0.1)  # step decay at 60%
    return records(train, val, metric, lr)


HEALTHY_LRS: dict[str, Any] = {
    "step_at_60pct": None,
    "constant": np.full(N, 0.05),
    "cosine": 0.05 * (1 + np.cos(np.pi * E / N)),
    "warmup_cosine": np.where(E < 3, 0.1 * (E + 1) / 3, 0.05 * (1 + np.cos(np.pi * E / N))),
}


def _stuck_start() -> list[Any]:
    train = np.where(E < 7, 2.3 - 0.002 * E, 0.1 + 2.19 * np.exp(-(E - 7) / 3))
    return records(train, train + 0.05, None, None)


def _exploding() -> list[Any]:
    train = np.where(E < 10, 0.4 + 2.0 * np.exp(-E / 2), 0.42 * 1.12 ** (E - 9))
    return records(train, train * 1.1)


def _nan_loss() -> list[Any]:
    train = 0.4 + 2.0 * np.exp(-E[:8] / 2)
    train[-1] = math.nan
    return records(train)


def _high_flat() -> list[Any]:
    rng = np.random.default_rng(1)
    train = 2.29 + 0.01 * rng.standard_normal(20)
    return records(train, train + 0.01)


def _relapse() -> list[Any]:
    """Learns a little, then climbs back to chance (LR too high for the later epochs)."""
    train = np.where(E < 3, 2.3 - 0.15 * E, 2.0 + 0.45 * (1 - np.exp(-(E - 2) / 2)))
    return records(train, train + 0.02)


def _spike_then_stuck() -> list[Any]:
    """Blows up in the first epoch, then sits at chance."""
    train = 2.35 + 0.02 * np.cos(E)
    train[0] = 7.0
    return records(train, train + 0.05)


def _decayed_early() -> list[Any]:
    lr = np.where(E < 5, 0.1, 0.01)
    train = np.where(E < 5, 2.3 * 0.85**E, 2.3 * 0.85**4 * 0.8 * 0.997 ** (E - 5))
    return records(train, train * 1.05, None, lr)


def _still_improving() -> list[Any]:
    metric = 0.4 + 0.015 * E  # climbing linearly, no plateau
    train = 2.0 - 0.04 * E
    return records(train, train + 0.05, metric)


def _overfit() -> list[Any]:
    train = 0.02 + 2.0 * np.exp(-E / 4)
    falling = 0.4 + 1.9 * np.exp(-E / 4)
    val = np.where(E <= 10, falling, falling[10] + 0.03 * (E - 10))  # minimum at epoch 11
    return records(train, val)


def _underfit() -> list[Any]:
    train = 1.6 + 0.7 * np.exp(-E / 2)
    return records(train, train * 1.04)


def _oscillating() -> list[Any]:
    train = 1.2 - 0.01 * E + 0.25 * (-1) ** E
    return records(train, train + 0.1)


# code -> (records factory, extra diagnose_curves kwargs)
BROKEN: dict[str, list[tuple[Callable[[], list[Any]], dict[str, Any]]]] = {
    "bad_init": [
        (_stuck_start, {}),
        (healthy, {"initial_loss": 25.0, "baseline_loss": LN10}),
    ],
    "lr_too_high": [
        (_exploding, {}),
        (_nan_loss, {}),
        (_high_flat, {"initial_loss": 2.31, "baseline_loss": LN10}),
        (_relapse, {"baseline_loss": LN10}),
        (_spike_then_stuck, {"baseline_loss": LN10}),
        (healthy, {"diverged": True}),
    ],
    "decayed_too_early": [(_decayed_early, {})],
    "train_longer": [(_still_improving, {})],
    "overfitting": [(_overfit, {})],
    "underfitting": [(_underfit, {"baseline_loss": LN10})],
    "oscillating": [(_oscillating, {})],
}
CASES = [
    pytest.param(code, make, kw, id=f"{code}-{make.__name__}-{i}")
    for code, variants in BROKEN.items()
    for i, (make, kw) in enumerate(variants)
]


def test_every_pattern_has_a_broken_curve() -> None:
    assert set(BROKEN) == set(diagnose.PATTERNS)


@pytest.mark.parametrize(("code", "make", "kwargs"), CASES)
def test_pattern_detected_on_its_curve(
    code: str, make: Callable[[], list[Any]], kwargs: dict[str, Any]
) -> None:
    findings = diagnose_curves(make(), **kwargs)
    by_code = {f.code: f for f in findings}
    assert code in by_code, [f.evidence for f in findings]
    f = by_code[code]
    assert any(ch.isdigit() for ch in f.evidence), f.evidence
    assert f.advice and f.title
    assert f.severity in diagnose.SEVERITY_ORDER
    assert 1 <= f.start_epoch <= f.end_epoch


@pytest.mark.parametrize("lr_name", list(HEALTHY_LRS))
@pytest.mark.parametrize("seed", range(4))
def test_healthy_curves_have_no_findings(lr_name: str, seed: int) -> None:
    recs = healthy(seed, HEALTHY_LRS[lr_name])
    assert diagnose_curves(recs, initial_loss=2.35, baseline_loss=LN10) == []
    assert diagnose_curves(recs) == []  # no reference loss: still healthy


def test_healthy_without_val_or_metric() -> None:
    recs = [{"epoch": r["epoch"], "lr": r["lr"], "train_loss": r["train_loss"]} for r in healthy()]
    assert diagnose_curves(recs, initial_loss=2.35) == []


@pytest.mark.parametrize(("code", "make", "kwargs"), CASES)
def test_each_detector_alone_is_quiet_on_healthy(
    code: str, make: Callable[[], list[Any]], kwargs: dict[str, Any]
) -> None:
    assert diagnose_curves(healthy(), patterns=[code], initial_loss=2.3, baseline_loss=LN10) == []


def test_evidence_numbers_and_ranges() -> None:
    (f,) = diagnose_curves(_overfit(), patterns=["overfitting"])
    assert f.start_epoch == 11 and f.end_epoch == N
    assert f.numbers["best_val_epoch"] == 11
    assert "epoch 11" in f.evidence and "epoch 11" in f.advice
    (d,) = diagnose_curves(_decayed_early(), patterns=["decayed_too_early"])
    assert d.start_epoch == 6 and d.curve == "lr"
    assert d.numbers["lr_before"] == pytest.approx(0.1)
    assert d.numbers["rate_after"] < diagnose.PLATEAU_RATE_RATIO * d.numbers["rate_before"]


def test_objects_and_dicts_agree() -> None:
    rows = _overfit()
    objs = [Record(**r) for r in rows]
    assert diagnose_curves(rows) == diagnose_curves(objs)


def test_order_errors_first_and_label() -> None:
    findings = diagnose_curves(_exploding())
    assert findings[0].severity == "error"
    assert summary_label(findings).startswith("lr_too_high")
    assert summary_label([]) == "healthy"


def test_too_short_is_not_judged() -> None:
    assert diagnose_curves(records([2.3, 2.2])) == []
    # ... except a divergence, which one epoch is enough to see.
    assert [f.code for f in diagnose_curves(records([2.3, math.inf]))] == ["lr_too_high"]


def test_late_decay_with_plateau_is_not_too_early() -> None:
    lr = np.where(E < 20, 0.1, 0.01)
    train = np.where(E < 20, 2.3 * 0.85**E, 2.3 * 0.85**19 * 0.8 * 0.999 ** (E - 20))
    assert diagnose_curves(records(train, lr=lr), patterns=["decayed_too_early"]) == []


def test_stuck_at_chance_is_not_also_underfitting() -> None:
    codes = [f.code for f in diagnose_curves(_spike_then_stuck(), baseline_loss=LN10)]
    assert codes == ["lr_too_high"]


def test_real_training_curves() -> None:
    """The shared loop's EpochRecords on digits: healthy, LR far too high, decay far too early."""
    from lrtune.task import load_task
    from lrtune.training import train

    task = load_task(Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.py")
    runs = {
        "healthy": dict(lr=3e-3, optimizer="adam", schedule={"name": "cosine"}, epochs=12),
        "lr_too_high": dict(lr=3.0, optimizer="sgd", epochs=10),
        "decayed_too_early": dict(
            lr=0.01,
            optimizer="sgd",
            schedule={"name": "step", "step_size": 3, "gamma": 0.05},
            epochs=12,
        ),
    }
    for expected, kwargs in runs.items():
        result = train(task, device="cpu", **kwargs)  # type: ignore[arg-type]
        findings = diagnose_curves(
            result.epochs,
            initial_loss=result.initial_loss,
            baseline_loss=LN10,
            diverged=result.status == "diverged",
        )
        codes = [f.code for f in findings]
        assert codes == ([] if expected == "healthy" else [expected]), (expected, findings)


def test_bad_input_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="did you mean 'overfitting'"):
        diagnose_curves(healthy(), patterns=["overfiting"])
    with pytest.raises(ConfigError, match="metric_mode"):
        diagnose_curves(healthy(), metric_mode="up")
    with pytest.raises(ConfigError, match="train_loss"):
        diagnose_curves([{"epoch": 1, "loss": 2.0}])


def test_metric_mode_min() -> None:
    # A falling error rate is an improving metric when metric_mode='min'.
    rows = _still_improving()
    for r in rows:
        r["val_metric"] = 1 - r["val_metric"]
    (f,) = diagnose_curves(rows, metric_mode="min", patterns=["train_longer"])
    assert f.curve == "val_metric"
    # Read as 'higher is better', the metric is getting worse: the val loss is the evidence.
    (f,) = diagnose_curves(rows, metric_mode="max", patterns=["train_longer"])
    assert f.curve == "val_loss"


def test_finding_to_dict_roundtrip() -> None:
    (f,) = diagnose_curves(_overfit(), patterns=["overfitting"])
    d = f.to_dict()
    assert d["code"] == "overfitting" and d["epochs"] == [11, N]
    assert isinstance(f, Finding) and hash(f) == hash(f)


def test_diagnosis_plots(tmp_path: Path) -> None:
    from lrtune.report.diagnosis_plot import diagnosis_plot_data, write_diagnosis_plots

    rows = _decayed_early()
    findings = diagnose_curves(rows)
    data = diagnosis_plot_data(rows, findings[0])
    assert data.shade == (findings[0].start_epoch, findings[0].end_epoch)
    assert "lr" in data.panels
    paths = write_diagnosis_plots(rows, findings, tmp_path)
    assert [p.name for p in paths] == [f"diagnosis_{f.code}.png" for f in findings]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_divergence_before_the_first_epoch_is_lr_too_high() -> None:
    (f,) = diagnose_curves([], initial_loss=2.31, diverged=True, diverged_step=4)
    assert f.code == "lr_too_high" and f.severity == "error"
    assert (f.start_epoch, f.end_epoch) == (1, 1)
    assert "at step 4, during epoch 1" in f.evidence and "2.31" in f.evidence
    assert diagnose_curves([]) == []  # no epochs and no divergence: nothing to read
    # Diverged after some epochs: the step is named too.
    (g,) = diagnose_curves(healthy()[:2], diverged=True, diverged_step=37)
    assert "at step 37, during epoch 3" in g.evidence


def test_decay_rates_are_the_share_of_loss_lost_per_epoch() -> None:
    (f,) = diagnose_curves(_decayed_early(), patterns=["decayed_too_early"])
    pre = f.numbers["rate_before"]  # log units per epoch
    assert f"falling {100 * (1 - math.exp(-pre)):.1f}%/epoch" in f.evidence
