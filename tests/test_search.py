"""lrtune search on real (tiny) training: grids, random search, failures, resume, pruning,
config validation, outputs. CPU, a few seconds each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lrtune.cli import cli
from lrtune.errors import ConfigError
from lrtune.search import load_search_config, run_search
from lrtune.search.space import Choice, Range, narrow, parse_space

REPO = Path(__file__).resolve().parent.parent

# The tiny classifier of conftest, counting trainings in a file next to it (val_data() is
# called once per training, after the trial's seed is set, and never by the task checks),
# and misbehaving on demand: FAIL_SEED makes the trial with that seed raise, KILL_AT kills
# the whole process inside the N-th training (a crash mid-search), INTERRUPT_AT raises
# KeyboardInterrupt there (Ctrl-C).
COUNTING_TASK = """
import os, signal
import torch
from torch import nn
from torch.utils.data import TensorDataset

batch_size = 32
_COUNT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.txt")

def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(123))
    return TensorDataset(x, (x @ w).argmax(dim=1))

def model():
    return nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))

def train_data():
    return _data(0)

def val_data():
    with open(_COUNT, "a") as fh:
        fh.write(f"{torch.initial_seed()}\\n")
    n = sum(1 for _ in open(_COUNT))
    if os.environ.get("KILL_AT") and n == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("INTERRUPT_AT") and n == int(os.environ["INTERRUPT_AT"]):
        raise KeyboardInterrupt
    if os.environ.get("FAIL_SEED") and torch.initial_seed() == int(os.environ["FAIL_SEED"]):
        raise RuntimeError("val_data() refuses this seed")
    return _data(1)
