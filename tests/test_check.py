"""`lrtune check`: exit codes, determinism, JUnit/markdown/PNG outputs, baselines, bad configs.

Real training on the CPU throughout: the shipped digits example (5 short epochs) and the
tiny synthetic task from conftest (a few steps).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import REPO, TINY_CLASSIFIER

from lrtune.check import (
    CRITERIA,
    Baseline,
    Evidence,
    judge_all,
    parse_check_config,
    parse_expect,
    run_check,
)
from lrtune.cli.check import check as check_cmd
from lrtune.errors import ConfigError
from lrtune.task import load_task
from lrtune.training import EpochRecord

PASS_CONFIG = REPO / "configs" / "ci" / "digits_pass.yaml"
DIVERGE_CONFIG = REPO / "configs" / "ci" / "digits_diverge.yaml"


def invoke(*args: str) -> Any:
    """Run `lrtune check ARGS` in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(check_cmd, list(args), catch_exceptions=False)


def write_config(tmp_path: Path, task: Path, body: str, name: str = "check") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"task: {task}\ndevice: cpu\n" + textwrap.dedent(body))
    return path


TINY_EXPECT = """
epochs: 3
lr: 0.05
expect:
  final_train_loss_below: 5.0
  loss_drop_at_least: 0.05
  val_metric_at_least: 0.3
"""


# Dict batches, a custom step(), its own optimizer() and metric(): what a real project's
# task file often looks like.
DICT_TASK = """
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

class DictDS(Dataset):
    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(64, 6, generator=g)
        self.y = (self.x[:, 0] > 0).float()
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return {"features": self.x[i], "label": self.y[i]}

def model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))

def train_data():
    return DataLoader(DictDS(0), batch_size=16, shuffle=True)

def val_data():
    return DataLoader(DictDS(1), batch_size=32)

_bce = nn.BCEWithLogitsLoss()

def step(model, batch):
    return _bce(model(batch["features"]).squeeze(-1), batch["label"])

def optimizer(params, lr):
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)

def metric(output, target):
    return ((output.squeeze(-1) > 0).float() == target).float().mean().item()
"""


# --------------------------------------------------------------------------- the examples
def test_passing_example_exits_0_and_writes_every_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # as .ci/run does: the config's task path is repo-relative
    summary_env = tmp_path / "step_summary.md"
    summary_env.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_env))
    out, junit = tmp_path / "run", tmp_path / "junit.xml"
    res = invoke(str(PASS_CONFIG), "--out", str(out), "--junit", str(junit))
    assert res.exit_code == 0, res.output
    assert "PASS: 7/7 criteria met" in res.stdout
    for name in ("result.json", "junit.xml", "summary.md", "loss_curve.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "result.json").read_text())
    assert saved["schema_version"] == 1 and saved["passed"] and saved["exit_code"] == 0
    # A pass keeps its output short: one diagnosis line, no diagnosis figures.
    assert [ln for ln in res.stdout.splitlines() if "diagnosis" in ln] == [
        next(ln for ln in res.stdout.splitlines() if ln.startswith("diagnosis: "))
    ]
    assert not list(out.glob("diagnosis_*.png"))
    assert saved["command"] == "check"
    assert saved["diagnosis_context"]["reference_name"] == "ln(10)"
    assert {c["criterion"] for c in saved["criteria"]} == set(CRITERIA) - {
        "val_metric_at_most",
        "max_steps",
    }
    # JUnit: parses, one test case per criterion, no failures.
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["criterion"] for c in saved["criteria"]]
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == "0"
    # $GITHUB_STEP_SUMMARY is appended to, not replaced.
    text = summary_env.read_text()
    assert text.startswith("earlier step\n") and "lrtune check passed: digits_pass" in text
    assert "| `val_metric_at_least` |" in text


