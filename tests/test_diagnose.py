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
    """Falling 15%/epoch when the LR is cut 10x at epoch 6; then it eases 5% and goes flat."""
    lr = np.where(E < 5, 0.1, 0.01)
    train = np.where(E < 5, 2.3 * 0.85**E, 2.3 * 0.85**4 * 0.95 * 0.998 ** (E - 5))
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
    # The decay's evidence: where the pre-cut pace was heading, as a dashed guide.
    nums = findings[0].numbers
    assert data.guide is not None
    assert (data.guide.x[0], data.guide.x[-1]) == (nums["trend_from_epoch"], nums["trend_to_epoch"])
    assert data.guide.y[0] == pytest.approx(nums["trend_from"])
    assert data.guide.y[-1] == pytest.approx(nums["heading"])
    assert diagnosis_plot_data(*[_overfit(), diagnose_curves(_overfit())[0]]).guide is None
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


# -- real curves, copied as literals (nothing is trained) ------------------------------------
# `lrtune search configs/search/digits_step.yaml`: examples/digits_mlp.py, SGD(momentum 0.9)
# lr 0.1, StepLR, 12 epochs; the per-epoch numbers of curves.csv (loss at init ~2.31).
LN10_INIT = 2.3125
STEP_LRS = {
    (2, 0.1): [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6],
    (4, 0.3): [0.1] * 4 + [0.03] * 4 + [0.009] * 4,
    (8, 0.6): [0.1] * 8 + [0.06] * 4,
}
SEARCH_TRIALS: dict[str, tuple[tuple[int, float], list[float], list[float], list[float]]] = {
    # step_size=2, gamma=0.1, seed 0: val flat at 0.208 from epoch 5 while others reach 0.08
    "ss2_g0.1_seed0": (
        (2, 0.1),
        [2.14396, 0.830805, 0.320969, 0.255914, 0.222126, 0.21626,
         0.210736, 0.214096, 0.210474, 0.213584, 0.2125, 0.209946],
        [1.62103, 0.429098, 0.268882, 0.23117, 0.213426, 0.208482,
         0.20817, 0.207892, 0.207867, 0.207838, 0.207836, 0.207835],
        [0.597222, 0.869444, 0.922222, 0.936111, 0.938889, 0.941667,
         0.941667, 0.941667, 0.941667, 0.941667, 0.941667, 0.941667],
    ),
    "ss2_g0.1_seed1": (
        (2, 0.1),
        [2.1526, 0.760514, 0.343029, 0.229249, 0.204203, 0.199349,
         0.199983, 0.205254, 0.202198, 0.200208, 0.200035, 0.1951],
        [1.58732, 0.641802, 0.260323, 0.207121, 0.208609, 0.208187,
         0.207958, 0.207851, 0.207819, 0.207818, 0.207812, 0.20781],
        [0.691667, 0.8, 0.916667, 0.933333, 0.938889, 0.941667,
         0.941667, 0.941667, 0.941667, 0.941667, 0.941667, 0.941667],
    ),
    # step_size=4, gamma=0.3: the cut at 33% helped (the loss dropped), then it kept improving
    "ss4_g0.3_seed0": (
        (4, 0.3),
        [2.14396, 0.830805, 0.362822, 0.183523, 0.127625, 0.077269,
         0.0646131, 0.0603618, 0.043635, 0.0406081, 0.039743, 0.0372376],
        [1.62103, 0.429098, 0.245831, 0.18907, 0.128223, 0.0987155,
         0.0943701, 0.0938176, 0.091228, 0.0882131, 0.0917182, 0.0880631],
        [0.597222, 0.869444, 0.927778, 0.941667, 0.963889, 0.977778,
         0.977778, 0.969444, 0.977778, 0.977778, 0.977778, 0.977778],
    ),
    # the best trial (step_size=8, gamma=0.6): the val loss keeps improving after the decay
    "ss8_g0.6_seed1": (
        (8, 0.6),
        [2.1526, 0.760514, 0.405143, 0.1777, 0.197564, 0.138825,
         0.0961148, 0.0568671, 0.0436337, 0.0235631, 0.0140223, 0.0128812],
        [1.58732, 0.641802, 0.183593, 0.173757, 0.1539, 0.161669,
         0.103696, 0.169704, 0.0913925, 0.0770967, 0.0969061, 0.0746659],
        [0.691667, 0.8, 0.958333, 0.944444, 0.936111, 0.944444,
         0.975, 0.947222, 0.972222, 0.983333, 0.972222, 0.986111],
    ),
}  # fmt: skip


