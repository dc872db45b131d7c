"""The range-test engine on real torch: ramp, divergence, restoration, accumulation, repeats."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrtune.errors import ConfigError
from lrtune.rangetest import RangeTest, RangeTestSettings, _two_digits, find_lr
from lrtune.task import load_task


def _setup(tiny_task, momentum=True):
    task = load_task(tiny_task)
    torch.manual_seed(0)
    model = task.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9 if momentum else 0.0)
    # One real step so the optimizer has momentum buffers and BatchNorm has moved.
    loss = task.loss(model, task.first_batch())
    loss.backward()
    opt.step()
    opt.zero_grad()
    return task, model, opt


def _state(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {k: {n: t.clone() for n, t in s.items()} for k, s in opt.state_dict()["state"].items()},
        [g["lr"] for g in opt.param_groups],
    )


def _same(a, b):
    (ma, oa, la), (mb, ob, lb) = a, b
    assert ma.keys() == mb.keys()
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    assert oa.keys() == ob.keys()
    for k in oa:
        for n in oa[k]:
            assert torch.equal(oa[k][n], ob[k][n]), (k, n)
    assert la == lb


def test_ramp_hits_start_and_end_exactly(tiny_task):
    task, model, opt = _setup(tiny_task)
    seen = []

    def loss(m, batch):
        seen.append(opt.param_groups[0]["lr"])
        return task.loss(m, batch)

    for mode in ("exp", "linear"):
        seen.clear()
        s = RangeTestSettings(start_lr=1e-5, end_lr=1e-2, steps=20, mode=mode, diverge=1e9)
        res = RangeTest(model, opt, task.train_loader(), loss, device="cpu").run(s, repeats=1)
        assert res.curves[0].stop_reason == "end"
        assert seen[0] == 1e-5 and seen[-1] == 1e-2
        assert len(seen) == 20
        assert res.curves[0].lrs[0] == 1e-5 and res.curves[0].lrs[-1] == 1e-2
        steps = np.diff(np.log(seen)) if mode == "exp" else np.diff(seen)
        assert np.allclose(steps, steps[0])


def test_divergence_stops_early(tiny_task):
    res = find_lr(tiny_task, start_lr=1e-4, end_lr=1e4, steps=100, device="cpu", repeats=1)
    c = res.curves[0]
    assert c.stop_reason in ("diverged", "nan")
    assert c.steps_run < 100
    assert c.diverged_lr is not None and c.diverged_lr < 1e4
    assert res.identical


def test_model_and_optimizer_restored_bit_for_bit(tiny_task):
    task, model, opt = _setup(tiny_task)
    before = _state(model, opt)
    model.eval()
    res = RangeTest(model, opt, task.train_loader(), task.loss, device="cpu").run(
        RangeTestSettings(steps=30, end_lr=100.0), repeats=2
    )
    _same(before, _state(model, opt))
    assert not model.training  # the mode is restored too
    assert res.checksum_before == res.checksum_after


def test_restored_when_the_loss_raises_mid_test(tiny_task):
    task, model, opt = _setup(tiny_task)
    before = _state(model, opt)
    rng = torch.get_rng_state()
    calls = {"n": 0}

    def flaky(m, batch):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("loss exploded in user code")
        return task.loss(m, batch)

    with pytest.raises(RuntimeError, match="user code"):
        RangeTest(model, opt, task.train_loader(), flaky, device="cpu").run(
            RangeTestSettings(steps=20)
        )
    _same(before, _state(model, opt))
    assert torch.equal(rng, torch.get_rng_state())


def test_interrupt_keeps_partial_curve_and_restores(tiny_task):
    task, model, opt = _setup(tiny_task)
    before = _state(model, opt)
    calls = {"n": 0}

    def interrupted(m, batch):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return task.loss(m, batch)

    res = RangeTest(model, opt, task.train_loader(), interrupted, device="cpu").run(
        RangeTestSettings(steps=50)
    )
    assert res.curves[0].stop_reason == "interrupted"
    assert res.curves[0].steps_run == 11
    assert res.lr is None and "partial" in res.warnings[0]
    _same(before, _state(model, opt))


def test_accumulation_advances_lr_per_optimizer_step(tiny_task):
    task, model, opt = _setup(tiny_task)
    lrs = []

    def loss(m, batch):
        lrs.append(opt.param_groups[0]["lr"])
        return task.loss(m, batch)

    s = RangeTestSettings(start_lr=1e-4, end_lr=1e-2, steps=10, accumulate=3, diverge=1e9)
    res = RangeTest(model, opt, task.train_loader(), loss, device="cpu").run(s, repeats=1)
    assert len(lrs) == 30
    assert len(set(lrs)) == 10
    assert all(lrs[3 * i] == lrs[3 * i + 1] == lrs[3 * i + 2] for i in range(10))
    assert res.curves[0].steps_run == 10


def test_param_groups_keep_their_ratios(tiny_task):
    task = load_task(tiny_task)
    model = task.build_model()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.01},
            {"params": model[3].parameters(), "lr": 0.1},
        ],
        lr=0.1,
    )
    ratios = []

    def loss(m, batch):
        ratios.append(opt.param_groups[0]["lr"] / opt.param_groups[1]["lr"])
        return task.loss(m, batch)

    RangeTest(model, opt, task.train_loader(), loss, device="cpu").run(
        RangeTestSettings(start_lr=1e-5, end_lr=1e-3, steps=10, diverge=1e9)
    )
    assert all(math.isclose(r, 0.1) for r in ratios)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]


def test_repeats_start_from_the_same_weights():
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def loss(m, b):
        return nn.functional.cross_entropy(m(b[0]), b[1])

    res = RangeTest(model, opt, loader, loss, device="cpu").run(
        RangeTestSettings(steps=12), repeats=3
    )
    firsts = [c.losses[0] for c in res.curves]
    assert firsts[0] == firsts[1] == firsts[2]
    assert len(res.per_repeat["valley"]) == 3
    lo, hi = res.aggregate()[3:]
    assert np.all(lo <= hi + 1e-12)


def test_val_mode_and_bf16_run_on_cpu(tiny_task):
    res = find_lr(
        tiny_task, steps=30, val_every=5, val_batches=2, device="cpu", amp="bf16", repeats=1
    )
    c = res.curves[0]
    assert c.val_lrs is not None and len(c.val_lrs) >= 1
    assert res.identical


def test_settings_are_validated_with_the_value_quoted():
    with pytest.raises(ConfigError, match="-1"):
        RangeTestSettings(start_lr=-1)
    with pytest.raises(ConfigError, match="end_lr"):
        RangeTestSettings(start_lr=1.0, end_lr=0.5)
    with pytest.raises(ConfigError, match="'cubic'"):
        RangeTestSettings(mode="cubic")


def test_result_dict_and_suggestions(tiny_task):
    res = find_lr(tiny_task, steps=60, device="cpu", repeats=1)
    d = res.to_dict()
    assert d["command"] == "find"
    assert d["weights"]["restored"] is True
    assert set(d["suggestions"]) >= {"valley", "steepest", "minimum", "slide"}
    assert res.lr is not None and 1e-7 <= res.lr <= 10


def test_guard_flat_and_never_diverged(tiny_task):
    res = find_lr(tiny_task, start_lr=1e-9, end_lr=1e-7, steps=30, device="cpu", repeats=1)
    text = " ".join(res.warnings)
    assert "flat" in text and "never diverged" in text


def test_guard_diverged_at_once(tiny_task):
    res = find_lr(tiny_task, start_lr=1e3, end_lr=1e6, steps=50, device="cpu", repeats=1)
    text = " ".join(res.warnings)
    assert "diverged almost at once" in text and "usable points" in text
    assert res.lr is None


def test_guard_nan_in_first_steps(tiny_task):
    task = load_task(tiny_task)
    model = task.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = RangeTest(
        model, opt, task.train_loader(), lambda m, b: task.loss(m, b) * float("nan"), device="cpu"
    ).run(RangeTestSettings(steps=20), repeats=1)
    assert res.curves[0].stop_reason == "nan"
    assert any("NaN" in w for w in res.warnings)


def test_repeats_draw_a_band_and_report_spread(tiny_task, tmp_path):
    from lrtune.report.find_plot import lr_find_plot_data

    res = find_lr(tiny_task, steps=40, repeats=2, device="cpu")
    data = lr_find_plot_data(res)
    assert data.band is not None
    lo, hi = data.band
    ok = np.isfinite(lo) & np.isfinite(hi)
    assert lo.shape == data.smoothed.shape and ok.sum() > 20 and np.all(lo[ok] <= hi[ok] + 1e-12)
    assert res.confidence in ("high", "medium", "low", "none")
    fig = res.plot(tmp_path / "band.png")
    assert (tmp_path / "band.png").stat().st_size > 10_000
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "min-max over runs" in labels


def test_fp16_skipped_steps_do_not_advance_the_lr(tiny_task):
    task, model, opt = _setup(tiny_task)
    before = _state(model, opt)
    seen = []

    def loss(m, batch):
        seen.append(opt.param_groups[0]["lr"])
        return task.loss(m, batch)

    # A huge initial scale overflows fp16 gradients: the scaler skips and halves until it fits.
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    s = RangeTestSettings(start_lr=1e-4, end_lr=1e-2, steps=10, amp="fp16", diverge=1e9)
    res = RangeTest(model, opt, task.train_loader(), loss, device="cpu", scaler=scaler).run(
        s, repeats=1
    )
    c = res.curves[0]
    assert c.skipped_steps, "expected the scaler to skip the first overflowing steps"
    assert len(seen) == 10 + len(c.skipped_steps)
    assert len(set(seen)) == 10 and seen[0] == seen[1] == 1e-4  # the first LR was retried
    assert list(c.lrs) == list(s.schedule())
    assert scaler.get_scale() == 2.0**40  # the user's scaler is restored too
    _same(before, _state(model, opt))


def test_task_optimizer_takes_cli_hyperparameters(write_task):
    from lrtune.errors import ConfigError

    path = write_task(
        """
