"""lrtune doctor: each check FAILs on a task broken for it, and passes on healthy tasks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from lrtune.cli import cli
from lrtune.doctor import CHECKS, DoctorSettings, run_doctor
from lrtune.errors import ConfigError, ExitCode

REPO = Path(__file__).resolve().parent.parent
HEALTHY_EXAMPLE = REPO / "examples" / "digits_mlp.py"

# A small, learnable 3-class task; the {placeholders} are where the broken variants differ.
BASE = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(192, 8, generator=g)
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(123))
    y = (x @ w).argmax(dim=1)
    return x, y

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)
        {extra_layer}

    def forward(self, x):
        {forward}

def model():
    net = Net()
    {model_tweak}
    return net

def train_data():
    x, y = _data(0)
    {data_tweak}
    return TensorDataset(x, y)

def val_data():
    x, y = _data(1)
    {val_tweak}
    return TensorDataset(x, y)
"""
DEFAULTS = {
    "extra_layer": "pass",
    "forward": "return self.head(self.body(x))",
    "model_tweak": "pass",
    "data_tweak": "pass",
    "val_tweak": "pass",
}

# name -> (the check that must FAIL, the changes to BASE)
BROKEN: dict[str, tuple[str, dict[str, str]]] = {
    "last_layer_scaled_up": (
        "initial_loss",
        {"model_tweak": "net.head.weight.data.mul_(50.0); net.head.bias.data.zero_()"},
    ),
    "labels_out_of_range": ("labels", {"data_tweak": "y = y + 1  # 1-based labels, 3 outputs"}),
    "frozen_layer": ("gradients", {"model_tweak": "net.body.requires_grad_(False)"}),
    "unused_layer": ("gradients", {"extra_layer": "self.unused = nn.Linear(32, 32)"}),
    "unnormalised_inputs": ("inputs", {"data_tweak": "x = x * 100 + 500"}),
    "cannot_overfit": ("overfit", {"forward": "return self.head(self.body(x * 0))"}),
    "empty_val": ("data", {"val_tweak": "x, y = x[:0], y[:0]"}),
    "val_inside_train": ("overlap", {"val_tweak": "x, y = _data(0)"}),
    "nan_inputs": ("initial_loss", {"data_tweak": "x[0, 0] = float('nan')"}),
    "nan_inputs_seen_by_inputs_check": ("inputs", {"data_tweak": "x[0, 0] = float('nan')"}),
}


def task_source(**changes: str) -> str:
    return BASE.format(**{**DEFAULTS, **changes})


@pytest.fixture
def base_task(write_task: Callable[[str, str], Path]) -> Path:
    return write_task(task_source(), "base")


def _cpu(**kw: object) -> DoctorSettings:
    return DoctorSettings(device="cpu", **kw)  # type: ignore[arg-type]


def test_every_check_has_a_broken_task() -> None:
    covered = {check for check, _ in BROKEN.values()}
    assert covered >= set(CHECKS) - {"range_test"}


@pytest.mark.parametrize("name", list(BROKEN))
def test_check_fails_on_its_broken_task(name: str, write_task: Callable[[str, str], Path]) -> None:
    check, changes = BROKEN[name]
    path = write_task(task_source(**changes), name)
    report, _ = run_doctor(path, _cpu(only=(check,)))
    result = report.get(check)
    assert result.verdict == "FAIL", (result.measured, result.advice)
    assert result.advice, "a FAIL must say what to do"
    assert report.exit_code == ExitCode.FAILED


def test_base_task_passes_every_check(base_task: Path) -> None:
    report, _ = run_doctor(base_task, _cpu(skip=("range_test",)))
    assert {c.name: c.verdict for c in report.checks} == {
        n: "PASS" for n in CHECKS if n != "range_test"
    }, [(c.name, c.measured) for c in report.checks]
    assert report.exit_code == ExitCode.OK


def test_healthy_example_passes_all_checks() -> None:
    report, plot_data = run_doctor(HEALTHY_EXAMPLE, _cpu())
    verdicts = {c.name: c.verdict for c in report.checks}
    assert verdicts == {n: "PASS" for n in CHECKS}, [(c.name, c.measured) for c in report.checks]
    assert report.exit_code == ExitCode.OK
    assert report.get("range_test").values["lr"] > 0
    assert report.get("initial_loss").values["reference_name"] == "ln(10)"
    assert plot_data["overfit"]["losses"][-1] <= plot_data["overfit"]["target"]


def test_regression_initial_loss_against_target_variance(
    write_task: Callable[[str, str], Path], tiny_regression: Path
) -> None:
    report, _ = run_doctor(tiny_regression, _cpu(only=("initial_loss",)))
    ok = report.get("initial_loss")
    assert ok.verdict == "PASS" and ok.values["reference_name"] == "Var(y)"
    src = tiny_regression.read_text().replace(
        "return TensorDataset(x, y)", "return TensorDataset(x, y + 100)"
    )
    shifted = write_task(src, "shifted_targets")
    report, _ = run_doctor(shifted, _cpu(only=("initial_loss",)))
    bad = report.get("initial_loss")
    assert bad.verdict == "FAIL" and bad.values["ratio"] > 10