def _trial(name: str) -> list[Any]:
    key, train, val, metric = SEARCH_TRIALS[name]
    return records(train, val, metric, STEP_LRS[key])


@pytest.mark.parametrize("name", ["ss2_g0.1_seed0", "ss2_g0.1_seed1"])
def test_real_search_trial_that_decayed_too_early(name: str) -> None:
    findings = diagnose_curves(_trial(name), initial_loss=LN10_INIT)
    assert [f.code for f in findings] == ["decayed_too_early"], [f.evidence for f in findings]
    (f,) = findings
    assert (f.start_epoch, f.end_epoch) == (3, 12)
    assert f.numbers["epochs_worth"] < diagnose.HEADING_EPOCHS
    assert f.numbers["best_after"] > f.numbers["heading"]
    assert "val loss was still falling" in f.evidence and "epochs' worth" in f.evidence


@pytest.mark.parametrize("name", ["ss4_g0.3_seed0", "ss8_g0.6_seed1"])
def test_real_search_trials_with_a_healthy_decay(name: str) -> None:
    """The best trial, and a trial whose early cut made the loss drop, get no finding at all."""
    recs = _trial(name)
    assert diagnose_curves(recs, initial_loss=LN10_INIT) == []
    assert diagnose_curves(recs, initial_loss=LN10_INIT, baseline_loss=LN10) == []
    assert diagnose_curves(recs) == []


def test_step_decay_signature_is_not_too_early() -> None:
    """An early cut after the loss had levelled off, then a drop: the normal step decay."""
    lr = np.where(E < 8, 0.1, 0.01)
    train = np.where(E < 8, 0.5 + 1.8 * np.exp(-E / 1.5), 0.3 * 0.99 ** (E - 8))
    recs = records(train, train * 1.1, None, lr)
    assert diagnose_curves(recs, patterns=["decayed_too_early"]) == []


def test_val_plateau_far_above_train_is_not_blamed_on_the_decay() -> None:
    """Standardised digits, StepLR(2, 0.1) from lr 0.1: val stops at 0.14 by epoch 3 whatever
    the schedule (every schedule in a grid ends there) while train is 0.04: a generalisation
    limit, not a stalled optimisation. Nothing a later decay would fix."""
    train = [0.9939, 0.1202, 0.05627, 0.04421, 0.04045, 0.04028,
             0.03938, 0.04002, 0.03976, 0.03969, 0.03946, 0.04193]  # fmt: skip
    val = [0.2135, 0.1469, 0.1442, 0.1407, 0.1404, 0.1401,
           0.1401, 0.1401, 0.1401, 0.1401, 0.1401, 0.1401]  # fmt: skip
    recs = records(train, val, None, STEP_LRS[(2, 0.1)])
    assert diagnose_curves(recs, initial_loss=2.3107, patterns=["decayed_too_early"]) == []


def test_train_jitter_under_a_smooth_val_loss_is_not_oscillating() -> None:
    """Diabetes regression, Adam + cosine: the per-epoch train mean jumps (a 1-example last
    batch), the val loss, measured on fixed data, is smooth: the weights are not bouncing."""
    train = [0.8103, 0.5644, 0.6526, 0.4571, 0.4537, 0.4406, 0.4461, 0.4382, 0.4267, 0.5129,
             0.4117, 0.4938, 0.411, 0.4092, 0.4187, 0.458, 0.4029, 0.4275, 0.4506, 0.5438]  # fmt: skip
    val = [0.6157, 0.4997, 0.4675, 0.4711, 0.451, 0.4473, 0.4434, 0.4352, 0.4383, 0.4329,
           0.4309, 0.4328, 0.4456, 0.4467, 0.4456, 0.4458, 0.448, 0.4484, 0.4489, 0.449]  # fmt: skip
    assert diagnose_curves(records(train, val), initial_loss=0.8761) == []
    # Without the val loss there is nothing to tell the two apart: the train loss is judged.
    (f,) = diagnose_curves(records(train), initial_loss=0.8761, patterns=["oscillating"])
    assert f.curve == "train_loss"