import torch
from torch import nn
from torch.utils.data import TensorDataset

def model():
    return nn.Linear(3, 2)

def train_data():
    return TensorDataset(torch.randn(16, 3), torch.zeros(16).long())

def optimizer(params, lr):
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
""",
        "own_opt",
    )
    task = load_task(path)
    opt = task.build_optimizer(
        task.build_model().parameters(), 1e-3, weight_decay=0.5, momentum=0.8
    )
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["weight_decay"] == 0.5
    assert opt.param_groups[0]["betas"] == (0.8, 0.999)
    with pytest.raises(ConfigError, match="no hyper-parameter 'nesterov'"):
        task.build_optimizer(task.build_model().parameters(), 1e-3, nesterov=True)
    res = find_lr(
        task,
        steps=20,
        repeats=1,
        device="cpu",
        batch_size=4,
        optimizer_params={"weight_decay": 0.5},
    )
    assert res.info["optimizer"] == "AdamW"


def test_find_lr_repeats_sample_the_init_and_restore_the_first(tiny_task):
    """Each repeat of find_lr starts from the task's model built with its own seed; the
    model handed back is the one built with the run's seed."""
    import lrtune.rangetest as rt

    built = []
    real_run = rt.RangeTest.run

    def spy(self, *a, **kw):
        built.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return real_run(self, *a, **kw)

    rt.RangeTest.run = spy  # type: ignore[method-assign]
    try:
        res = find_lr(tiny_task, steps=20, repeats=3, device="cpu", seed=5)
    finally:
        rt.RangeTest.run = real_run  # type: ignore[method-assign]
    firsts = [c.losses[0] for c in res.curves]
    assert len(set(firsts)) == 3, "the repeats started from the same weights"
    assert [c.seed for c in res.curves] == [5, 6, 7]
    assert res.identical
    # Repeat 0 ran on the seed-5 model; rebuilding with seed 6 gives other weights.
    from lrtune.runtime import seed_everything

    task = load_task(tiny_task)
    seed_everything(6)
    other = task.build_model().state_dict()
    assert any(not torch.equal(built[0][k], other[k]) for k in other)