def test_diverging_example_exits_1_naming_the_criterion(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    res = invoke(str(DIVERGE_CONFIG), "--out", str(out), "--summary", str(tmp_path / "s.md"))
    assert res.exit_code == 1, res.output
    assert res.stdout.splitlines()[-1].startswith("FAIL: no_divergence")
    assert "FAIL   no_divergence: measured diverged at step" in res.stdout
    root = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failure = cases["no_divergence"].find("failure")
    assert failure is not None
    assert "diverged at step" in failure.get("message", "")
    assert "required no NaN/inf or blow-up" in failure.get("message", "")
    # Every case failed, each with its measured value and its threshold.
    val_failure = cases["val_loss_below"].find("failure")
    assert val_failure is not None
    msg = val_failure.get("message", "")
    assert "measured none (run diverged at step" in msg and "required < 0.3" in msg
    assert "❌ fail" in (tmp_path / "s.md").read_text()
    # Why it failed, in plain words, between the criteria and the headline.
    lines = res.stdout.splitlines()
    at = lines.index("diagnosis of the learning curves (why it failed):")
    assert lines[at - 1].startswith("FAIL   ") and "lr_too_high" in lines[at + 1]
    assert "at step 4, during epoch 1" in res.stdout and "lower the learning rate" in res.stdout
    assert "lower the learning rate" in (failure.text or "")  # the JUnit failure detail
    saved = json.loads((out / "result.json").read_text())
    assert [f["code"] for f in saved["diagnosis"]] == ["lr_too_high"]
    # --json: stdout is exactly result.json, for scripts.
    res = invoke(str(DIVERGE_CONFIG), "--out", str(tmp_path / "j"), "--json", "--quiet")
    assert res.exit_code == 1
    body = json.loads(res.stdout)
    assert body["exit_code"] == 1 and body["status"] == "diverged"
    assert body["criteria"][0]["criterion"] == "no_divergence"
    assert body["criteria"][0]["verdict"] == "fail"


def test_ci_command_from_repo_root_as_a_subprocess(tmp_path):
    """Exactly what .ci/run executes, in a fresh interpreter with CI set."""
    out = tmp_path / "ci-check"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lrtune.cli",
            "check",
            "configs/ci/digits_pass.yaml",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "epoch 5/5" in proc.stderr  # one plain log line per epoch under CI


EARLY_DECAY = """
epochs: 10
lr: 0.05
schedule: {name: step, interval: epoch, step_size: 2, gamma: 0.01}
expect:
  final_train_loss_below: 0.2
"""


def test_a_failed_check_says_why_from_its_learning_curves(tiny_task, tmp_path):
    """An LR cut 100x after 2 of 10 epochs: the loss stalls, the check fails, and the
    diagnosis names the early decay everywhere a CI user looks."""
    out = tmp_path / "run"
    config = write_config(tmp_path, tiny_task, EARLY_DECAY, "early")
    res = invoke(str(config), "--out", str(out), "--junit", str(tmp_path / "j.xml"))
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    assert lines[-1].startswith("FAIL: final_train_loss_below")
    assert "decayed_too_early" in res.stdout and "move the decay later" in res.stdout
    saved = json.loads((out / "result.json").read_text())
    (finding,) = saved["diagnosis"]
    assert finding["code"] == "decayed_too_early" and finding["epochs"] == [3, 10]
    assert finding["numbers"]["lr_before"] == 0.05
    assert saved["diagnosis_context"] == {
        "reference_loss": pytest.approx(math.log(3)),
        "reference_name": "ln(3)",
        "metric_mode": "max",
    }
    summary = (out / "summary.md").read_text()
    assert "### Diagnosis of the learning curves" in summary
    assert "![diagnosis: decayed_too_early](diagnosis_decayed_too_early.png)" in summary
    assert (out / "diagnosis_decayed_too_early.png").stat().st_size > 10_000
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None
    assert "decayed_too_early" in (suite.findtext("system-out") or "")
    failure = suite.find("testcase[@name='final_train_loss_below']/failure")
    assert failure is not None and "LR decayed too early" in (failure.text or "")


def test_diagnosis_reads_the_run_it_is_given(tmp_path):
    """A run that raised gets no curve diagnosis; a diverged one gets lr_too_high."""
    from lrtune.check import diagnose_run

    context = {"reference_loss": math.log(3), "reference_name": "ln(3)", "metric_mode": "max"}
    crashed = Evidence("failed", "RuntimeError: boom", 1.1, _records([1.0, 0.9, 0.8]), (), 12)
    assert diagnose_run(crashed, context) == []
    blown = Evidence("diverged", "loss nan", 1.1, (), (1.1, 2.0, math.nan), 3)
    (f,) = diagnose_run(blown, context)
    assert f.code == "lr_too_high" and "at step 3" in f.evidence


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_metrics(tiny_task, tmp_path):
    cfg = parse_check_config(write_config(tmp_path, tiny_task, TINY_EXPECT))
    task = load_task(tiny_task)

    def numbers(seed: int) -> tuple[list[dict[str, Any]], list[float]]:
        result = run_check(cfg, task, lr=0.05, seed=seed)
        assert result.status == "complete", result.error
        records = [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in result.epochs]
        return records, result.step_losses

    first, again, other = numbers(0), numbers(0), numbers(1)
    assert first == again  # bit-identical, not approximately equal
    assert first[1] != other[1]


# --------------------------------------------------------------------------- baseline
def test_update_baseline_then_a_worse_curve_fails(tiny_task, tmp_path):
    config = write_config(
        tmp_path,
        tiny_task,
        TINY_EXPECT + "  baseline: tiny.baseline.json\n  tolerance: 0.1\n",
    )
    res = invoke(str(config), "--out", str(tmp_path / "r0"), "--update-baseline")
    assert res.exit_code == 0, res.output
    base_path = tmp_path / "tiny.baseline.json"  # next to the config
    data = json.loads(base_path.read_text())
    assert data["schema_version"] == 1 and data["kind"] == "lrtune-check-baseline"
    assert len(data["epochs"]) == 3 and len(data["step_losses"]) == 3 * 8
    assert all("seconds" not in e for e in data["epochs"])  # reproducible file

    res = invoke(str(config), "--out", str(tmp_path / "r1"))
    assert res.exit_code == 0, res.output
    assert "PASS   baseline: measured identical to the baseline (3 epochs" in res.stdout

    # A baseline 30% better than this run: the run is ~43% worse, beyond the 10% tolerance.
    for e in data["epochs"]:
        e["train_loss"] *= 0.7
        e["val_loss"] *= 0.7
    base_path.write_text(json.dumps(data))
    res = invoke(str(config), "--out", str(tmp_path / "r2"))
    assert res.exit_code == 1, res.output
    assert res.stdout.splitlines()[-1].startswith("FAIL: baseline")
    assert "required <= 10% worse than tiny.baseline.json" in res.stdout


def _records(losses: list[float], val: list[float] | None = None) -> tuple[EpochRecord, ...]:
    val = val or losses
    return tuple(
        EpochRecord(i + 1, 10 * (i + 1), 0.1, t, v, 0.5 + 0.1 * i, 0.0)
        for i, (t, v) in enumerate(zip(losses, val, strict=True))
    )


def _baseline(losses: list[float]) -> Baseline:
    return Baseline(
        Path("b.json"),
        tuple({"epoch": i + 1, "train_loss": v, "val_loss": v} for i, v in enumerate(losses)),
    )


@pytest.mark.parametrize(
    ("factor", "verdict"), [(1.0, "pass"), (0.95, "pass"), (1.3, "fail"), (math.inf, "fail")]
)
def test_baseline_tolerance_is_relative_per_epoch(factor, verdict, tmp_path):
    base = [2.0, 1.0, 0.5]
    run = [2.0, 1.0, 0.5 * 1.08]  # last epoch 8% worse: within a 10% tolerance
    run = [v * factor for v in run] if factor != math.inf else [2.0, 1.0, math.inf]
    expect = parse_expect({"baseline": "b.json", "tolerance": 0.1}, tmp_path / "c.yaml")
    ev = Evidence("complete", None, 2.3, _records(run), (), 30, _baseline(base))
    (result,) = [r for r in judge_all(expect, ev) if r.key == "baseline"]
    assert result.verdict == verdict, result.message
    if factor == 1.3:  # the worst point is named: (0.5 * 1.08 * 1.3) / 0.5 - 1 = +40.4%
        assert "+40.4% at worst, train_loss at epoch 3" in result.message


# --------------------------------------------------------------------------- criteria
def test_budget_finds_the_first_epoch_meeting_every_target(tmp_path):
    expect = parse_expect(
        {"final_train_loss_below": 0.6, "val_metric_at_least": 0.65, "max_epochs": 2},
        tmp_path / "c.yaml",
    )
    # Train loss < 0.6 from epoch 2, metric >= 0.65 from epoch 3 (0.5, 0.6, 0.7, ...).
    ev = Evidence("complete", None, 2.0, _records([1.0, 0.5, 0.4, 0.3]), (), 40)
    got = {r.key: r for r in judge_all(expect, ev)}
    assert got["final_train_loss_below"].verdict == "pass"
    assert got["max_epochs"].verdict == "fail"
    assert got["max_epochs"].measured == 3.0
    assert "targets met at epoch 3" in got["max_epochs"].message
    assert "by epoch 2" in got["max_epochs"].message


def test_loss_drop_and_failed_run_verdicts(tmp_path):
    expect = parse_expect({"loss_drop_at_least": 0.5}, tmp_path / "c.yaml")
    ev = Evidence("complete", None, 2.0, _records([1.5, 0.9]), (), 20)
    drop = {r.key: r for r in judge_all(expect, ev)}["loss_drop_at_least"]
    assert drop.verdict == "pass" and drop.measured == pytest.approx(0.55)
    crashed = Evidence("failed", "RuntimeError: boom", 2.0, _records([1.5]), (), 12)
    verdicts = {r.key: r.verdict for r in judge_all(expect, crashed)}
    assert verdicts == {"no_divergence": "error", "loss_drop_at_least": "error"}


def test_a_run_that_raises_exits_1_with_junit_errors(write_task, tmp_path):
    task = write_task(
        """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        batch_size = 8
        calls = {"n": 0}
        def model():
            return nn.Linear(4, 2)
        def train_data():
            return TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
        def step(model, batch):
            calls["n"] += 1
            if calls["n"] > 3:
                raise RuntimeError("shape bug introduced by a commit")
            x, y = batch
            return nn.functional.cross_entropy(model(x), y)
        """,
        "raises",
    )
    config = write_config(
        tmp_path, task, "epochs: 2\nlr: 0.1\nexpect:\n  final_train_loss_below: 1\n"
    )
    out = tmp_path / "run"
    res = invoke(str(config), "--out", str(out))
    assert res.exit_code == 1, res.output
    assert "shape bug introduced by a commit" in res.stdout
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "2"


# --------------------------------------------------------------------------- bad configs
NO_DIV = "expect:\n  no_divergence: true\n"
BAD_CONFIGS = {
    "unknown criterion": (
        "expect:\n  final_train_loss_bellow: 1\n",
        "did you mean 'final_train_loss_below'",
    ),
    "lr grid": ("lr: [0.1, 0.01]\nexpect:\n  no_divergence: true\n", "'lr' is a list"),
    "lr range": (
        "lr: {low: 0.001, high: 0.1}\nexpect:\n  no_divergence: true\n",
        "'lr' is a search range",
    ),
    "schedule grid": (
        "lr: 0.1\nschedule: {name: step, step_size: 1, gamma: [0.1, 0.5]}\n" + NO_DIV,
        "'schedule.gamma' is a list",
    ),
    "milestones grid": (
        "lr: 0.1\nschedule: {name: multistep, milestones: [[1], [2]]}\n" + NO_DIV,
        "'schedule.milestones' is a list",
    ),
    "schedule distribution": (
        "lr: 0.1\nschedule: {name: exponential, gamma: {low: 0.5, high: 0.9}}\n" + NO_DIV,
        "'schedule.gamma' is a search range",
    ),
    "search block": (
        "lr: 0.1\nsearch: {method: grid}\nexpect:\n  no_divergence: true\n",
        "'search:' belongs to lrtune search",
    ),
    "unknown schedule": ("lr: 0.1\nschedule: cosin\nexpect:\n  no_divergence: true\n", "cosin"),
    "no expect": ("lr: 0.1\n", "missing 'expect:' block"),
    "drop as percent": (
        "lr: 0.1\nexpect:\n  loss_drop_at_least: 50\n",
        "fraction of the initial loss",
    ),
    "threshold type": ("lr: 0.1\nexpect:\n  val_loss_below: low\n", "must be a number, got 'low'"),
    "tolerance alone": (
        "lr: 0.1\nexpect:\n  no_divergence: true\n  tolerance: 0.1\n",
        "no 'baseline:'",
    ),
    "budget alone": ("lr: 0.1\nexpect:\n  max_epochs: 2\n", "no target is set"),
    "missing baseline": ("lr: 0.1\nexpect:\n  baseline: nope.json\n", "--update-baseline"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(case, tiny_task, tmp_path):
    body, needle = BAD_CONFIGS[case]
    res = invoke(str(write_config(tmp_path, tiny_task, body)), "--out", str(tmp_path / "run"))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert needle in lines[0]
    assert not (tmp_path / "run").exists()  # refused before any training


def test_criteria_the_task_cannot_serve_exit_2(write_task, tiny_regression, tmp_path):
    no_val = write_task(
        """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        def model():
            return nn.Linear(4, 2)
        def train_data():
            return TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
        """,
        "no_val",
    )
    res = invoke(str(write_config(tmp_path, no_val, "lr: 0.1\nexpect:\n  val_loss_below: 1\n")))
    assert res.exit_code == 2 and "defines no val_data()" in res.stderr
    res = invoke(
        str(
            write_config(
                tmp_path, tiny_regression, "lr: 0.1\nexpect:\n  val_metric_at_least: 0.5\n"
            )
        )
    )
    assert res.exit_code == 2 and "define metric(output, target) in it" in res.stderr
    # A custom step() hides (output, target): the task's own metric() cannot be called.
    dict_task = write_task(DICT_TASK, "dict_task")
    res = invoke(
        str(write_config(tmp_path, dict_task, "lr: 0.01\nexpect:\n  val_metric_at_least: 0.5\n"))
    )
    assert res.exit_code == 2, res.output
    assert "return (loss, output, target) from it so lrtune can call metric" in res.stderr
    assert "val_loss_below instead" in res.stderr and "(define metric" not in res.stderr
    res = invoke(
        str(write_config(tmp_path, tiny_regression, "lr: 0.1\nexpect:\n  no_divergence: true\n")),
        "--update-baseline",
    )
    assert res.exit_code == 2 and "--update-baseline needs 'baseline: FILE'" in res.stderr


def test_every_criterion_has_help_and_parses_its_example(tmp_path):
    examples = {
        "no_divergence": True,
        "final_train_loss_below": 0.5,
        "loss_drop_at_least": 0.5,
        "val_loss_below": 0.5,
        "val_metric_at_least": 0.9,
        "val_metric_at_most": 0.1,
        "max_epochs": 3,
        "max_steps": 100,
        "baseline": "b.json",
    }
    assert set(examples) == set(CRITERIA)
    expect = parse_expect(examples, tmp_path / "c.yaml")
    assert list(expect.thresholds) == list(CRITERIA)  # registry order
    assert all(spec.help for spec in CRITERIA.values())
    with pytest.raises(ConfigError, match="valid: no_divergence"):
        parse_expect({"nope": 1}, tmp_path / "c.yaml")


def test_docs_jobs_and_config_stay_in_sync_with_the_code():
    """docs/ci.md: every YAML block parses, every criterion is documented, and the
    documented config is the shipped passing example."""
    import re

    import yaml

    text = (REPO / "docs" / "ci.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    assert len(blocks) == 3
    shipped = yaml.safe_load(PASS_CONFIG.read_text())
    assert blocks[0] == shipped
    github, gitlab = blocks[1], blocks[2]
    steps = github["jobs"]["lrtune-check"]["steps"]
    assert any("lrtune check configs/ci/digits_pass.yaml" in s.get("run", "") for s in steps)
    job = gitlab["lrtune-check"]
    assert any(line.startswith("lrtune check configs/ci/") for line in job["script"])
    assert job["artifacts"]["reports"]["junit"] == "runs/ci-check/junit.xml"
    for key in [*CRITERIA, "tolerance"]:
        assert f"`{key}`" in text, key


def test_plot_data_marks_thresholds_divergence_and_baseline(tiny_task, tmp_path):
    from lrtune.check import evaluate, run_setup
    from lrtune.report.check_report import curve_plot_data, draw_curves
    from lrtune.training import TrainResult

    config = write_config(
        tmp_path,
        tiny_task,
        "lr: 0.1\nexpect:\n  final_train_loss_below: 0.5\n  val_metric_at_least: 0.9\n"
        "  max_epochs: 2\n  baseline: b.json\n  tolerance: 0.1\n",
    )
    cfg = parse_check_config(config)
    setup = run_setup(cfg, 0.1, "cpu", 0, steps_per_epoch=2)
    base = _baseline([1.0, 0.5])
    worse = TrainResult(
        "complete", list(_records([1.0, 0.8])), [2.0, 1.5, 0.9, 0.7], None, 4, 0.1, 2.0
    )
    data = curve_plot_data(evaluate(cfg, worse, setup=setup, baseline=base))
    lines = {(ln.panel, ln.value): ln.passed for ln in data.lines}
    assert lines == {("loss", 0.5): False, ("metric", 0.9): False, ("x", 2.0): False}
    assert data.step_x == [0.0, 0.5, 1.0, 1.5] and data.train_x == [0.5, 1.5]
    assert data.baseline_worst is not None and data.baseline_worst[2].startswith("+60%")
    assert data.diverged is None

    blown = TrainResult("diverged", [], [2.0, 3.0, float("nan")], "loss became nan", 3, 0.1, 2.0)
    data = curve_plot_data(evaluate(cfg, blown, setup=setup, baseline=base))
    assert data.diverged == (0.5, 3.0) and data.diverged_step == 2
    assert data.epochs_planned == 5.0  # the x axis spans the planned run (default epochs)
    draw_curves(data).clf()  # draws without val values or epoch records


def test_the_task_files_optimizer_is_reported(write_task, tmp_path):
    from lrtune.check import run_setup
    from lrtune.report.check_report import setup_line

    task_path = write_task(DICT_TASK, "dict_task")
    cfg = parse_check_config(write_config(tmp_path, task_path, "lr: 0.01\n" + NO_DIV))
    setup = run_setup(cfg, 0.01, "cpu", 0, 4, load_task(task_path))
    assert setup["optimizer"] == "AdamW" and setup["optimizer_source"] == "task file"
    assert setup["optimizer_params"] == {}  # the config's would be ignored: none shown
    line = setup_line(str(task_path), setup)
    assert "AdamW (from the task file) lr 0.01" in line and "sgd" not in line
    # A task without optimizer() trains with the config's registry optimizer.
    plain = run_setup(cfg, 0.01, "cpu", 0, 4, load_task(write_task(TINY_CLASSIFIER, "plain")))
    assert plain["optimizer"] == "sgd" and plain["optimizer_source"] == "config"


def test_ctrl_c_writes_an_interrupted_result_and_junit_then_exits_130(write_task, tmp_path):
    task = write_task(
        """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        batch_size = 8
        calls = {"n": 0}
        def model():
            return nn.Linear(4, 2)
        def train_data():
            return TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
        def step(model, batch):
            calls["n"] += 1
            if calls["n"] == 10:  # in the 3rd epoch (4 steps each): as if Ctrl-C were pressed
                raise KeyboardInterrupt
            x, y = batch
            return nn.functional.cross_entropy(model(x), y)
        """,
        "ctrl_c",
    )
    config = write_config(
        tmp_path, task, "epochs: 5\nlr: 0.1\nexpect:\n  final_train_loss_below: 1\n"
    )
    out, junit = tmp_path / "run", tmp_path / "junit.xml"
    res = invoke(str(config), "--out", str(out), "--junit", str(junit))
    assert res.exit_code == 130, res.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["interrupted"] is True and saved["status"] == "interrupted"
    assert saved["exit_code"] == 130 and not saved["passed"]
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]  # the epochs it finished
    assert "INTERRUPTED after 2 of 5 epochs" in res.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "2" and suite.get("failures") == "0"
    assert "interrupted by Ctrl-C" in (out / "junit.xml").read_text()
    assert "lrtune check interrupted" in (out / "summary.md").read_text()
    assert "final_train_loss_below: measured nothing (interrupted by Ctrl-C" in res.stdout
    from lrtune.check import CheckReport
    from lrtune.report.check_report import curve_plot_data

    data = curve_plot_data(CheckReport.from_dict(saved))  # what loss_curve.png shows
    assert "INTERRUPTED after 2 of 5 epochs (nothing judged)" in data.title
    assert [(ln.label, ln.judged) for ln in data.lines] == [("train loss < 1 (not judged)", False)]


def test_out_into_another_commands_run_dir_is_refused(tiny_task, tmp_path):
    other = tmp_path / "search-run"
    other.mkdir()
    body = '{"command": "search", "finished": true}'
    (other / "result.json").write_text(body)
    config = write_config(tmp_path, tiny_task, "lr: auto\nexpect:\n  no_divergence: true\n")
    res = invoke(str(config), "--out", str(other))  # lr: auto: refused before the range test
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == (
        f"error: {other} holds the results of an 'lrtune search' run; give --out a new directory"
    )
    assert (other / "result.json").read_text() == body and len(list(other.iterdir())) == 1


def test_threshold_labels_do_not_overlap_and_budget_labels_avoid_the_lines():
    from lrtune.report.check_report import LABEL_GAP, budget_label_place, spread_labels

    # A loss < 0.2 and an 80% drop to < 0.219: two lines a hair apart, labels apart.
    placed = spread_labels([0.70, 0.72, 0.95])
    gaps = [b - a for a, b in zip(sorted(placed), sorted(placed)[1:])]
    assert min(gaps) >= LABEL_GAP - 1e-9 and max(placed) <= 1.0
    assert placed[0] < placed[1] < placed[2]  # same order as the lines
    assert spread_labels([0.3, 0.8]) == [0.3, 0.8]  # far apart: left where they are
    assert budget_label_place([0.05, 0.1, 0.12]) == (0.98, "top")  # lines low: label high
    assert budget_label_place([0.7, 0.75]) == (0.02, "bottom")
    assert budget_label_place([0.05, 0.95]) == (0.5, "center")