"""


@pytest.fixture
def counting_task(write_task: Callable[[str, str], Path]) -> Path:
    return write_task(COUNTING_TASK, "counting")


def calls(task: Path) -> int:
    """Trainings started (val_data() calls) since the last reset."""
    f = task.parent / "calls.txt"
    return sum(1 for _ in f.open()) if f.exists() else 0


def reset_calls(task: Path) -> None:
    (task.parent / "calls.txt").unlink(missing_ok=True)


def write_config(path: Path, task: Path, **over: Any) -> Path:
    """A 2x2 step-schedule grid x 2 seeds, 3 epochs, on `task`; `over` replaces keys."""
    data: dict[str, Any] = {
        "task": str(task),
        "epochs": 3,
        "lr": 0.05,
        "device": "cpu",
        "schedule": {"name": "step", "step_size": [1, 2], "gamma": [0.1, 0.5]},
        "search": {"method": "grid", "seeds": [0, 1]},
    }
    for key, value in over.items():
        if key == "search":
            data["search"] = {**data["search"], **value}
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def keys(result: Any) -> list[tuple[str, int, int]]:
    return [(t.pass_name, t.config, t.seed) for t in result.trials]


# -- the space ---------------------------------------------------------------------------
def test_space_parses_fixed_lists_ranges_and_nested() -> None:
    space = parse_space(
        {"low": 0.001, "high": 1, "log": True},
        {
            "name": "multistep",
            "milestones": [[2, 4], [3, 5]],
            "gamma": [0.1, 0.5],
            "warmup": {"epochs": [1, 2]},
        },
        "x.yaml",
    )
    assert space.names == ["lr", "milestones", "gamma", "warmup.epochs"]
    assert space.dims["lr"] == Range(0.001, 1.0, log=True)
    assert space.dims["milestones"] == Choice(([2, 4], [3, 5]))
    lr, spec = space.materialize(
        {"lr": 0.1, "milestones": [3, 5], "gamma": 0.5, "warmup.epochs": 1}
    )
    assert lr == 0.1
    assert spec == {
        "name": "multistep",
        "milestones": [3, 5],
        "gamma": 0.5,
        "warmup": {"epochs": 1},
    }
    fixed = parse_space(0.1, {"name": "multistep", "milestones": [2, 4]}, "x.yaml")
    assert fixed.dims == {} and fixed.grid_size() == 1  # a flat list is one milestones value


def test_narrow_keeps_the_best_and_shrinks() -> None:
    space = parse_space(
        [0.01, 0.1, 1.0],
        {"name": "step", "step_size": [1, 2, 4], "gamma": {"low": 0.1, "high": 0.9}},
        "x.yaml",
    )
    small = narrow(space, {"lr": 0.1, "step_size": 4, "gamma": 0.5}, shrink=0.5)
    assert small.dims["lr"] == Choice((0.0316, 0.1, 0.316))  # geometric midpoints
    assert small.dims["step_size"] == Choice((3, 4))  # an edge keeps one neighbour
    assert small.dims["gamma"] == Range(0.3, 0.7)


# -- grids, workers, outputs -------------------------------------------------------------
def test_grid_2x2_x_2_seeds_runs_exactly_8_trials_and_writes_every_file(
    tmp_path: Path, counting_task: Path
) -> None:
    cfg = write_config(tmp_path / "grid.yaml", counting_task)
    out = tmp_path / "run"
    res = invoke("search", str(cfg), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert calls(counting_task) == 8
    rows = list(csvrows(out / "trials.csv"))
    assert len(rows) == 8
    assert sorted((r["step_size"], r["gamma"], r["seed"]) for r in rows) == sorted(
        (s, g, seed) for s in ("1", "2") for g in ("0.1", "0.5") for seed in ("0", "1")
    )
    assert {r["state"] for r in rows} == {"complete"}
    for name in (
        "trials.csv",
        "curves.csv",
        "learning_curves.png",
        "schedules.png",
        "heatmap.png",
        "best_schedule.yaml",
        "best_schedule.py",
        "best_config.yaml",
        "report.md",
        "result.json",
    ):
        assert (out / name).stat().st_size > 0, name
    assert len(list(csvrows(out / "curves.csv"))) == 8 * 3
    body = json.loads((out / "result.json").read_text())
    assert body["schema_version"] == 1 and body["counts"]["complete"] == 8
    assert body["best"]["params"] == body["top"][0]["params"]
    assert "best:" in res.stdout and str(out) in res.stdout
    from lrtune import schedules

    spec = schedules.from_yaml((out / "best_schedule.yaml").read_text())
    assert spec["name"] == "step" and spec["step_size"] == body["best"]["params"]["step_size"]
    from lrtune.check import parse_check_config

    check = parse_check_config(out / "best_config.yaml")  # ready for lrtune check
    assert check.run.lr == 0.05 and check.run.schedule["step_size"] == spec["step_size"]
    assert check.expect.thresholds["val_loss_below"] > body["best"]["mean"]


def csvrows(path: Path) -> Any:
    import csv

    with path.open() as fh:
        yield from csv.DictReader(fh)


@pytest.mark.slow  # spawns two workers, each importing torch (~10 s on a busy 2-core box)
def test_two_workers_run_each_point_once(tmp_path: Path, counting_task: Path) -> None:
    cfg = load_search_config(
        write_config(tmp_path / "grid.yaml", counting_task, search={"workers": 2})
    )
    res = run_search(cfg, tmp_path / "run")
    assert calls(counting_task) == 8
    assert len(res.trials) == 8 and res.counts()["complete"] == 8
    assert len(set(keys(res))) == 8


# -- random search --------------------------------------------------------------------------
def test_random_search_with_a_fixed_seed_samples_the_same_trials(
    tmp_path: Path, tiny_task: Path
) -> None:
    over = {
        "lr": {"low": 0.01, "high": 0.3, "log": True},
        "schedule": {
            "name": "step",
            "step_size": {"low": 1, "high": 3, "int": True},
            "gamma": [0.1, 0.5],
        },
        "epochs": 2,
        "search": {"method": "random", "trials": 3, "seeds": [0], "seed": 7},
    }
    cfg = load_search_config(write_config(tmp_path / "r.yaml", tiny_task, **over))
    a = run_search(cfg, tmp_path / "a")
    b = run_search(cfg, tmp_path / "b")
    pa = [dict(t.point) for t in a.trials]
    assert len(pa) == 3 and pa == [dict(t.point) for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]  # seeded training too
    assert all(0.01 <= p["lr"] <= 0.3 and p["step_size"] in (1, 2, 3) for p in pa)
    over["search"] = {**over["search"], "seed": 8}
    other = load_search_config(write_config(tmp_path / "r2.yaml", tiny_task, **over))
    from lrtune.search.drivers import get_driver

    assert get_driver("random").plan(other.space, 3, 8) != pa


# -- failures --------------------------------------------------------------------------------
def test_raising_and_nan_trials_are_failed_and_the_search_completes(
    tmp_path: Path, counting_task: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_SEED", "1")  # model() raises for seed 1
    cfg = write_config(
        tmp_path / "f.yaml",
        counting_task,
        lr=[0.05, 1.0e6],
        optimizer="sgd_plain",
        schedule={"name": "constant"},
    )
    out = tmp_path / "run"
    res = invoke("search", str(cfg), "--out", str(out))
    assert res.exit_code == 0, res.output
    rows = {(r["lr"], r["seed"]): r for r in csvrows(out / "trials.csv")}
    assert len(rows) == 4
    assert rows[("0.05", "0")]["state"] == "complete"
    assert rows[("1e+06", "0")]["state"] == "diverged"
    assert "loss" in rows[("1e+06", "0")]["error"]
    for lr in ("0.05", "1e+06"):
        assert rows[(lr, "1")]["state"] == "failed"
        assert "val_data() refuses this seed" in rows[(lr, "1")]["error"]
    assert "Failed and diverged trials" in (out / "report.md").read_text()


def test_no_successful_trial_exits_1(
    tmp_path: Path, counting_task: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_SEED", "0")
    cfg = write_config(
        tmp_path / "f.yaml", counting_task, schedule={"name": "constant"}, search={"seeds": [0]}
    )
    res = invoke("search", str(cfg), "--out", str(tmp_path / "run"))
    assert res.exit_code == 1
    assert "no trial succeeded (1 failed)" in res.stderr


# -- resume ------------------------------------------------------------------------------------
def test_budget_then_resume_runs_only_the_missing_trials(
    tmp_path: Path, counting_task: Path
) -> None:
    cfg = write_config(tmp_path / "grid.yaml", counting_task)
    out = tmp_path / "run"
    first = invoke("search", str(cfg), "--out", str(out), "--max-trials", "3")
    assert first.exit_code == 0, first.output
    assert calls(counting_task) == 3 and "--resume" in first.stderr
    reset_calls(counting_task)
    second = invoke("search", "--resume", str(out), "--json")
    assert second.exit_code == 0, second.output
    assert calls(counting_task) == 5  # only the missing ones
    body = json.loads(second.stdout)  # --json: stdout holds the JSON and nothing else
    assert body == json.loads((out / "result.json").read_text())
    assert body["counts"]["complete"] == 8 and body["ran_now"] == 5 and body["finished"]


@pytest.mark.slow  # a real SIGKILL of a CLI subprocess, then a resume
def test_killed_search_resumes_without_redoing_finished_trials(
    tmp_path: Path, counting_task: Path
) -> None:
    cfg = write_config(tmp_path / "grid.yaml", counting_task)
    out = tmp_path / "run"
    env = {**os.environ, "KILL_AT": "4", "CI": "1"}  # SIGKILL inside the 4th trial
    cmd = [sys.executable, "-c", "from lrtune.cli import main; main()", "search", str(cfg)]
    cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert calls(counting_task) == 4  # 3 finished, the 4th died RUNNING
    report = invoke("report", str(out))  # the killed run's trials so far
    assert report.exit_code == 0, report.output
    states = sorted(r["state"] for r in csvrows(out / "trials.csv"))
    assert states == ["complete"] * 3 + ["running"] + ["waiting"] * 4
    reset_calls(counting_task)
    res = invoke("search", "--resume", str(out))
    assert res.exit_code == 0, res.output
    assert calls(counting_task) == 5  # the abandoned one again + the 4 never started
    rows = list(csvrows(out / "trials.csv"))
    assert len(rows) == 8 and {r["state"] for r in rows} == {"complete"}


def test_resume_needs_a_search_run_dir(tmp_path: Path) -> None:
    res = invoke("search", "--resume", str(tmp_path))
    assert res.exit_code == 2 and "not a search run directory" in res.stderr


# -- pruning ------------------------------------------------------------------------------------
def test_asha_prunes_a_clearly_bad_trial(tmp_path: Path, tiny_task: Path) -> None:
    cfg = load_search_config(
        write_config(
            tmp_path / "p.yaml",
            tiny_task,
            epochs=4,
            lr=[0.1, 1.0e-5, 3.0e-6],
            schedule={"name": "constant"},
            search={"seeds": [0], "pruner": "asha"},
        )
    )
    res = run_search(cfg, tmp_path / "run")
    by_lr = {t.lr: t for t in res.trials}
    assert by_lr[0.1].status == "complete" and by_lr[0.1].epochs_run == 4
    assert by_lr[1.0e-5].status == "pruned" and by_lr[1.0e-5].epochs_run < 4
    saved = res.epochs_saved()
    assert saved["epochs_saved_by_pruning"] >= 3 and saved["epochs_run"] < saved["epochs_full"]
    assert res.best is not None and res.best.lr == 0.1


@pytest.mark.parametrize("pruner", ["median", "wilcoxon"])
def test_other_pruners_run(tmp_path: Path, tiny_task: Path, pruner: str) -> None:
    cfg = load_search_config(
        write_config(
            tmp_path / "p.yaml",
            tiny_task,
            epochs=3,
            lr=[0.1, 0.05, 1e-5],
            schedule={"name": "constant"},
            search={"seeds": [0], "pruner": pruner},
        )
    )
    res = run_search(cfg, tmp_path / "run")
    assert len(res.trials) == 3 and res.best is not None


# -- refine ---------------------------------------------------------------------------------------
def test_refine_runs_a_short_pass_then_a_longer_one_around_the_best(
    tmp_path: Path, tiny_task: Path
) -> None:
    cfg = load_search_config(
        write_config(
            tmp_path / "r.yaml",
            tiny_task,
            lr=[0.01, 0.1, 1.0],
            schedule={"name": "step", "step_size": 2, "gamma": 0.5},
            search={"seeds": [0]},
        ),
        refine=True,
    )
    assert cfg.settings.refine is not None and cfg.settings.refine.coarse_epochs == 1
    res = run_search(cfg, tmp_path / "run")
    assert res.passes == ["coarse", "refine"]
    assert res.epochs == {"coarse": 1, "refine": 3}
    coarse_best = res.ranking["coarse"][0].point["lr"]
    refined = sorted(t.point["lr"] for t in res.trials if t.pass_name == "refine")
    assert coarse_best in refined and len(refined) in (2, 3)
    assert min(refined) >= 0.01 and max(refined) <= 1.0
    coarse = [t for t in res.trials if t.pass_name == "coarse"]
    # decay after 2 of 3 epochs (8 steps each) -> after 5 of the coarse pass's 8 steps
    assert all(t.schedule["interval"] == "step" and t.schedule["step_size"] == 5 for t in coarse)
    assert res.best is not None and res.best.pass_name == "refine"
    from lrtune.search.runner import Search

    again = Search(cfg, tmp_path / "run").load(res.steps_per_epoch)  # what lrtune report reads
    assert again.passes == res.passes and again.spaces == res.spaces and again.finished
    assert again.ranking == res.ranking and again.prune_from == res.prune_from


# -- bad configs: one line, exit 2, before any training -------------------------------------------
BAD = [
    ({"search": {"methd": "grid"}}, "unknown key 'methd' (did you mean 'method'?)"),
    ({"search": {"method": "grd"}}, "unknown method 'grd' (did you mean 'grid'?)"),
    ({"search": {"pruner": "ashaa"}}, "unknown pruner 'ashaa' (did you mean 'asha'?)"),
    ({"search": {"metric": "val_acc"}}, "unknown metric 'val_acc'"),
    ({"search": {"metric": "val_loss", "mode": "max"}}, "'mode: max' with metric val_loss"),
    ({"search": {"metric": "train_loss", "mode": "max"}}, "losses are minimised"),
    ({"search": {"seeds": []}}, "'seeds' must be a non-empty list"),
    ({"search": {"method": "random"}}, "random search needs 'trials'"),
    ({"schedule": {"name": "step", "step_size": [], "gamma": 0.1}}, "empty list"),
    ({"schedule": {"name": "step", "step_size": {"low": 1, "hihg": 3}}}, "did you mean 'high'"),
    ({"schedule": {"name": "step", "step_size": {"low": 1, "high": 3}}}, "a grid cannot enumerate"),
    ({"schedule": {"name": "step", "step_size": [1, 2], "gama": 0.1}}, "gama"),
    ({"schedule": {"name": "stepp", "step_size": [1, 2]}}, "did you mean 'step'"),
    ({"schedule": {"name": "step", "step_size": [0, 2]}}, "step_size=0"),
    ({"lr": [0.1, -1]}, "learning rates must be numbers > 0"),
    (
        {"lr": {"low": 0, "high": 1, "log": True}, "search": {"method": "random", "trials": 2}},
        "log range needs low > 0",
    ),
    (
        {"schedule": {"name": "step", "step_size": list(range(1, 60)), "gamma": [0.1, 0.2]}},
        "more than 200: pass --yes",
    ),
    ({"search": {"metric": "val_metric"}, "task": "REGRESSION"}, "define metric(output"),
    ({"schedule": {"name": "cosine", "warmup": {"epochs": [1, 3]}}}, "leaves no room"),
    (
        {"schedule": {"name": "cosine", "warmup": {"epochs": [0, 1]}}},
        "a warmup of 0 epochs is not a length (warmup.epochs must be > 0); to compare no "
        "warmup with 1 epoch, search the whole mapping: warmup: [null, {epochs: 1}]",
    ),
    ({"schedule": {"name": "cosine", "warmup": {"steps": [None, 5]}}}, "[null, {steps: 1}]"),
]


@pytest.mark.parametrize(("over", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_configs_exit_2_with_one_line(
    tmp_path: Path, counting_task: Path, tiny_regression: Path, over: dict[str, Any], message: str
) -> None:
    over = dict(over)
    task = tiny_regression if over.pop("task", None) == "REGRESSION" else counting_task
    cfg = write_config(tmp_path / "bad.yaml", task, **over)
    res = invoke("search", str(cfg), "--out", str(tmp_path / "run"))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0], lines[0]
    assert calls(counting_task) == 0  # nothing trained


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert invoke("search").exit_code == 2
    res = invoke("search", str(tmp_path / "missing.yaml"))
    assert res.exit_code == 2 and "config file not found" in res.stderr


def test_example_configs_validate() -> None:
    for path in sorted((REPO / "configs" / "search").glob("*.yaml")):
        cfg = load_search_config(path)
        assert cfg.n_trials() >= 2, path


def test_search_help_does_not_import_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from lrtune.cli import cli
        r = CliRunner().invoke(cli, ["search", "--help"])
        assert r.exit_code == 0 and "--resume" in r.output, r.output
        bad = [m for m in ("torch", "optuna", "matplotlib") if m in sys.modules]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_config_error_names_file_and_key(tmp_path: Path, tiny_task: Path) -> None:
    path = write_config(tmp_path / "x.yaml", tiny_task, search={"top_k": "five"})
    with pytest.raises(ConfigError, match=r"x\.yaml: search: 'top_k' must be an integer"):
        load_search_config(path)


def test_lr_auto_runs_the_range_test_once_and_resume_reuses_it(
    tmp_path: Path, tiny_task: Path
) -> None:
    cfg = load_search_config(
        write_config(
            tmp_path / "a.yaml",
            tiny_task,
            lr="auto",
            epochs=1,
            schedule={"name": "step", "step_size": [1, 2]},
            search={"seeds": [0]},
        )
    )
    events: list[Any] = []
    first = run_search(cfg, tmp_path / "run", max_trials=1, on_event=events.append)
    lr = first.lr_auto
    assert lr is not None and lr > 0 and [e.value for e in events if e.kind == "lr_auto"] == [lr]
    assert not first.finished
    events.clear()
    second = run_search(cfg, tmp_path / "run", resume=True, on_event=events.append)
    assert second.finished and second.lr_auto == lr and second.ran_now == 1
    assert not [e for e in events if e.kind == "lr_auto"]  # the range test did not run again
    assert {t.lr for t in second.trials} == {lr}
    from lrtune.search.runner import Search

    assert Search(cfg, tmp_path / "run").load(second.steps_per_epoch).lr_auto == lr


def test_scale_schedule_keeps_the_shape() -> None:
    from lrtune import schedules
    from lrtune.search.runner import scale_schedule

    spec = {"name": "multistep", "milestones": [4, 8], "gamma": 0.1, "warmup": {"epochs": 1}}
    short = scale_schedule(spec, 1 / 3, 10)  # 12 epochs -> 4, 10 steps per epoch
    assert short["interval"] == "step" and short["milestones"] == [13, 27]
    assert short["warmup"] == {"steps": 3}
    full = schedules.lr_curve(spec, 1.0, 10, 12)
    coarse = schedules.lr_curve(short, 1.0, 10, 4)
    assert min(full) == min(coarse) == pytest.approx(0.01)  # same decays, a third as long
    exp = scale_schedule({"name": "exponential", "gamma": 0.5}, 0.5, 4)
    assert schedules.lr_curve(exp, 1.0, 4, 2)[-1] == pytest.approx(
        schedules.lr_curve({"name": "exponential", "gamma": 0.5}, 1.0, 4, 4)[-1], rel=0.3
    )


def test_pruning_waits_until_the_schedules_differ(tmp_path: Path, tiny_task: Path) -> None:
    from lrtune.search.runner import first_difference_epoch

    assert first_difference_epoch([[1.0, 1.0, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]], 2, 2) == 2
    assert first_difference_epoch([[1.0, 1.0], [1.0, 1.0]], 1, 2) == 3  # never
    cfg = load_search_config(
        write_config(
            tmp_path / "p.yaml",
            tiny_task,
            epochs=4,
            schedule={"name": "step", "step_size": [2, 3], "gamma": 0.1},
            search={"seeds": [0, 1], "pruner": "asha"},
        )
    )
    res = run_search(cfg, tmp_path / "run")
    assert res.prune_from == {"main": 3}  # step_size 2 first decays in epoch 3
    assert all(t.epochs_run >= 3 for t in res.trials)  # nothing stopped before epoch 3
    ranked = [c for c in res.ranking["main"] if c.rank is not None]
    assert ranked and all(c.values for c in ranked)  # ranked on their completed seeds


# -- lrtune report RUN_DIR: every output again from the storage, nothing trained ------------------
REPORT_FILES = ("learning_curves.png", "schedules.png", "heatmap.png", "report.md")


@pytest.fixture(scope="module")
def search_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run dir, task) of one finished 2x2 grid search, 1 seed, 2 epochs (shared: copy it)."""
    root = tmp_path_factory.mktemp("search_run")
    task = root / "counting.py"
    task.write_text(textwrap.dedent(COUNTING_TASK))
    cfg = write_config(root / "grid.yaml", task, epochs=2, search={"seeds": [0]})
    res = invoke("search", str(cfg), "--out", str(root / "run"))
    assert res.exit_code == 0, res.output
    return root / "run", task