@pytest.mark.parametrize(("target", "expected"), [(math.inf, 3), (0.0, 5)])
def test_auto_repeats_add_runs_until_the_headline_is_precise(
    tiny_task, monkeypatch, target, expected
):
    """ "auto" stops at 3 when the repeats agree (target met) and adds runs up to
    max_repeats while they do not (a target no run can meet)."""
    import lrtune.rangetest as rt

    monkeypatch.setattr(rt, "TARGET_INTERVAL", target)
    res = find_lr(tiny_task, steps=40, repeats="auto", max_repeats=5, device="cpu")
    assert len(res.curves) == expected
    assert len(res.per_repeat[res.rule]) == expected
    assert res.identical


def test_auto_repeats_stop_when_no_repeat_suggests_anything():
    # A loss the weights cannot move: a flat curve, no rule suggests anything, and more
    # repeats of it would not either.
    x, y = torch.randn(64, 4), torch.randn(64)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)

    def loss(m, b):
        return (m(b[0]) * 0.0).sum() + 1.0

    res = RangeTest(model, opt, loader, loss, device="cpu").run(
        RangeTestSettings(steps=30), repeats="auto", max_repeats=6
    )
    assert res.lr is None and len(res.curves) == 3


@pytest.mark.parametrize(
    ("repeats", "max_repeats", "expected"),
    [("auto", 10, (3, 10)), ("auto", 2, (2, 2)), (4, 10, (4, 4)), ("4", 10, (4, 4))],
)
def test_repeat_range(repeats, max_repeats, expected):
    from lrtune.rangetest import repeat_range

    assert repeat_range(repeats, max_repeats) == expected


