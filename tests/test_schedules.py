"""Schedules: every registry entry's torch scheduler, closed-form curve and pasted snippet
agree; specs round-trip through YAML; bad specs fail in one line with exit code 2."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner

from lrtune import schedules as S
from lrtune.cli.schedule import schedule as schedule_cmd
from lrtune.errors import ConfigError
from lrtune.report.schedule_plot import schedule_plot_data, write_schedule_files

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs" / "schedules").glob("*.yaml"))
EPOCHS, SPE, LR = 5, 6, 0.1

# At least one spec per registry entry, plus warmup and interval variants.
SPECS: list[dict[str, Any]] = [
    {"name": "constant"},
    {"name": "constant", "interval": "step", "warmup": {"steps": 4, "start_factor": 0.1}},
    {"name": "step", "step_size": 2},
    {"name": "step", "interval": "step", "step_size": 7, "gamma": 0.5, "warmup": {"steps": 5}},
    {"name": "multistep", "milestones": [2, 4]},
    {"name": "multistep", "milestones": [1, 3], "warmup": {"epochs": 1}},
    {"name": "exponential", "gamma": 0.8},
    {"name": "exponential", "interval": "step", "gamma": 0.95, "warmup": {"epochs": 0.5}},
    {"name": "cosine"},
    {"name": "cosine", "interval": "step", "warmup": {"epochs": 1}},
    {"name": "cosine", "interval": "step", "T_max": 9, "eta_min": 0.001},
    {"name": "cosine_warm_restarts", "interval": "step", "T_0": 4, "T_mult": 2},
    {"name": "cosine_warm_restarts", "T_0": 2, "eta_min": 0.01, "warmup": {"epochs": 1}},
    {"name": "onecycle"},
    {"name": "onecycle", "max_lr": 0.3, "three_phase": True, "anneal_strategy": "linear"},
    {"name": "onecycle", "interval": "epoch", "pct_start": 0.5, "cycle_momentum": False},
    {"name": "cyclic"},
    {"name": "cyclic", "mode": "triangular2", "step_size_up": 4},
    {"name": "cyclic", "mode": "exp_range", "gamma": 0.97, "step_size_up": 3, "step_size_down": 5},
    {"name": "linear"},
    {"name": "linear", "interval": "step", "end_factor": 0.1, "warmup": {"steps": 6}},
    {"name": "polynomial", "power": 2.0},
    {"name": "polynomial", "interval": "step", "total_iters": 20, "warmup": {"steps": 3}},
    {"name": "inverse_sqrt"},
    {"name": "inverse_sqrt", "interval": "step", "warmup_iters": 10},
    {"name": "wsd"},
    {"name": "wsd", "decay_shape": "sqrt", "end_factor": 0.1},
    {"name": "wsd", "interval": "epoch", "decay_shape": "cosine", "decay_pct": 0.4},
    {"name": "plateau"},
    {"name": "plateau", "warmup": {"epochs": 2, "start_factor": 0.2}},
]
IDS = [
    f"{s['name']}-{s.get('interval', 'default')}{'-warmup' if 'warmup' in s else ''}-{i}"
    for i, s in enumerate(SPECS)
]


def _optimizer(lr: float = LR) -> torch.optim.Optimizer:
    model = torch.nn.Linear(3, 1)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _improving(epoch: int) -> float:
    """A validation loss that keeps improving (so plateau never cuts)."""
    return 1.0 / (epoch + 1)


def _stepped_curve(spec: dict[str, Any]) -> list[float]:
    """The LR of every optimizer step when the training-loop protocol drives attach()."""
    opt = _optimizer()
    stepper = S.attach(spec, opt, SPE, EPOCHS)
    lrs = []
    for epoch in range(EPOCHS):
        for _ in range(SPE):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            stepper.step_batch()
        stepper.step_epoch(_improving(epoch))
    return lrs


def _snippet_curve(spec: dict[str, Any]) -> list[float]:
    """The LR of every optimizer step when the pasted snippet is used as its comments say."""
    opt = _optimizer()
    ns: dict[str, Any] = {"optimizer": opt}
    exec(S.to_python(spec, LR, SPE, EPOCHS), ns)
    scheduler = ns["scheduler"]
    interval = S.validate(spec)["interval"]
    plateau = S.get_schedule(spec["name"]).needs_metric
    lrs = []
    for epoch in range(EPOCHS):
        for _ in range(SPE):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if interval == "step":
                scheduler.step()
        if interval == "epoch":
            if plateau and epoch < ns.get("warmup_epochs", 0):
                ns["warmup_scheduler"].step()
            elif plateau:
                scheduler.step(_improving(epoch))
            else:
                scheduler.step()
    return lrs


def test_specs_cover_the_registry() -> None:
    assert {s["name"] for s in SPECS} == set(S.REGISTRY)
    assert {p.stem for p in CONFIGS} == set(S.REGISTRY)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_build_lr_curve_and_snippet_agree(spec: dict[str, Any]) -> None:
    want = S.lr_curve(spec, LR, SPE, EPOCHS)
    assert len(want) == EPOCHS * SPE
    assert all(v >= 0 for v in want)
    assert max(abs(a - b) for a, b in zip(_stepped_curve(spec), want, strict=True)) < 1e-12
    assert max(abs(a - b) for a, b in zip(_snippet_curve(spec), want, strict=True)) < 1e-12


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_yaml_round_trip_is_lossless(spec: dict[str, Any]) -> None:
    norm = S.validate(spec)
    assert S.from_yaml(S.to_yaml(spec)) == norm
    assert S.validate(norm) == norm  # idempotent
    resolved = S.resolve(spec, SPE, EPOCHS, base_lr=LR)
    assert S.from_yaml(S.to_yaml(resolved)) == S.validate(resolved)
    # a resolved spec draws the same curve as the spec it came from
    assert S.lr_curve(resolved, LR, SPE, EPOCHS) == S.lr_curve(spec, LR, SPE, EPOCHS)


def test_build_uses_torch_classes() -> None:
    sched = S.build({"name": "cosine", "warmup": {"epochs": 1}}, _optimizer(), SPE, EPOCHS)
    assert type(sched).__name__ == "SequentialLR"
    kinds = [type(s).__name__ for s in sched._schedulers]
    assert kinds == ["LinearLR", "CosineAnnealingLR"]
    assert type(S.build({"name": "wsd"}, _optimizer(), SPE, EPOCHS)).__name__ == "LambdaLR"
    assert type(S.build({"name": "onecycle"}, _optimizer(), SPE, EPOCHS)).__name__ == "OneCycleLR"
    # LambdaLR factors are objects, so the scheduler's state pickles
    pickle.dumps(S.build({"name": "inverse_sqrt"}, _optimizer(), SPE, EPOCHS).state_dict())


def test_param_groups_with_different_lrs_each_follow_their_curve() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": model[1].parameters(), "lr": 0.01},
        ],
        momentum=0.9,
    )
    spec = {"name": "onecycle"}
    stepper = S.attach(spec, opt, SPE, EPOCHS)
    got: list[list[float]] = [[], []]
    for _ in range(EPOCHS * SPE):
        for i, group in enumerate(opt.param_groups):
            got[i].append(group["lr"])
        opt.step()
        stepper.step_batch()
    for i, base in enumerate((0.1, 0.01)):
        want = S.lr_curve(spec, base, SPE, EPOCHS)
        assert max(abs(a - b) for a, b in zip(got[i], want, strict=True)) < 1e-12


def test_plateau_cuts_the_lr_when_the_loss_stalls() -> None:
    opt = _optimizer()
    stepper = S.attach({"name": "plateau", "patience": 1, "factor": 0.5}, opt, SPE, EPOCHS)
    assert stepper.needs_metric and stepper.interval == "epoch"
    for _ in range(3):
        stepper.step_batch()
        stepper.step_epoch(1.0)  # flat: the first is the best, then 2 bad epochs > patience 1
    assert opt.param_groups[0]["lr"] == pytest.approx(LR * 0.5)


def test_derived_defaults_fit_the_run() -> None:
    assert S.resolve({"name": "cosine", "interval": "step"}, 10, 3)["T_max"] == 30
    warm = S.resolve({"name": "cosine", "interval": "step", "warmup": {"epochs": 1}}, 10, 3)
    assert warm["T_max"] == 20 and list(warm)[-1] == "warmup"
    assert S.resolve({"name": "onecycle"}, 10, 3, base_lr=0.3)["max_lr"] == 0.3
    cyc = S.resolve({"name": "cyclic"}, 10, 4, base_lr=0.2)
    assert (cyc["base_lr"], cyc["max_lr"], cyc["step_size_up"]) == (0.05, 0.2, 10)
    assert S.to_yaml({"name": "cosine"}).strip().splitlines() == [
        "name: cosine",
        "interval: epoch",
        "eta_min: 0.0",
    ]


@pytest.mark.parametrize(
    ("warmup", "interval", "units"),
    [
        ({"epochs": 2}, "epoch", 2),
        ({"epochs": 2}, "step", 2 * SPE),
        ({"epochs": 0.5}, "step", SPE // 2),
        ({"steps": 4}, "step", 4),
        ({"steps": 2 * SPE}, "epoch", 2),
    ],
)
def test_warmup_units(warmup: dict[str, Any], interval: str, units: int) -> None:
    spec = {"name": "constant", "interval": interval, "warmup": warmup}
    plan = S.plan(spec, SPE, EPOCHS)
    assert plan.warmup_units == units
    curve = S.lr_curve(spec, LR, SPE, EPOCHS)
    steps = units * plan.unit_steps
    assert curve[0] == pytest.approx(LR * 0.01)
    assert curve[steps - 1] < LR and curve[steps] == LR  # the ramp ends where the schedule starts
    assert plan.phases()[0] == ("warmup", 0, steps)


BAD_SPECS = [
    ({"name": "cosin"}, "unknown schedule 'cosin' (did you mean 'cosine'?); valid: constant"),
    ({"name": "cosine", "tmax": 3}, "unknown parameter 'tmax' (did you mean 'T_max'?)"),
    ({"name": "step"}, "missing required parameter 'step_size'"),
    ({"name": "step", "step_size": 0}, "'step_size' must be >= 1, got 0"),
    ({"name": "step", "step_size": "ten"}, "'step_size' must be an integer, got 'ten'"),
    ({"name": "step", "step_size": 2, "gamma": 1.5}, "'gamma' must be in (0.0, 1.0], got 1.5"),
    ({"name": "multistep", "milestones": [3, 2]}, "strictly increasing, got [3, 2] (2 after 3)"),
    ({"name": "multistep", "milestones": 3}, "'milestones' must be a list of integers"),
    ({"name": "onecycle", "anneal_strategy": "cosine"}, "must be one of cos, linear, got 'cosine'"),
    ({"name": "onecycle", "three_phase": "yes"}, "'three_phase' must be true or false"),
    ({"name": "cosine", "interval": "batch"}, "'interval' must be 'epoch' or 'step', got 'batch'"),
    ({"name": "plateau", "interval": "step"}, "needs interval: epoch"),
    ({"name": "onecycle", "warmup": {"epochs": 1}}, "'warmup' does not apply"),
    ({"name": "cosine", "warmup": {"epochs": 1, "steps": 3}}, "exactly one of 'epochs' or 'steps'"),
    ({"name": "cosine", "warmup": {"epoch": 1}}, "unknown warmup key 'epoch' (did you mean"),
    ({"name": "cosine", "warmup": 3}, "'warmup' must be a mapping"),
    ({"name": "cyclic", "base_lr": 0.2, "max_lr": 0.1}, "base_lr 0.2 must be below max_lr 0.1"),
    ({"name": "wsd", "warmup_pct": 0.5, "decay_pct": 0.6}, "warmup_pct + decay_pct must be <= 1"),
    ({"gamma": 0.1}, "missing 'name'"),
    ("not-a-schedule", "unknown schedule 'not-a-schedule'"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS, ids=[m[:30] for _, m in BAD_SPECS])
def test_bad_specs_fail_in_one_line(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        S.validate(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "constant", "warmup": {"epochs": 5}}, "leaves no room in a run of 5 epochs"),
        ({"name": "constant", "warmup": {"steps": 4}}, "is not a whole number of epochs"),
        ({"name": "constant", "warmup": {"epochs": 1.5}}, "is not whole with interval: epoch"),
        ({"name": "onecycle", "total_steps": 10}, "total_steps 10 is shorter than the run"),
        ({"name": "onecycle", "interval": "epoch", "pct_start": 0.1}, "must be > 1"),
    ],
)
def test_specs_that_do_not_fit_the_run(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        S.lr_curve(spec, LR, SPE, EPOCHS)
    assert message in str(info.value)


def test_run_warnings() -> None:
    warn = S.run_warnings({"name": "multistep", "milestones": [3, 30]}, SPE, EPOCHS)
    assert len(warn) == 1 and "milestones 30 is past the end of the run (5 epochs)" in warn[0]
    warn = S.run_warnings({"name": "cosine", "T_max": 2}, SPE, EPOCHS)
    assert len(warn) == 1 and "climbs back up" in warn[0]
    assert S.run_warnings({"name": "cosine"}, SPE, EPOCHS) == []


def test_torch_errors_become_config_errors() -> None:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adagrad(model.parameters(), lr=0.1)  # no momentum, no betas
    with pytest.raises(ConfigError, match="schedule 'onecycle': optimizer must support momentum"):
        S.build({"name": "onecycle"}, opt, SPE, EPOCHS)
    S.build({"name": "onecycle", "cycle_momentum": False}, opt, SPE, EPOCHS)


def test_recommend_by_family() -> None:
    sgd = S.recommend(0.2, "sgd", 10, 50)
    assert sgd["name"] == "onecycle" and sgd["spec"]["max_lr"] == 0.2
    assert sgd["spec"]["total_steps"] == 500
    assert sgd["numbers"]["peak_lr"] == pytest.approx(0.2)
    assert sgd["numbers"]["start_lr"] == pytest.approx(0.2 / 25)
    assert "0.2 / 25 = 0.008" in sgd["why"]
    adam = S.recommend(3e-3, "adam", 10, 50)
    assert adam["name"] == "cosine" and adam["spec"]["warmup"] == {
        "steps": 25,
        "start_factor": 0.01,
    }
    assert adam["numbers"]["warmup_steps"] == 25 and adam["numbers"]["peak_step"] == 25
    assert "25 steps" in adam["why"] and "0.003" in adam["why"]
    curve = S.lr_curve(adam["spec"], adam["lr"], 50, 10)
    assert adam["numbers"]["final_lr"] == curve[-1]
    with pytest.raises(ConfigError, match="unknown optimizer family 'lion'"):
        S.recommend(0.1, "lion", 10, 50)


@pytest.mark.parametrize("name", list(S.REGISTRY))
@pytest.mark.parametrize("family", ["sgd", "adam"])
def test_recommend_every_schedule(name: str, family: str) -> None:
    rec = S.recommend(0.05, family, 6, 20, name=name)
    assert rec["name"] == name and rec["why"]
    assert S.validate(rec["spec"]) == rec["spec"]  # already normalised, every number explicit
    assert None not in rec["spec"].values()
    assert rec["numbers"]["peak_lr"] == pytest.approx(0.05)
    S.build(rec["spec"], _optimizer(0.05), 20, 6)


def test_write_schedule_files(tmp_path: Path) -> None:
    rec = S.recommend(0.1, "adam", 4, 10)
    files = write_schedule_files(tmp_path, rec["spec"], 0.1, 10, 4)
    assert {p.name for p in files.values()} == {
        "schedule.yaml",
        "schedule.py",
        "schedule.png",
        "schedule.csv",
    }
    assert S.validate(yaml.safe_load(files["yaml"].read_text())) == rec["spec"]
    compile(files["python"].read_text(), "schedule.py", "exec")
    assert files["png"].read_bytes()[:4] == b"\x89PNG"
    assert len(files["csv"].read_text().splitlines()) == 1 + 40


def test_plot_data() -> None:
    data = schedule_plot_data({"name": "wsd"}, 0.1, 10, 30)
    assert [label for label, _, _ in data.phases] == ["warmup", "stable", "linear decay"]
    assert data.phases[0] == ("warmup", 0, 15) and data.phases[-1][2] == 300
    assert len(data.table) == 20 and data.table[0] == (1, 0, data.lrs[0])
    assert data.table[-1][0] == 30 and data.peak == (15, 0.1)
    plateau = schedule_plot_data({"name": "plateau"}, 0.1, 10, 3)
    assert "as if the validation loss keeps improving" in plateau.note


def _cli(*args: str) -> Any:
    return CliRunner().invoke(schedule_cmd, list(args), catch_exceptions=False)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_example_config_renders(path: Path, tmp_path: Path) -> None:
    res = _cli(
        "show", str(path), "--epochs", "10", "--steps-per-epoch", "20", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "schedule.png").stat().st_size > 10_000
    assert "warning" not in res.stderr  # the examples fit the preview run
    assert "epoch" in res.stdout and "end" in res.stdout


def test_show_json_and_run_configs(tmp_path: Path) -> None:
    config = tmp_path / "check.yaml"
    config.write_text("task: task.py\nschedule:\n  name: multistep\n  milestones: [2, 40]\n")
    res = _cli(
        "show",
        str(config),
        "--epochs",
        "4",
        "--steps-per-epoch",
        "5",
        "--lr",
        "0.5",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["name"] == "multistep" and data["epoch_lrs"][2]["lr"] == pytest.approx(0.05)
    assert "milestones 40 is past the end of the run" in res.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: cosin\n", "unknown schedule 'cosin' (did you mean 'cosine'?)"),
        ("name: step\n", "missing required parameter 'step_size'"),
        ("name: multistep\nmilestones: [5, 5]\n", "must be strictly increasing"),
        ("name: step\nstep_size: -1\n", "'step_size' must be >= 1, got -1"),
        ("name: [unclosed\n", "invalid YAML"),
        ("name: constant\nwarmup: {epochs: 20}\n", "leaves no room in a run of 10 epochs"),
    ],
)
def test_show_bad_spec_exit_2_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = _cli("show", str(path), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0] and str(path) in lines[0]


def test_show_missing_file_exit_2(tmp_path: Path) -> None:
    res = _cli("show", str(tmp_path / "nope.yaml"))
    assert res.exit_code == 2 and "config file not found" in res.stderr


def test_list() -> None:
    res = _cli("list")
    assert res.exit_code == 0, res.output
    for name in S.REGISTRY:
        assert name in res.stdout
    assert "milestones=required" in res.stdout
    data = json.loads(_cli("list", "--json").stdout)
    assert data["cosine"]["params"]["T_max"]["default"] == "run length"
    assert data["onecycle"]["warmup"] is False


def test_curves_need_no_torch() -> None:
    code = (
        "import sys; from lrtune import schedules as S;"
        "S.lr_curve({'name': 'onecycle'}, 0.1, 10, 3); S.to_python({'name': 'wsd'}, 0.1, 10, 3);"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_restarts_warn_when_the_run_ends_mid_cycle() -> None:
    spec = {"name": "cosine_warm_restarts", "interval": "step", "T_0": 100, "T_mult": 2}
    (warn,) = S.run_warnings(spec, 100, 10)
    assert "ends 300/800 steps into a cycle" in warn and "100, 300, 700, 1500 steps" in warn
    assert S.run_warnings({**spec, "T_0": 200, "T_mult": 4}, 100, 10) == []
