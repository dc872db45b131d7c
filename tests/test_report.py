"""`lrtune report RUN_DIR`: check and doctor run directories are redrawn from their saved
results (nothing is trained again); anything else is one error line and exit code 2.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lrtune.cli import cli

# An LR cut 100x after 2 of 10 epochs: the check fails and the diagnosis says why.
EARLY_DECAY = """
epochs: 10
lr: 0.05
schedule: {name: step, interval: epoch, step_size: 2, gamma: 0.01}
expect:
  final_train_loss_below: 0.2
"""


def lrtune(*args: str) -> Any:
    """Run `lrtune ARGS` in-process (not a terminal: plain output); stdout/stderr apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def check_run(tiny_task: Path, tmp_path: Path) -> Path:
    config = tmp_path / "early.yaml"
    config.write_text(f"task: {tiny_task}\ndevice: cpu\n" + textwrap.dedent(EARLY_DECAY))
    out = tmp_path / "check-run"
    res = lrtune("check", str(config), "--out", str(out))
    assert res.exit_code == 1, res.output  # fails on purpose
    return out


def test_report_redraws_a_check_run(check_run: Path) -> None:
    before = {name: (check_run / name).read_bytes() for name in ("summary.md", "junit.xml")}
    pngs = ("loss_curve.png", "diagnosis_decayed_too_early.png")
    for name in (*pngs, "summary.md"):
        (check_run / name).unlink()
    res = lrtune("report", str(check_run))
    assert res.exit_code == 0, res.output
    for name in pngs:
        assert (check_run / name).stat().st_size > 10_000, name
        assert str(check_run / name) in res.stdout.splitlines()  # the written paths, listed
    # The same report as the check printed: criteria, diagnosis, headline.
    assert "FAIL   final_train_loss_below: measured" in res.stdout
    assert "decayed_too_early" in res.stdout and "FAIL: final_train_loss_below" in res.stdout
    assert "re-rendered 4 file(s)" in res.stderr
    # Redrawn from result.json alone: the text files come back byte for byte.
    for name, data in before.items():
        assert (check_run / name).read_bytes() == data, name


def test_report_reads_a_check_result_without_a_saved_diagnosis(check_run: Path) -> None:
    """A result.json from before the diagnosis existed is still redrawn, diagnosis included."""
    body = json.loads((check_run / "result.json").read_text())
    for key in ("diagnosis", "diagnosis_context", "started"):
        body.pop(key)
    (check_run / "result.json").write_text(json.dumps(body))
    res = lrtune("report", str(check_run))
    assert res.exit_code == 0, res.output
    assert "decayed_too_early" in res.stdout


def test_report_redraws_a_doctor_run(tiny_task: Path, tmp_path: Path) -> None:
    out = tmp_path / "doctor-run"
    res = lrtune(
        "doctor",
        str(tiny_task),
        "--only",
        "data,overfit,range_test",
        "--range-test-steps",
        "40",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "doctor.json").read_text())
    assert saved["command"] == "doctor" and set(saved["plot_data"]) == {"overfit", "range_test"}
    for name in ("overfit.png", "range_test.png"):
        (out / name).unlink()
    res = lrtune("report", str(out))
    assert res.exit_code == 0, res.output
    for name in ("overfit.png", "range_test.png"):
        assert (out / name).stat().st_size > 10_000, name
    assert "Overfit a small batch" in res.stdout and "LR range test" in res.stdout
    assert "doctor: ok" in res.stdout
    # The range test's suggestion is recomputed from the saved curve: the same number.
    lr = next(c for c in saved["checks"] if c["name"] == "range_test")["values"]["lr"]
    assert f"suggested lr {lr:.2g}" in res.stdout


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no result.json here"),
        ({"result.json": '{"command": "check"}'}, "not an lrtune check result (no 'criteria'"),
        ({"result.json": "{not json"}, "result.json: not valid JSON"),
        (
            {"doctor.json": '{"command": "doctor", "task": "t.py"}'},
            "doctor.json: not an lrtune doctor report",
        ),
    ],
    ids=["empty dir", "check result without data", "broken json", "doctor json without data"],
)
def test_report_on_a_non_run_directory_is_one_line_exit_2(
    files: dict[str, str], message: str, tmp_path: Path
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    res = lrtune("report", str(tmp_path))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0]
    assert "Traceback" not in res.output


def test_report_json_is_one_object_and_out_is_refused(check_run: Path) -> None:
    res = lrtune("report", str(check_run), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # stdout holds the JSON alone
    assert data["run_dir"] == str(check_run) and data["command"] == "check"
    assert str(check_run / "loss_curve.png") in data["files"]
    assert all(Path(f).is_file() for f in data["files"])
    assert "FAIL   final_train_loss_below" in res.stderr  # the report itself: on stderr
    # It re-renders in place: no --out to be silently ignored.
    res = lrtune("report", str(check_run), "--out", str(check_run / "elsewhere"))
    assert res.exit_code == 2 and "No such option '--out'" in res.output
    help_text = " ".join(lrtune("report", "--help").output.split())
    assert "rewritten in place" in help_text