def copy_run(search_run: tuple[Path, Path], tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(search_run[0], tmp_path / "run"))


def ranking_section(report_md: str) -> str:
    return report_md.split("## Ranking", 1)[1].split("\n## ", 1)[0]


def test_report_rewrites_a_search_run_from_its_storage_without_training(
    search_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, task = copy_run(search_run, tmp_path), search_run[1]
    before = {n: (run / n).read_text() for n in ("report.md", "trials.csv", "curves.csv")}
    assert "| 1 |" in ranking_section(before["report.md"])
    for name in REPORT_FILES:
        (run / name).unlink()
    (run / "trials.csv").write_text('pass,trial\n"broken,')  # an output: rewritten, not read
    # A diagnosis stored by an older lrtune: the report diagnoses the curves again.
    journal = run / "study.journal"
    journal.write_text(journal.read_text().replace('"diagnosis":[]', '"diagnosis":["stale"]'))
    trained = calls(task)
    res = invoke("report", str(run))
    assert res.exit_code == 0, res.output
    assert calls(task) == trained  # nothing trained
    for name in REPORT_FILES:
        assert (run / name).stat().st_size > 0, name
    after = (run / "report.md").read_text()
    assert ranking_section(after) == ranking_section(before["report.md"])
    assert after == before["report.md"]  # the same run, so the same report
    assert (run / "trials.csv").read_text() == before["trials.csv"]  # no 'stale' left
    assert (run / "curves.csv").read_text() == before["curves.csv"]
    assert "Top 4 of 4 configurations" in res.stderr and "best: " in res.stdout
    assert str(run / "heatmap.png") in res.stdout.splitlines()


def test_report_on_an_interrupted_search_shows_the_trials_so_far(
    tmp_path: Path, counting_task: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "grid.yaml", counting_task, epochs=2, search={"seeds": [0]})
    run = tmp_path / "run"
    monkeypatch.setenv("INTERRUPT_AT", "3")  # Ctrl-C inside the third trial
    res = invoke("search", str(cfg), "--out", str(run))
    assert res.exit_code == 130 and f"lrtune report {run}" in res.stderr, res.output
    assert json.loads((run / "result.json").read_text())["finished"] is False
    monkeypatch.delenv("INTERRUPT_AT")
    res = invoke("report", str(run))
    assert res.exit_code == 0, res.output
    assert calls(counting_task) == 3  # the report trained nothing
    states = [r["state"] for r in csvrows(run / "trials.csv")]
    assert sorted(states) == ["complete", "complete", "running", "waiting"]
    report = (run / "report.md").read_text()
    assert "**unfinished**" in report and "| 2 |" in ranking_section(report)
    assert "--resume" in res.stderr
    body = json.loads((run / "result.json").read_text())
    assert body["counts"]["complete"] == 2 and not body["finished"]
    for name in REPORT_FILES:
        assert (run / name).stat().st_size > 0, name


def _garble_journal(run: Path) -> None:
    lines = (run / "study.journal").read_text().splitlines(keepends=True)
    lines[3] = '{"op_code": not json\n'
    (run / "study.journal").write_text("".join(lines))


def _patch_result(key: str, value: Any) -> Callable[[Path], None]:
    def patch(run: Path) -> None:
        body = json.loads((run / "result.json").read_text())
        body[key] = value
        (run / "result.json").write_text(json.dumps(body))

    return patch


BROKEN_RUNS: list[tuple[str, Callable[[Path], None], str]] = [
    ("garbled journal", _garble_journal, "study.journal: cannot read the search's trials"),
    ("empty journal", lambda run: (run / "study.journal").write_text(""), "holds no trial"),
    ("no journal", lambda run: (run / "study.journal").unlink(), "study.journal: missing"),
    ("no search.yaml", lambda run: (run / "search.yaml").unlink(), "no search.yaml"),
    ("bad steps", _patch_result("steps_per_epoch", "six"), "'steps_per_epoch' must be"),
]


@pytest.mark.parametrize(
    ("what", "damage", "message"), BROKEN_RUNS, ids=[b[0] for b in BROKEN_RUNS]
)
def test_report_on_a_broken_search_run_exits_2_with_one_line(
    search_run: tuple[Path, Path],
    tmp_path: Path,
    what: str,
    damage: Callable[[Path], None],
    message: str,
) -> None:
    run = copy_run(search_run, tmp_path)
    damage(run)
    res = invoke("report", str(run))
    assert res.exit_code == 2, (what, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_search_diagnoses_with_the_tasks_metric_direction(tmp_path: Path, tiny_task: Path) -> None:
    from lrtune.search.runner import Search

    for mode in ("max", "min"):
        cfg = load_search_config(write_config(tmp_path / "m.yaml", tiny_task, metric_mode=mode))
        assert cfg.settings.mode == "min"  # ranked by val_loss, whatever the metric's direction
        assert Search(cfg, tmp_path / "run")._worker_setup().metric_mode == mode


def test_report_reads_a_search_stored_in_a_database(tmp_path: Path, tiny_task: Path) -> None:
    from lrtune.search.storage import redact_url

    cfg = write_config(tmp_path / "g.yaml", tiny_task, epochs=2, search={"seeds": [0]})
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    run = tmp_path / "run"
    assert invoke("search", str(cfg), "--out", str(run), "--storage", url).exit_code == 0
    assert not (run / "study.journal").exists()
    assert json.loads((run / "result.json").read_text())["storage"] == url
    before = (run / "report.md").read_text()
    (run / "report.md").unlink()
    res = invoke("report", str(run))
    assert res.exit_code == 0, res.output
    assert (run / "report.md").read_text() == before
    assert redact_url("postgresql://bob:s3cret@db:5432/opt") == "postgresql://bob@db:5432/opt"


def test_the_task_files_optimizer_is_reported(tmp_path: Path, tiny_task: Path) -> None:
    task = tiny_task.with_name("own_adam.py")
    task.write_text(
        tiny_task.read_text()
        + "\ndef optimizer(params, lr):\n    return torch.optim.AdamW(params, lr=lr)\n"
    )
    cfg = write_config(
        tmp_path / "o.yaml",
        task,
        epochs=1,
        lr=[0.001, 0.01],
        schedule={"name": "constant"},
        search={"seeds": [0]},
    )
    out = tmp_path / "run"
    res = invoke("search", str(cfg), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "optimizer AdamW from the task file" in res.stderr
    assert json.loads((out / "result.json").read_text())["optimizer"] == (
        "AdamW from the task file"
    )
    assert "- optimizer: AdamW from the task file," in (out / "report.md").read_text()
    assert invoke("report", str(out)).exit_code == 0  # rebuilt from the storage: kept
    assert "- optimizer: AdamW from the task file," in (out / "report.md").read_text()


def test_pruning_defaults_wait_for_enough_trials_and_epochs() -> None:
    from lrtune.search.pruners import first_prunable_epoch, median_startup, pruning_note

    assert first_prunable_epoch(8, 1) == 2  # never on epoch 1's loss
    assert first_prunable_epoch(20, 1) == 5  # a quarter of the run first
    assert first_prunable_epoch(8, 4) == 4  # nor before the LR curves differ
    assert median_startup(8) == 5 and median_startup(40) == 10
    assert "too short" in pruning_note("median", 2, first_prunable_epoch(2, 1), 1, 4)
    assert "waits for 5 completed trials" in pruning_note("median", 8, 2, 1, 8)


def test_median_pruner_spares_the_startup_trials_and_each_trials_warmup(
    tmp_path: Path, tiny_task: Path
) -> None:
    cfg = load_search_config(
        write_config(
            tmp_path / "m.yaml",
            tiny_task,
            epochs=6,
            lr=[0.1, 0.05, 3e-5, 1e-5],
            schedule={
                "name": "cosine",
                "interval": "step",
                "warmup": {"epochs": [1, 3], "start_factor": 0.01},
            },
            search={"seeds": [0], "pruner": "median"},
        )
    )
    res = run_search(cfg, tmp_path / "run")
    assert res.prune_from == {"main": 2}
    by_number = sorted(res.trials, key=lambda t: t.number)
    assert all(t.status == "complete" for t in by_number[:5])  # the median's startup
    pruned = [t for t in res.trials if t.status == "pruned"]
    assert {t.point["warmup.epochs"] for t in pruned} == {1, 3}, [
        (t.point, t.status, t.epochs_run) for t in res.trials
    ]
    for t in pruned:  # never before epoch 2, never inside its own warmup
        assert t.epochs_run >= max(2, t.point["warmup.epochs"] + 1), (t.point, t.epochs_run)


def test_val_metric_with_a_custom_step_says_why_there_is_none(
    tmp_path: Path, tiny_task: Path
) -> None:
    task = tiny_task.with_name("own_step.py")
    task.write_text(
        tiny_task.read_text() + "\ndef step(model, batch):\n"
        "    x, y = batch\n"
        "    return nn.functional.cross_entropy(model(x), y)\n"
        "\ndef metric(output, target):\n"
        "    return float((output.argmax(1) == target).float().mean())\n"
    )
    cfg = write_config(tmp_path / "s.yaml", task, search={"metric": "val_metric"})
    res = invoke("search", str(cfg), "--out", str(tmp_path / "run"))
    assert res.exit_code == 2, res.output
    assert "return (loss, output, target) from it so lrtune can call metric" in res.stderr
    assert "use metric: val_loss" in res.stderr


def test_ties_on_the_metric_are_broken_by_the_val_loss_and_said() -> None:
    from dataclasses import replace

    from lrtune.report.search_report import ranking_markdown, tie_notes
    from lrtune.search.results import SearchResult, TrialRow, rank_configs

    def row(config: int, metric: float, val_losses: list[float]) -> TrialRow:
        curve = [{"val_metric": metric, "val_loss": v} for v in val_losses]
        return TrialRow(
            "main", config, config, {"gamma": config / 10}, 0, "complete", metric, metric, metric,
            curve=curve,
        )  # fmt: skip

    rows = [row(0, 0.9, [0.5, 0.30]), row(1, 0.9, [0.5, 0.10]), row(2, 0.8, [0.4, 0.05])]
    rows.append(row(3, 0.9, [0.2, 0.20]))
    ranked = rank_configs(rows, "max", "val_metric", "final")
    assert [c.config for c in ranked] == [1, 3, 0, 2]  # 0.9 x3 by final val_loss, then 0.8
    assert [c.tied_from for c in ranked] == [1, 1, 1, None]
    best = rank_configs(rows, "max", "val_metric", "best")
    assert [c.config for c in best][:3] == [1, 3, 0]  # lowest val_loss ever: 0.10, 0.20, 0.30
    # A loss metric: ties broken by the best value reached over the epochs.
    a = TrialRow("main", 0, 0, {}, 0, "complete", 0.3, best=0.2, final=0.3)
    b = TrialRow("main", 1, 1, {}, 0, "complete", 0.3, best=0.1, final=0.3)
    assert [c.config for c in rank_configs([a, b], "min", "val_loss", "final")] == [1, 0]

    result = SearchResult(
        passes=["main"], names=["gamma"], metric="val_metric", mode="max", objective="final",
        epochs={"main": 2}, steps_per_epoch=1, ranking={"main": ranked},
    )  # fmt: skip
    (note,) = tie_notes(result, 5)
    assert note == (
        "ranks 1-3 tie on mean validation metric 0.9; ordered by mean final val_loss, "
        "lower first: 0.1, 0.2, 0.3"
    )
    assert f"Tie: {note}." in ranking_markdown(result, "main", 5)
    assert tie_notes(result, 1) == [note]  # the best is tied: said even when shown alone
    ranked[3:] = [replace(ranked[3], tied_from=4), replace(ranked[3], rank=5, tied_from=4)]
    assert tie_notes(result, 3) == [note]  # a tie below the top k is not news


def test_out_into_another_run_dir_is_refused_before_any_training(
    tmp_path: Path, counting_task: Path
) -> None:
    cfg = write_config(tmp_path / "g.yaml", counting_task, epochs=1, search={"seeds": [0]})
    other = tmp_path / "check-run"
    other.mkdir()
    (other / "result.json").write_text('{"command": "check", "passed": true}')
    res = invoke("search", str(cfg), "--out", str(other))
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [
        f"error: {other} holds the results of an 'lrtune check' run; give --out a new directory"
    ]
    assert calls(counting_task) == 0 and sorted(p.name for p in other.iterdir()) == ["result.json"]
    done = tmp_path / "search-run"
    assert invoke("search", str(cfg), "--out", str(done)).exit_code == 0
    reset_calls(counting_task)
    res = invoke("search", str(cfg), "--out", str(done))
    assert res.exit_code == 2 and f"continue it with --resume {done}" in res.stderr
    assert calls(counting_task) == 0