def test_a_jumpy_val_loss_over_a_smooth_train_loss_is_not_oscillating() -> None:
    train = 0.05 + 2.0 * np.exp(-E / 3)
    val = 0.3 + 2.0 * np.exp(-E / 3) + 0.06 * (-1) ** E  # a small val set's swings
    assert diagnose_curves(records(train, val), patterns=["oscillating"]) == []


def test_loss_that_blew_up_then_came_back_is_lr_too_high() -> None:
    """digits_mlp, Adam at lr 0.3: epoch 1 averages 8x the loss at init, then it crawls near
    chance. Not underfitting (the same model reaches 98% at a sane LR), not 'train longer'."""
    train = [18.38, 2.072, 2.058, 2.015, 1.835, 1.754, 1.753, 1.666, 1.572, 1.729,
             1.598, 1.518, 1.533, 1.525, 1.482]  # fmt: skip
    val = [2.267, 2.143, 2.039, 1.967, 1.808, 1.844, 1.676, 1.56, 1.559, 1.645,
           1.555, 1.583, 1.658, 1.541, 1.525]  # fmt: skip
    findings = diagnose_curves(records(train, val), initial_loss=LN10_INIT)
    assert [f.code for f in findings] == ["lr_too_high"], [f.evidence for f in findings]
    assert findings[0].numbers["ratio"] > diagnose.BLOWUP_RATIO
    assert (findings[0].start_epoch, findings[0].end_epoch) == (1, 15)
    from lrtune.report.diagnosis_plot import diagnosis_plot_data

    data = diagnosis_plot_data(records(train, val), findings[0])  # the init loss, drawn
    assert data.level is not None and data.level[0] == pytest.approx(LN10_INIT)
    # The loss at initialisation is what "blew up" is measured against: without it, no claim.
    assert "lr_too_high" not in {f.code for f in diagnose_curves(records(train, val))}


def test_loss_creeping_down_from_chance_is_lr_too_low_not_too_high() -> None:
    """digits_mlp, SGD at lr 1e-3: 2.31 -> 2.23 in 15 epochs, down every single epoch."""
    train = [2.31, 2.304, 2.299, 2.293, 2.288, 2.282, 2.276, 2.271, 2.265, 2.259,
             2.254, 2.248, 2.241, 2.234, 2.227]  # fmt: skip
    val = [v + 0.004 for v in train]
    metric = [0.1 + 0.014 * i for i in range(15)]
    findings = diagnose_curves(records(train, val, metric), initial_loss=LN10_INIT)
    assert [f.code for f in findings] == ["train_longer"], [f.evidence for f in findings]
    assert "LR is most likely too low" in findings[0].advice


def test_negligible_val_rise_is_not_overfitting() -> None:
    """Wine, 100% val accuracy: val loss 0.0027 -> 0.0039 is +47%, but 0.1% of ln(3)."""
    train = [0.6684, 0.1042, 0.02494, 0.007027, 0.007031, 0.002882, 0.002142, 0.001874,
             0.001651, 0.001493, 0.001326, 0.001215, 0.00117, 0.001164, 0.001155, 0.001148,
             0.001141, 0.001144, 0.001173, 0.001124]  # fmt: skip
    val = [0.1968, 0.02491, 0.002664, 0.003137, 0.005299, 0.005282, 0.00472, 0.004254,
           0.004416, 0.004434, 0.004159, 0.004025, 0.004003, 0.003993, 0.003974, 0.003955,
           0.003948, 0.00394, 0.00392, 0.003896]  # fmt: skip
    assert diagnose_curves(records(train, val), initial_loss=1.0829) == []


def test_a_loss_that_climbs_first_is_not_a_slow_start() -> None:
    train = np.concatenate([[0.84, 0.94, 0.95, 0.91, 1.02], 0.4 + 0.3 * np.exp(-E[:15] / 2)])
    assert diagnose_curves(records(train), patterns=["bad_init"]) == []
