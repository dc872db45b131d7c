"""`lrtune find` end to end through the real CLI, and --help without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import EXAMPLES


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrtune.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**__import__("os").environ, "CI": "1"},
    )


@pytest.mark.parametrize("cmd", ["", "find", "search", "check", "doctor", "schedule", "report"])
def test_help_never_imports_torch(cmd):
    code = (
        "import sys\n"
        "from lrtune.cli import cli\n"
        f"args = [{cmd!r}, '--help'] if {cmd!r} else ['--help']\n"
        "try:\n"
        "    cli.main(args=args, prog_name='lrtune', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
        "assert 'matplotlib' not in sys.modules and 'optuna' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_find_on_shipped_example_writes_every_file(tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "find", str(EXAMPLES / "digits_mlp.py"), "--out", str(out), "--device", "cpu", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    for name in (
        "lr_find.png",
        "lr_find.csv",
        "lr_find_median.csv",
        "result.json",
        "schedule.yaml",
        "schedule.py",
        "schedule.png",
    ):
        assert (out / name).is_file(), name
    body = json.loads(proc.stdout)  # with --json, stdout holds only the JSON
    saved = json.loads((out / "result.json").read_text())
    assert body["headline"] == saved["headline"]
    assert saved["schema_version"] == 1
    assert saved["weights"]["restored"] is True
    assert saved["headline"]["lr"] > 0
    # --repeats auto (the default): at least 3 runs, each its own seed; the headline's
    # interval brackets it and the answer line says so.
    n = saved["headline"]["repeats"]
    assert 3 <= n <= 20 and [r["seed"] for r in saved["repeats"]] == list(range(n))
    lo, hi = saved["headline"]["interval"]
    assert lo < saved["headline"]["lr"] < hi
    assert "95% interval" in proc.stderr
    # SGD -> one-cycle whose peak is the plan's LR (4x the headline, lrtune/plan.py)
    assert saved["schedule"]["name"] == "onecycle"
    assert saved["schedule"]["lr"] == saved["plan"]["lr"] == 4 * saved["headline"]["lr"]
    header = (out / "lr_find.csv").read_text().splitlines()[0]
    assert header.startswith("repeat,step,lr,loss,smoothed")
    assert "suggested lr:" in proc.stderr
    assert oct((out / "result.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_find_sweep_and_plan(tiny_task, tmp_path):
    out = tmp_path / "sweep"
    proc = run_cli(
        "find",
        str(tiny_task),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--steps",
        "40",
        "--repeats",
        "1",
        "--wd",
        "0,1e-3",
        "--for",
        "onecycle",
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((out / "result.json").read_text())
    assert saved["sweep"]["param"] == "weight_decay" and saved["sweep"]["best"] in (0.0, 1e-3)
    assert saved["plan"]["target"] == "onecycle"
    assert (out / "lr_find_wd.png").is_file()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--steps", "1"], "steps must be >= 2"),
        (["--start-lr", "1", "--end-lr", "0.1"], "end_lr must be greater"),
        (["--suggest", "valey"], "did you mean 'valley'"),
        (["--optimizer", "adamm"], "did you mean 'adam'"),
        (["--wd", "0,abc"], "comma-separated numbers"),
        (["--repeats", "many"], "--repeats must be 'auto' or an integer >= 1"),
        (["--repeats", "0"], "--repeats must be 'auto' or an integer >= 1"),
        (["--max-repeats", "0"], "--max-repeats must be an integer >= 1"),
    ],
)
def test_bad_options_exit_2_one_line(tiny_task, tmp_path, args, needle):
    proc = run_cli("find", str(tiny_task), "--out", str(tmp_path / "x"), "--device", "cpu", *args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_find_cli_runner_in_process(tiny_task, tmp_path):
    from lrtune.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "find",
            str(tiny_task),
            "--out",
            str(tmp_path / "r"),
            "--steps",
            "30",
            "--repeats",
            "1",
            "--device",
            "cpu",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "suggested lr" in result.output


def test_an_error_in_the_users_model_is_one_line_exit_2(write_task, tmp_path):
    path = write_task(
        """
import torch
from torch import nn
from torch.utils.data import TensorDataset

def model():
    return nn.Linear(4, 2)          # the data has 3 features: a shape bug

def train_data():
    return TensorDataset(torch.randn(32, 3), torch.zeros(32).long())
""",
        "shape_bug",
    )
    proc = run_cli("find", str(path), "--out", str(tmp_path / "r"), "--device", "cpu")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[-1].startswith("error: "), proc.stderr  # info + error
    assert "shape_bug.py" in lines[-1] and "RuntimeError" in lines[-1]
    assert not (tmp_path / "r").exists()


def test_out_into_another_commands_run_dir_is_refused(tiny_task, tmp_path):
    other = tmp_path / "search-run"
    other.mkdir()
    (other / "result.json").write_text('{"schema_version": 1, "command": "search"}')
    proc = run_cli("find", str(tiny_task), "--out", str(other), "--device", "cpu")
    assert proc.returncode == 2
    assert "lrtune search" in proc.stderr and "Traceback" not in proc.stderr


def test_report_redraws_a_find_run(tiny_task, tmp_path):
    out = tmp_path / "find-run"
    proc = run_cli(
        "find",
        str(tiny_task),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--steps",
        "40",
        "--repeats",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    before = json.loads((out / "result.json").read_text())
    for name in ("lr_find.png", "schedule.png", "schedule.py"):
        (out / name).unlink()
    proc = run_cli("report", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("lr_find.png", "schedule.png", "schedule.py"):
        assert (out / name).is_file(), name
    assert json.loads((out / "result.json").read_text()) == before  # result.json untouched


def test_unknown_command_suggests_the_closest():
    proc = run_cli("fnd", "x.py")
    assert proc.returncode == 2
    assert "did you mean 'find'" in proc.stderr


def test_cli_defaults_are_the_library_defaults():
    """`lrtune find`'s option defaults are FindOptions' (the CLI cannot import them: it
    must not import torch for --help), so a changed default cannot drift between the two."""
    from dataclasses import fields

    from lrtune.cli.find import find
    from lrtune.findrun import FindOptions

    lib = FindOptions()
    names = {f.name for f in fields(FindOptions)}
    for param in find.params:
        if param.name in names and param.name != "rule":  # rule None = the headline rule
            assert param.default == getattr(lib, param.name), param.name


def test_find_says_why_auto_ran_more_range_tests(tiny_task, tmp_path, monkeypatch):
    """When --repeats auto adds runs, the table's title says how many and why."""
    import lrtune.rangetest as rt
    from lrtune.cli import cli

    monkeypatch.setattr(rt, "TARGET_INTERVAL", 0.0)  # no run can meet it: up to the cap
    args = ["find", str(tiny_task), "--out", str(tmp_path / "r"), "--steps", "30"]
    result = CliRunner().invoke(cli, [*args, "--max-repeats", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "5 range tests; the first 3 disagreed, so auto added 2" in result.output