def test_allow_frozen_downgrades_to_warn(write_task: Callable[[str, str], Path]) -> None:
    _, changes = BROKEN["frozen_layer"]
    path = write_task(task_source(**changes), "frozen")
    report, _ = run_doctor(path, _cpu(only=("gradients",), allow_frozen=True))
    result = report.get("gradients")
    assert result.verdict == "WARN" and "frozen" in result.measured
    assert report.exit_code == ExitCode.OK


def test_exploding_lr_fails_gradients(base_task: Path) -> None:
    report, _ = run_doctor(base_task, _cpu(only=("gradients",), lr=1e4))
    result = report.get("gradients")
    assert result.verdict == "FAIL", result.measured
    assert "LR" in result.advice


def test_user_code_error_is_a_fail_row(write_task: Callable[[str, str], Path]) -> None:
    path = write_task(
        task_source(forward="raise RuntimeError('shape mismatch in forward')"), "boom"
    )
    report, _ = run_doctor(path, _cpu(only=("initial_loss", "overfit")))
    for c in report.checks:
        assert c.verdict == "FAIL" and "shape mismatch" in c.measured


def test_failed_data_check_skips_the_rest(write_task: Callable[[str, str], Path]) -> None:
    path = write_task(task_source(data_tweak="x, y = x[:0], y[:0]"), "empty_train")
    report, _ = run_doctor(path, _cpu(skip=("range_test",)))
    assert report.get("data").verdict == "FAIL"
    assert {c.verdict for c in report.checks[1:]} == {"SKIP"}


def test_custom_step_skips_pair_checks(write_task: Callable[[str, str], Path]) -> None:
    src = task_source() + (
        "\ndef step(model, batch):\n"
        "    x, y = batch\n"
        "    return nn.functional.cross_entropy(model(x), y)\n"
    )
    path = write_task(src, "custom_step")
    report, _ = run_doctor(path, _cpu(skip=("range_test",)))
    verdicts = {c.name: c.verdict for c in report.checks}
    assert verdicts["labels"] == verdicts["inputs"] == verdicts["overlap"] == "SKIP"
    assert verdicts["overfit"] == "PASS"


def test_settings_validate_and_quote() -> None:
    with pytest.raises(ConfigError, match="did you mean 'overfit'"):
        DoctorSettings(only=("overfitt",))
    with pytest.raises(ConfigError, match="-0.1"):
        DoctorSettings(lr=-0.1)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        DoctorSettings(optimizer="adamm")


# -- CLI ------------------------------------------------------------------------------------
def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["doctor", *args], catch_exceptions=False)


def test_cli_exits_1_on_a_failed_check(
    write_task: Callable[[str, str], Path], tmp_path: Path
) -> None:
    _, changes = BROKEN["labels_out_of_range"]
    path = write_task(task_source(**changes), "bad_labels")
    out = tmp_path / "run"
    result = _invoke(str(path), "--only", "data,labels", "--device", "cpu", "--out", str(out))
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert "FAIL" in result.output and "outside 0..2" in result.output  # type: ignore[attr-defined]
    data = json.loads((out / "doctor.json").read_text())
    assert data["schema_version"] >= 1 and data["exit_code"] == 1
    assert [c["verdict"] for c in data["checks"]] == ["PASS", "FAIL"]


def test_cli_json_and_plots_on_a_healthy_task(base_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _invoke(
        str(base_task), "--skip", "range_test", "--device", "cpu", "--out", str(out), "--json", "-q"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    data = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert data["summary"]["FAIL"] == 0 and data["command"] == "doctor"
    assert (out / "overfit.png").stat().st_size > 5000
    assert data["plots"]["overfit"].endswith("overfit.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing_task.py"], "not found"),
        (["{task}", "--only", "gradient"], "did you mean 'gradients'"),
        (["{task}", "--lr", "0"], "--lr must be > 0"),
        (["{task}", "--optimizer", "sgdd"], "unknown optimizer"),
    ],
)
def test_cli_bad_input_exits_2(base_task: Path, args: list[str], message: str) -> None:
    result = _invoke(*[a.format(task=base_task) for a in args])
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert message in result.output and "Traceback" not in result.output  # type: ignore[attr-defined]


def test_help_is_instant_and_states_the_real_defaults() -> None:
    from lrtune import doctor as engine

    result = CliRunner().invoke(cli, ["doctor", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert f"[default: {engine.OVERFIT_STEPS}]" in text
    assert f"[default: {engine.RANGE_TEST_STEPS}]" in text
    assert ", ".join(CHECKS) in text


def test_the_task_files_optimizer_is_named_and_sets_the_default_lr(
    write_task: Callable[[str, str], Path],
) -> None:
    src = task_source() + (
        "\ndef optimizer(params, lr):\n"
        "    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)\n"
    )
    path = write_task(src, "own_adamw")
    report, _ = run_doctor(path, _cpu(only=("gradients", "range_test"), range_test_steps=20))
    grads = report.get("gradients")
    # Adam-family default LR (not SGD's 0.01), and the optimizer named as the file's.
    assert grads.values["short_run"]["lr"] == 1e-3
    assert grads.values["short_run"]["optimizer"] == "AdamW from the task file"
    assert "(AdamW from the task file)" in grads.measured
    rt = report.get("range_test")
    assert "AdamW from the task file" in rt.measured and "sgd" not in rt.measured
    assert report.to_dict()["optimizer"] == "AdamW from the task file"