@pytest.mark.parametrize(
    ("repeats", "max_repeats"), [(0, 10), ("many", 10), (2.5, 10), ("auto", 0)]
)
def test_repeat_range_rejects_bad_values(repeats, max_repeats):
    from lrtune.rangetest import repeat_range

    with pytest.raises(ConfigError, match="repeats"):
        repeat_range(repeats, max_repeats)


def _result_with_repeats(values):
    from lrtune.rangetest import Curve, RangeTestResult, _repeat_warnings
    from lrtune.suggest import combine

    curves = [
        Curve(np.array([1e-3]), np.array([1.0]), np.array([1.0]), "end", s, 0.0, 1)
        for s in range(len(values))
    ]
    res = RangeTestResult(
        settings=RangeTestSettings(),
        curves=curves,
        rule="consensus",
        suggestions={"consensus": combine(values).lr},
        per_repeat={"consensus": list(values)},
        warnings=[],
        checksum_before="",
        checksum_after="",
        seconds=0.0,
    )
    return res, _repeat_warnings(res)


def test_agreeing_repeats_give_high_confidence_and_no_warning():
    res, warns = _result_with_repeats([5e-3, 5.2e-3, 4.9e-3])
    assert res.confidence == "high" and warns == []
    lo, hi = res.to_dict()["headline"]["interval"]
    assert lo < res.lr < hi


def test_an_outlier_repeat_is_left_out_and_reported():
    res, warns = _result_with_repeats([5e-3, 5.2e-3, 2e-5, 4.9e-3])
    assert res.lr == pytest.approx((5e-3 * 5.2e-3 * 4.9e-3) ** (1 / 3))
    assert any("1 of 4 range tests" in w and "2e-05" in w for w in warns)
    assert res.to_dict()["headline"]["outliers"] == [2e-5]


def test_disagreeing_repeats_lower_the_confidence_and_say_so():
    res, warns = _result_with_repeats([2e-3, 9e-3, 4e-3, 1.5e-2, 2.5e-3])
    assert res.confidence in ("medium", "low")
    assert any("range tests disagree" in w and "--max-repeats" in w for w in warns)


@pytest.mark.parametrize(
    ("values", "factor", "expected"),
    [
        ([5e-3, 5.6e-3, 4.5e-3], 1.31, "high"),
        ([5e-3, 6e-3, 4.2e-3, 5.5e-3], 1.28, "high"),
        ([4e-3, 5e-3, 6e-3], 1.66, "medium"),
        ([2e-3, 9e-3, 4e-3], 6.48, "low"),
        ([1e-3, 3e-2, 5e-3], 68.3, "low"),
    ],
)
def test_confidence_reads_the_printed_interval(values, factor, expected):
    """'high' when the 95% interval shown to the user is within 1.45x (TARGET_INTERVAL,
    where --repeats auto stops), 'medium' within 1.45**2 = 2.1x, else 'low'."""
    res, _ = _result_with_repeats(values)
    assert res.uncertainty() == pytest.approx(factor, rel=0.01)
    assert res.confidence == expected


def test_interval_text_keeps_two_significant_digits():
    """The interval the table, the answer line and the plot print: 0.06 is '0.060', so both
    ends read with the same precision ('0.029 .. 0.060', not '0.029 .. 0.06')."""
    res, _ = _result_with_repeats([4e-3, 5e-3, 6e-3])  # 1.66x around 4.93e-3
    assert res.interval_text() == "0.0030 .. 0.0082"
    assert _two_digits(0.06) == "0.060"
    assert _two_digits(0.0297) == "0.030"
    assert _two_digits(12.3) == "12"
    assert _two_digits(1.2e-5) == "1.2e-05"
    single, _ = _result_with_repeats([5e-3])
    assert single.interval_text() is None  # one run: no interval
