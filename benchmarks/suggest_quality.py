"""Suggestion-quality benchmark: does the learning rate a rule suggests train well?

For every task in `benchmarks/tasks/` (plain lrtune task files; `lrtune find` runs them too):

1. Oracle sweep: train the task for a short fixed budget (`epochs`, the task's own optimizer,
   the LR held constant; `--schedule cosine|onecycle` uses it as cosine's initial LR or
   onecycle's max_lr) at a log grid of LRs (3 per decade) with seeds 0, 1, 2, through the shared
   loop `lrtune.training.train`. The metric is the final epoch's validation accuracy
   (classification) or validation MSE (regression); a run that diverges or ends worse than
   a constant predictor scores as the constant predictor. The oracle is the grid LR with
   the best mean over the seeds.
2. Range tests: `lrtune.rangetest.find_lr` with its defaults (1e-7 .. 10 in 100 steps,
   `--repeats auto`: 3 to 20 repeats, each with its own model init and data order), run as
   independent groups (group g = `find_lr(seed=100 g)`; 3 groups, `--groups N` for more).
   "repeats=1" reads the first curve of each group alone (exactly what
   `find_lr(seed=100 g, repeats=1)` returns); "auto" is the whole group, as `lrtune find`
   reads it. The engine's own `build_result` turns cached curves into suggestions
   ("engine"); the other readings (the zero-lag curve lrtune read before, EMA weights) are
   kept for comparison, each curve read alone and the repeats combined as the engine does.
3. Every rule (and torch-lr-finder's own range test + suggestion, as a baseline) gives one
   LR per group, trained with seeds 0, 1, 2 (`--seeds N`: more) and the same budget as the
   oracle. An LR's metric (the oracle's too) is the mean over seeds, pooled with the lattice
   LRs 10% either side (weights 1/4, 1/2, 1/4; `--no-pool`: its own trainings only), because
   one LR's few trainings are noisy and the expected metric is smooth on that scale.
   Regret = oracle metric minus the mean achieved metric: accuracy points, or % of relative
   MSE for regression. `score` puts both on one scale (1 point = 10% relative MSE, the
   issue's 0.5 point / 5% equivalence) for medians and worst cases across tasks. Held-out tasks
   (`heldout=True`, marked *) were added after the rules were compared.

LRs are snapped to a lattice of 12 points per decade (at most 10% off) so that rules and the
oracle share trainings; every training is cached in `benchmarks/oracle_cache.json`, keyed by
the task file's syntax tree, budget, schedule, LR and seed, so a rerun only trains what is
new. Range-test curves are cached in `benchmarks/cache/` (gitignored).

    python benchmarks/suggest_quality.py                 # all tasks, all tables
    python benchmarks/suggest_quality.py --markdown      # tables as markdown
    python benchmarks/suggest_quality.py --tasks digits_mlp_sgd --json /tmp/bench.json
    python benchmarks/suggest_quality.py --groups 10     # + how often 3 runs differ > 2x

torch-lr-finder is optional (`pip install lrtune[bench]`); without it its row is left out.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
TASK_DIR = HERE / "tasks"
TRAIN_CACHE = HERE / "oracle_cache.json"
CURVE_CACHE = HERE / "cache" / "curves.json"

LATTICE = 12  # LR lattice: points per decade (a suggestion moves by at most 10**(1/24) = 10%)
ORACLE_STEP = 4  # oracle grid = every 4th lattice point: 3 per decade (1, 2.15, 4.64)
SEEDS = 3  # training seeds 0 .. SEEDS-1 for every LR scored (--seeds: more)
# An LR's metric pools its lattice neighbours (10% lower and higher), weights 1/4, 1/2, 1/4:
# the expected metric is smooth on that scale, and one training's seed noise is not (up to
# 3 points on the 3-epoch ShuffleNet task, where 0.01 and 0.0121 scored 84.4% and 89.2%).
POOL = ((-1, 0.25), (0, 0.5), (1, 0.25))
SEED_STRIDE = 100  # range-test group g runs find_lr(seed=100 g): its repeats' seeds never overlap
GROUPS = 3  # independent find runs per task (--groups: more, for the spread's distribution)
SCHEDULES = ("constant", "cosine", "onecycle")  # --schedule: how the suggested LR is used
POINT_PER_PCT = 0.1  # score: 1 accuracy point == 10% relative MSE (issue: 0.5 pt == 5%)


@dataclass(frozen=True)
class BenchTask:
    """One benchmark task: a task file in benchmarks/tasks/ and its budget and grid."""

    name: str
    kind: str  # 'classification' (val accuracy) | 'regression' (val MSE)
    optimizer: str  # what the task file's optimizer() builds (a label)
    epochs: int  # training budget, the same for the oracle and every rule
    grid: tuple[float, float]  # oracle LR range as decade exponents, both ends included
    heldout: bool = False  # True: not looked at while choosing the headline rule
    max_seeds: int | None = None  # cap on --seeds where one training costs seconds of CPU

    def seeds(self, wanted: int) -> int:
        """Training seeds per LR on this task: `wanted` (--seeds), at most `max_seeds`."""
        return wanted if self.max_seeds is None else min(wanted, self.max_seeds)

    @property
    def path(self) -> Path:
        return TASK_DIR / f"{self.name}.py"

    def grid_indices(self) -> list[int]:
        lo, hi = (round(e * LATTICE) for e in self.grid)
        lo -= lo % ORACLE_STEP
        return list(range(lo, hi + 1, ORACLE_STEP))


TASKS: tuple[BenchTask, ...] = (
    BenchTask("digits_mlp_sgd", "classification", "SGD m=0.9", 5, (-3.0, 0.5)),
    BenchTask("digits_cnn_adam", "classification", "Adam", 5, (-4.5, -0.5)),
    BenchTask("cancer_mlp_adamw", "classification", "AdamW wd=0.01", 8, (-4.5, -0.5)),
    BenchTask("diabetes_mlp_sgd", "regression", "SGD m=0.9", 10, (-4.0, 0.0)),
    BenchTask("diabetes_mlp_adam", "regression", "Adam", 10, (-4.5, -0.5)),
    # ~5 s per training on a 2-core CPU (the others: 0.1-0.7 s): at most 6 seeds.
    BenchTask("digits_shufflenet_sgd", "classification", "SGD m=0.9", 3, (-3.0, 0.5), max_seeds=6),
    # Held out: added after the rules were compared, to check the choice on unseen tasks.
    BenchTask("digits_cnn_sgd", "classification", "SGD m=0.9", 5, (-3.5, 0.5), True),
    BenchTask("digits_mlp_adamw", "classification", "AdamW wd=0.05", 5, (-4.5, -0.5), True),
    BenchTask("friedman_mlp_adam", "regression", "Adam", 5, (-4.5, -0.5), True),
)


def lattice_lr(idx: int) -> float:
    """The LR at lattice index `idx` (10 ** (idx / LATTICE))."""
    return float(10.0 ** (idx / LATTICE))


def snap(lr: float) -> int:
    """Nearest lattice index of an LR."""
    return int(round(math.log10(lr) * LATTICE))


@functools.cache
def file_hash(path: Path) -> str:
    """Hash of what a task file does: its syntax tree without the docstring, so that
    reformatting or rewording it keeps the cached trainings."""
    tree = ast.parse(path.read_text())
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    dump = "\n".join(ast.dump(node) for node in body)
    return hashlib.sha256(dump.encode()).hexdigest()[:12]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- caches -------------------------------------------------------------------------------
def load_json(path: Path) -> dict[str, Any]:
    if path.exists():
        with path.open() as f:
            return json.load(f)
    return {}


def save_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=0, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


class TrainCache:
    """Metric of one training per (task file, budget, schedule, LR lattice index, seed)."""

    def __init__(self, schedule: str = "constant", path: Path = TRAIN_CACHE) -> None:
        self.path = path
        self.schedule = schedule
        data = load_json(path)
        self.entries: dict[str, dict[str, Any]] = data.get("trainings", {})

    def key(self, task: BenchTask, idx: int, seed: int) -> str:
        budget = f"ep{task.epochs}" + ("" if self.schedule == "constant" else f"/{self.schedule}")
        return f"{task.name}@{file_hash(task.path)}|{budget}|lr{idx}|s{seed}"

    def get(self, task: BenchTask, idx: int, seed: int) -> dict[str, Any] | None:
        return self.entries.get(self.key(task, idx, seed))

    def put(self, task: BenchTask, idx: int, seed: int, entry: dict[str, Any]) -> None:
        self.entries[self.key(task, idx, seed)] = entry
        save_json(
            self.path,
            {
                "about": "benchmarks/suggest_quality.py trainings: task@hash|epochs[/schedule]|"
                f"lr lattice index (lr = 10**(i/{LATTICE}))|seed -> final val metric",
                "trainings": self.entries,
            },
        )


# -- training -----------------------------------------------------------------------------
def constant_predictor(task: BenchTask) -> float:
    """The metric of a model that ignores its input: majority class / train-mean MSE."""
    from lrtune.task import load_task

    t = load_task(task.path)
    y_train = np.concatenate([b[1].numpy() for b in t.train_loader(shuffle=False)])
    y_val = np.concatenate([b[1].numpy() for b in t.val_loader()])
    if task.kind == "classification":
        return float(np.mean(y_val == np.bincount(y_train).argmax()))
    return float(np.mean((y_val - y_train.mean()) ** 2))


def train_once(
    task: BenchTask, idx: int, seed: int, floor: float, schedule: str = "constant"
) -> dict[str, Any]:
    """Train at lattice LR `idx` with `seed`; the final val metric, floored at `floor`.

    The LR is the optimizer's base LR: the constant LR, cosine's initial LR, onecycle's max_lr.
    """
    from lrtune.task import load_task
    from lrtune.training import train

    t = load_task(task.path)
    spec = None if schedule == "constant" else {"name": schedule}
    res = train(t, lr=lattice_lr(idx), schedule=spec, epochs=task.epochs, seed=seed, device="cpu")
    raw: float | None = None
    if res.ok and res.final is not None:
        value = res.final.val_metric if task.kind == "classification" else res.final.val_loss
        raw = float(value) if value is not None and math.isfinite(value) else None
    if raw is None:
        metric = floor
    elif task.kind == "classification":
        metric = max(raw, floor)
    else:
        metric = min(raw, floor)
    return {"metric": metric, "raw": raw, "status": res.status, "seconds": round(res.seconds, 2)}


def ensure_trainings(
    task: BenchTask, wanted: Iterable[tuple[int, int]], cache: TrainCache, floor: float
) -> None:
    """Train every (lattice index, seed) not yet in the cache."""
    todo = sorted({w for w in wanted if cache.get(task, *w) is None})
    for k, (idx, seed) in enumerate(todo, 1):
        entry = train_once(task, idx, seed, floor, cache.schedule)
        cache.put(task, idx, seed, entry)
        log(
            f"  [{task.name}] train {k}/{len(todo)}: lr {lattice_lr(idx):.3g} seed {seed} -> "
            f"{entry['metric']:.4f} ({entry['status']}, {entry['seconds']}s)"
        )


def pooled(idx: int, seeds: int, pool: bool) -> list[tuple[int, int, float]]:
    """The (lattice index, seed, weight) trainings that score lattice LR `idx`."""
    offsets = POOL if pool else ((0, 1.0),)
    return [(idx + d, s, w / seeds) for d, w in offsets for s in range(seeds)]


def mean_metric(task: BenchTask, cache: TrainCache, idx: int, seeds: int, pool: bool) -> float:
    """The metric of lattice LR `idx`: mean over seeds, pooled with its neighbours."""
    return float(sum(w * cache.get(task, i, s)["metric"] for i, s, w in pooled(idx, seeds, pool)))  # type: ignore[index]


# -- range tests --------------------------------------------------------------------------
@dataclass
class CurveData:
    """One range-test curve as cached: the raw record, enough to re-apply any smoothing."""

    lrs: np.ndarray
    losses: np.ndarray  # raw loss per step
    smoothed: np.ndarray  # the engine's online EMA (decides divergence)
    stop_reason: str

    @property
    def diverged(self) -> bool:
        return self.stop_reason in ("diverged", "nan")

    def to_json(self) -> dict[str, Any]:
        def clean(a: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in a]

        return {
            "lrs": clean(self.lrs),
            "losses": clean(self.losses),
            "smoothed": clean(self.smoothed),
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CurveData:
        def arr(v: list[float | None]) -> np.ndarray:
            return np.array([np.nan if x is None else x for x in v], dtype=float)

        return cls(arr(d["lrs"]), arr(d["losses"]), arr(d["smoothed"]), d["stop_reason"])


@dataclass
class TaskCurves:
    """Range-test groups for one task (one find_lr run each) and the baseline's picks."""

    groups: list[list[CurveData]]
    tlf: list[float | None] = field(default_factory=list)  # torch-lr-finder, one per group


def range_settings() -> Any:
    """The range test the benchmark runs: find_lr's defaults."""
    from lrtune.rangetest import RangeTestSettings

    return RangeTestSettings()


def curve_key(task: BenchTask) -> str:
    """Raw curves depend on the task file, the ramp and torch, not on how they are smoothed."""
    import torch

    s = range_settings()
    from lrtune.rangetest import DEFAULT_MAX_REPEATS, TARGET_INTERVAL

    ramp = f"{s.start_lr:g}-{s.end_lr:g}x{s.steps}{s.mode}/ema{s.smooth:g}/div{s.diverge:g}"
    # Repeats: "auto" (3 .. max, to a target 95% interval), each with its own model init.
    repeats = f"auto-t{TARGET_INTERVAL:g}x{DEFAULT_MAX_REPEATS}/init-per-repeat"
    return f"{task.name}@{file_hash(task.path)}|{ramp}|{repeats}|torch{torch.__version__}"


def torch_lr_finder_suggestion(task: BenchTask, seed: int) -> float | None:
    """torch-lr-finder's range test (its defaults, 1e-7 .. 10 in 100 steps) and suggestion."""
    try:
        from torch_lr_finder import LRFinder
    except ImportError:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lrtune.runtime import seed_everything
    from lrtune.task import load_task

    t = load_task(task.path)
    seed_everything(seed)
    model = t.build_model()
    opt = t.build_optimizer(model.parameters(), 1e-7)
    finder = LRFinder(model, opt, t.loss_of, device="cpu")
    fig, ax = plt.subplots()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            finder.range_test(t.train_loader(), end_lr=10, num_iter=100)
            _, lr = finder.plot(ax=ax, suggest_lr=True)
    except Exception as exc:  # its suggestion fails on short curves; that is a data point
        log(f"  [{task.name}] torch-lr-finder gave no suggestion: {exc}")
        return None
    finally:
        plt.close(fig)
    return float(lr) if lr is not None else None


def ensure_curves(task: BenchTask, groups: int) -> TaskCurves:
    """Run (or load) `groups` x find_lr() (its defaults) and torch-lr-finder per group."""
    from lrtune.rangetest import find_lr

    store = load_json(CURVE_CACHE)
    key = curve_key(task)
    entry = store.get(key, {"groups": [], "tlf": []})
    changed = False
    while len(entry["groups"]) < groups:
        g = len(entry["groups"])
        t0 = time.perf_counter()
        res = find_lr(task.path, seed=SEED_STRIDE * g, device="cpu")
        curves = [CurveData(c.lrs, c.losses, c.smoothed, c.stop_reason) for c in res.curves]
        entry["groups"].append([c.to_json() for c in curves])
        changed = True
        log(f"  [{task.name}] range tests, group {g}: {time.perf_counter() - t0:.1f}s")
    while len(entry["tlf"]) < groups:
        g = len(entry["tlf"])
        entry["tlf"].append(torch_lr_finder_suggestion(task, SEED_STRIDE * g))
        changed = True
    if changed:
        store[key] = entry
        save_json(CURVE_CACHE, store)
    return TaskCurves(
        groups=[[CurveData.from_json(c) for c in grp] for grp in entry["groups"][:groups]],
        tlf=entry["tlf"][:groups],
    )


# -- readings: which smoothed curve the rules read ----------------------------------------
ENGINE = "engine"  # whatever lrtune.rangetest reads (Curve.usable + build_result)


def engine_result(curves: Sequence[CurveData]) -> Any:
    """The engine's own RangeTestResult for cached curves (its reading, aggregation, rules)."""
    from lrtune.rangetest import Curve, build_result
    from lrtune.suggest import HEADLINE_RULE

    rebuilt = [
        Curve(
            lrs=c.lrs,
            losses=c.losses,
            smoothed=c.smoothed,
            stop_reason=c.stop_reason,
            seed=0,
            seconds=0.0,
            steps_run=len(c.lrs),
        )
        for c in curves
    ]
    return build_result(range_settings(), rebuilt, HEADLINE_RULE, "", "", 0.0)


# The zero-lag reading lrtune's rules read before this benchmark (kept here to compare):
# a 5-point running median, then a forward-backward EMA of weight 2 x smooth, cut where the
# raw loss blew up when the online EMA had diverged.
def median_filter(values: Sequence[float], width: int) -> np.ndarray:
    """Running median over a centred window (shrinking at the ends); NaNs ignored."""
    v = np.asarray(values, dtype=float)
    half = width // 2
    out = np.full(len(v), np.nan)
    for i in range(len(v)):
        w = v[max(0, i - half) : i + half + 1]
        w = w[np.isfinite(w)]
        if len(w):
            out[i] = np.median(w)
    return out


def zero_lag(values: Sequence[float], weight: float) -> np.ndarray:
    """Running median, then a forward-backward EMA (no lag)."""
    from lrtune.rangetest import ema

    v = median_filter(values, 5)
    out = np.full(len(v), np.nan)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return out
    fwd = ema(v[ok], weight)
    out[ok] = ema(fwd[::-1], weight)[::-1]
    return out


def blowup_index(raw: Sequence[float], diverge: float) -> int:
    """First step whose raw loss exceeds `diverge` x the lowest running-median loss before it."""
    v = np.asarray(raw, dtype=float)
    med = median_filter(v, 5)
    best = math.inf
    for i, x in enumerate(v):
        if not math.isfinite(x) or (i > 0 and x > diverge * best):
            return max(i, 1)
        if math.isfinite(med[i]):
            best = min(best, med[i])
    return len(v)


def _zero_lag(c: CurveData) -> np.ndarray:
    """The former engine reading: zero-lag, cut at the blow-up only when the EMA diverged."""
    s = range_settings()
    n = len(c.losses)
    cut = blowup_index(c.losses, s.diverge) if c.diverged else n
    smooth = zero_lag(list(c.losses[:cut]), min(1.0, 2 * s.smooth))
    return np.append(smooth, [np.nan] * (n - cut))


def _ema(c: CurveData) -> np.ndarray:
    """The online EMA, cut before the step that tripped divergence (as Curve.usable cuts)."""
    out = c.smoothed.copy()
    if c.diverged:
        out[-1] = np.nan
    return out


def proposed_blowup_index(raw: Sequence[float], diverge: float) -> int:
    """A better blow-up test for the zero-lag reading: also stop where the loss is back
    above its start.

    The engine's test (raw loss > diverge x the best running median) misses blow-ups of
    losses that saturate (cross-entropy settles near log(classes) after it explodes); a
    running-median loss that climbs back above the loss the test started from, after its
    minimum, means training broke, whatever the scale.
    """
    v = np.asarray(raw, dtype=float)
    cut = blowup_index(v, diverge)
    med = median_filter(v, 5)
    finite = np.isfinite(med[:cut])
    if finite.sum() < 3:
        return cut
    start = float(np.nanmedian(med[: max(3, len(v) // 10)]))
    i_min = int(np.nanargmin(np.where(finite, med[:cut], np.nan)))
    back = np.nonzero(med[i_min:cut] > start)[0]
    return i_min + int(back[0]) if len(back) else cut


def _zero_lag_cut(c: CurveData) -> np.ndarray:
    """Zero-lag smoothing cut at the proposed blow-up index, whether or not the EMA diverged."""
    s = range_settings()
    n = len(c.losses)
    cut = proposed_blowup_index(c.losses, s.diverge)
    smooth = zero_lag(list(c.losses[:cut]), min(1.0, 2 * s.smooth))
    return np.append(smooth, [np.nan] * (n - cut))


def _ema_weight(weight: float) -> Callable[[CurveData], np.ndarray]:
    """The online EMA with another weight (sensitivity check; the stop point is unchanged)."""

    def reading(c: CurveData) -> np.ndarray:
        from lrtune.rangetest import ema

        out = np.full(len(c.losses), np.nan)
        ok = np.isfinite(c.losses)
        out[ok] = ema(c.losses[ok], weight)
        if c.diverged:
            out[-1] = np.nan
        return out

    return reading


READINGS: dict[str, Callable[[CurveData], np.ndarray]] = {
    "zero-lag": _zero_lag,  # fwd-bwd EMA over a running median (lrtune's reading before)
    "zero-lag+cut": _zero_lag_cut,  # the same, always cut where the raw loss blew up
    "ema": _ema,  # the online EMA (lags ~1/smooth steps; fastai and torch-lr-finder read it)
    "ema(0.025)": _ema_weight(0.025),  # sensitivity: half and twice the default --smooth
    "ema(0.1)": _ema_weight(0.1),
}


def readable(curve: CurveData, reading: str) -> tuple[np.ndarray, np.ndarray]:
    """(lrs, loss) a rule reads from one curve, cut before a divergence, as Curve.usable does."""
    from lrtune.suggest import prepare_curve

    end = len(curve.lrs) - (1 if curve.diverged else 0)
    return prepare_curve(curve.lrs[:end], READINGS[reading](curve)[:end])


# -- candidate rules tried here and not in lrtune.suggest (same contract as its rules) ---
Rule = Callable[[np.ndarray, np.ndarray], "float | None"]


def _lr_at_min(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    return float(lrs[int(np.argmin(losses))]) if len(lrs) >= 2 else None


def _basin_left(tol: float) -> Rule:
    """The LR where the loss first gets within `tol` x (start - min) of its minimum."""

    def rule(lrs: np.ndarray, losses: np.ndarray) -> float | None:
        i_min = int(np.argmin(losses))
        drop = float(losses[0] - losses[i_min])
        if drop <= 0:
            return None
        near = np.nonzero(losses[: i_min + 1] <= losses[i_min] + tol * drop)[0]
        return float(lrs[int(near[0])])

    return rule


def _last(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    return float(lrs[-1]) if len(lrs) else None


def _scaled(fn: Rule, k: float) -> Rule:
    def rule(lrs: np.ndarray, losses: np.ndarray) -> float | None:
        lr = fn(lrs, losses)
        return None if lr is None else lr / k

    return rule


CANDIDATES: dict[str, Rule] = {
    "min/3": _scaled(_lr_at_min, 3.0),  # a gentler fraction of the LR at the minimum
    "basin10/3": _scaled(_basin_left(0.10), 3.0),  # 1/3 of where 90% of the drop is done
    "blowup/10": _scaled(_last, 10.0),  # 1/10 of where the reading curve ends (divergence)
    "blowup/30": _scaled(_last, 30.0),
}


def _headline(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    from lrtune.suggest import HEADLINE_RULE, get_rule

    return get_rule(HEADLINE_RULE).fn(lrs, losses)


# The headline times a factor: is it calibrated for the schedule (--schedule) it feeds?
for _k in (0.5, 2.0, 4.0, 8.0):
    CANDIDATES[f"headline x{_k:g}"] = _scaled(_headline, 1 / _k)


def rule_lr(rule: str, lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """A registry rule or a candidate on (lrs, losses); None when it has nothing to say."""
    from lrtune.suggest import MIN_POINTS, get_rule

    if len(lrs) < MIN_POINTS:
        return None
    fn = CANDIDATES[rule] if rule in CANDIDATES else get_rule(rule).fn
    lr = fn(lrs, losses)
    return float(lr) if lr is not None and math.isfinite(lr) and lr > 0 else None


def suggest_group(
    curves: Sequence[CurveData], reading: str, rules: Sequence[str]
) -> tuple[dict[str, float | None], dict[str, list[float | None]]]:
    """(rule -> suggestion from the group, rule -> suggestion per curve) for one reading."""
    if reading == ENGINE:
        res = engine_result(curves)
        return dict(res.suggestions), {k: list(v) for k, v in res.per_repeat.items()}
    from lrtune.suggest import combine

    # As the engine does: each curve read alone, the repeats combined (lrtune.suggest.combine).
    per = {r: [rule_lr(r, *readable(c, reading)) for c in curves] for r in rules}
    return {r: combine(v).lr for r, v in per.items()}, per


# -- evaluation ---------------------------------------------------------------------------
MODES = ("repeats=1", "auto")
BASELINE = "torch-lr-finder"
Key = tuple[str, str, str]  # (rule, reading, mode)


def ratio(values: Sequence[float | None]) -> float | None:
    """max/min of positive values; None if any is missing."""
    if not values or any(v is None or v <= 0 for v in values):
        return None
    return max(values) / min(values)  # type: ignore[type-var,operator]


@dataclass
class Outcome:
    """One (rule, reading, mode) on one task: the LR per group and what it trained to."""

    lrs: list[float | None]  # one suggestion per independent range-test group
    metric: float  # mean over groups of the final val metric (group g trained with seed g)
    regret: float  # native units: accuracy points, or % relative MSE
    score: float  # regret on one scale: accuracy points (regression: % / 10)
    within: float | None = None  # worst spread of per-repeat suggestions inside one run

    @property
    def spread(self) -> float | None:
        """max/min of the suggestion across the first 3 independent runs (seeds 0, 100, 200)."""
        return ratio(self.lrs[:3])

    @property
    def p_over_2x(self) -> float | None:
        """Share of all 3-run subsets of the groups whose max/min exceeds 2x (>= 4 groups)."""
        if len(self.lrs) < 4:
            return None
        trios = [ratio(list(t)) for t in itertools.combinations(self.lrs, 3)]
        return float(np.mean([t is None or t > 2.0 for t in trios]))

    @property
    def typical_lr(self) -> float | None:
        v = [x for x in self.lrs if x]
        return float(np.exp(np.mean(np.log(v)))) if v else None


@dataclass
class TaskResult:
    task: BenchTask
    floor: float
    oracle_idx: int
    oracle_metric: float
    oracle_sd: float
    seeds: int  # training seeds per LR on this task
    grid: list[tuple[float, float]]  # (lr, mean metric)
    outcomes: dict[Key, Outcome]


def regret_of(task: BenchTask, best: float, achieved: float) -> tuple[float, float]:
    """(regret in native units, score in accuracy points)."""
    if task.kind == "classification":
        r = 100.0 * (best - achieved)
        return r, r
    r = 100.0 * (achieved - best) / best
    return r, r * POINT_PER_PCT


def suggestions_for(
    curves: TaskCurves, rules: Sequence[str]
) -> dict[Key, tuple[list[float | None], float | None]]:
    """(rule, reading, mode) -> (one suggestion per group, worst within-run spread)."""
    from lrtune.suggest import RULES

    out: dict[Key, tuple[list[float | None], float | None]] = {}
    for reading in (ENGINE, *READINGS):
        names = list(RULES) if reading == ENGINE else list(rules)
        single = [suggest_group(grp[:1], reading, names)[0] for grp in curves.groups]
        full = [suggest_group(grp, reading, names) for grp in curves.groups]
        for r in names:
            out[(r, reading, "repeats=1")] = ([s.get(r) for s in single], None)
            within = [ratio(per.get(r, [])) for _, per in full]
            worst = None if any(w is None for w in within) else max(within)  # type: ignore[type-var]
            out[(r, reading, "auto")] = ([agg.get(r) for agg, _ in full], worst)
    if any(curves.tlf):  # torch-lr-finder installed
        for mode in MODES:
            out[(BASELINE, "ema", mode)] = (list(curves.tlf), None)
    return out


def evaluate_task(
    task: BenchTask,
    groups: int,
    cache: TrainCache,
    rules: Sequence[str],
    seeds: int = SEEDS,
    pool: bool = True,
) -> TaskResult:
    """Oracle sweep, range tests, every rule's suggestion trained; all cached."""
    seeds = task.seeds(seeds)
    log(f"[{task.name}] {task.kind}, {task.optimizer}, {task.epochs} epochs, {seeds} seeds")
    floor = constant_predictor(task)
    grid = task.grid_indices()

    def need(indices: Iterable[int]) -> list[tuple[int, int]]:
        return [(i, s) for idx in indices for i, s, _ in pooled(idx, seeds, pool)]

    ensure_trainings(task, need(grid), cache, floor)
    means = {i: mean_metric(task, cache, i, seeds, pool) for i in grid}
    better = max if task.kind == "classification" else min
    best_idx = better(grid, key=lambda i: means[i])
    if best_idx in (grid[0], grid[-1]):
        log(f"  warning: [{task.name}] the oracle best is at the edge of the grid: widen it")
    sd = float(np.std([cache.get(task, best_idx, s)["metric"] for s in range(seeds)]))  # type: ignore[index]

    curves = ensure_curves(task, groups)
    sugg = suggestions_for(curves, rules)
    wanted = need(snap(lr) for lrs, _ in sugg.values() for lr in lrs if lr)
    ensure_trainings(task, wanted, cache, floor)

    outcomes: dict[Key, Outcome] = {}
    for key, (lrs, within) in sugg.items():
        got = [mean_metric(task, cache, snap(lr), seeds, pool) if lr else floor for lr in lrs]
        metric = float(np.mean(got))
        regret, score = regret_of(task, means[best_idx], metric)
        outcomes[key] = Outcome(lrs, metric, regret, score, within)
    return TaskResult(
        task=task,
        floor=floor,
        oracle_idx=best_idx,
        oracle_metric=means[best_idx],
        oracle_sd=sd,
        seeds=seeds,
        grid=[(lattice_lr(i), means[i]) for i in grid],
        outcomes=outcomes,
    )


# -- aggregation and tables ---------------------------------------------------------------
@dataclass
class Row:
    """One (rule, reading, mode) across tasks."""

    key: Key
    per: list[Outcome]
    dev: tuple[float, float]  # (median, worst) score over the tasks rules were chosen on
    held: tuple[float, float] | None  # the same over held-out tasks
    spread: float | None  # worst spread across independent runs
    within: float | None  # worst spread of per-repeat suggestions inside one run


def med_worst(scores: Sequence[float]) -> tuple[float, float] | None:
    return (float(np.median(scores)), float(np.max(scores))) if scores else None


def make_rows(results: Sequence[TaskResult], keys: Iterable[Key]) -> list[Row]:
    rows = []
    for key in keys:
        if not all(key in r.outcomes for r in results):
            continue
        per = [r.outcomes[key] for r in results]
        dev = med_worst([o.score for r, o in zip(results, per) if not r.task.heldout])
        held = med_worst([o.score for r, o in zip(results, per) if r.task.heldout])
        spreads = [o.spread for o in per]
        withins = [o.within for o in per]
        rows.append(
            Row(
                key=key,
                per=per,
                dev=dev or (math.nan, math.nan),
                held=held,
                spread=None if any(s is None for s in spreads) else max(spreads),  # type: ignore[type-var]
                within=None if any(w is None for w in withins) else max(withins),  # type: ignore[type-var]
            )
        )
    return rows


def best_row(rows: Sequence[Row]) -> Row:
    """Lowest median regret on the development tasks, ties broken by the worst case."""
    return min(rows, key=lambda r: (round(r.dev[0], 2), r.dev[1]))


def fmt_lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.2g}"


def fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}x"


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def fmt_metric(task: BenchTask, v: float) -> str:
    return f"{100 * v:.1f}%" if task.kind == "classification" else f"{v:.3f}"


def fmt_regret(task: BenchTask, r: float) -> str:
    return f"{r:+.1f}" if task.kind == "classification" else f"{r:+.0f}%"


def fmt_mw(mw: tuple[float, float] | None) -> list[str]:
    return ["-", "-"] if mw is None else [f"{mw[0]:.2f}", f"{mw[1]:.2f}"]


def label(task: BenchTask) -> str:
    return f"{task.name}*" if task.heldout else task.name


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def oracle_table(results: Sequence[TaskResult], markdown: bool) -> str:
    headers = ["task", "optimizer", "budget", "oracle grid", "oracle LR", "oracle metric",
               "seeds", "sd of one training", "constant predictor"]  # fmt: skip
    rows = []
    for r in results:
        t = r.task
        metric = "val acc" if t.kind == "classification" else "val MSE"
        sd = f"{100 * r.oracle_sd:.1f}" if t.kind == "classification" else f"{r.oracle_sd:.3f}"
        rows.append([
            label(t), t.optimizer, f"{t.epochs} epochs",
            f"{fmt_lr(r.grid[0][0])} .. {fmt_lr(r.grid[-1][0])}",
            fmt_lr(lattice_lr(r.oracle_idx)), f"{metric} {fmt_metric(t, r.oracle_metric)}",
            str(r.seeds), sd, fmt_metric(t, r.floor),
        ])  # fmt: skip
    return render(headers, rows, markdown)


def regret_table(results: Sequence[TaskResult], rows: Sequence[Row], markdown: bool) -> str:
    """Per task: the suggested LR (geometric mean over runs) and its regret; then summaries."""
    headers = ["rule", *(label(r.task) for r in results), "median", "worst", "median*", "worst*",
               "spread"]  # fmt: skip
    body = []
    for row in sorted(rows, key=lambda r: (round(r.dev[0], 2), r.dev[1])):
        cells = [row.key[0]]
        cells += [f"{fmt_lr(o.typical_lr)} {fmt_regret(r.task, o.regret)}"
                  for r, o in zip(results, row.per)]  # fmt: skip
        cells += [*fmt_mw(row.dev), *fmt_mw(row.held), fmt_x(row.spread)]
        body.append(cells)
    return render(headers, body, markdown)


def readings_table(rows: Sequence[Row], markdown: bool) -> str:
    headers = ["rule", "reading", "mode", "median", "worst", "median*", "worst*", "spread",
               "within-run spread"]  # fmt: skip
    body = [
        [*row.key, *fmt_mw(row.dev), *fmt_mw(row.held), fmt_x(row.spread), fmt_x(row.within)]
        for row in sorted(rows, key=lambda r: (round(r.dev[0], 2), r.dev[1]))
    ]
    return render(headers, body, markdown)


def spread_table(results: Sequence[TaskResult], rule: str, markdown: bool) -> str:
    headers = ["spread of " + rule, *(label(r.task) for r in results), "max"]
    lines = []
    for name, mode, attr in [
        ("across runs, --repeats 1", "repeats=1", "spread"),
        ("across 3 runs, --repeats auto", "auto", "spread"),
        ("P(3 runs > 2x), --repeats auto", "auto", "p_over_2x"),
        ("within one --repeats auto run", "auto", "within"),
    ]:
        vals = [getattr(r.outcomes[(rule, ENGINE, mode)], attr) for r in results]
        ok = [v for v in vals if v is not None]
        fmt = fmt_pct if attr == "p_over_2x" else fmt_x
        lines.append([name, *(fmt(v) for v in vals), fmt(max(ok) if ok else None)])
    return render(headers, lines, markdown)


def summary(results: Sequence[TaskResult]) -> dict[str, Any]:
    """Every number, for --json."""
    return {
        "tasks": [
            {
                "name": r.task.name,
                "heldout": r.task.heldout,
                "kind": r.task.kind,
                "optimizer": r.task.optimizer,
                "epochs": r.task.epochs,
                "constant_predictor": r.floor,
                "seeds": r.seeds,
                "oracle_lr": lattice_lr(r.oracle_idx),
                "oracle_metric": r.oracle_metric,
                "grid": r.grid,
                "outcomes": {
                    "/".join(k): {
                        "lrs": o.lrs,
                        "metric": o.metric,
                        "regret": o.regret,
                        "score": o.score,
                        "spread": o.spread,
                        "within": o.within,
                        "p_over_2x": o.p_over_2x,
                    }
                    for k, o in r.outcomes.items()
                },
            }
            for r in results
        ]
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", nargs="*", help="task names (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--json", type=Path, help="write every number to this JSON file")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--groups",
        type=int,
        default=GROUPS,
        help="independent find runs per task (default 3; more estimate how often 3 runs "
        "disagree by more than 2x)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=SEEDS,
        help=f"training seeds per LR (default {SEEDS}; a task's max_seeds caps it)",
    )
    parser.add_argument(
        "--no-pool",
        dest="pool",
        action="store_false",
        help="score an LR by its own trainings only, not pooled with its lattice neighbours",
    )
    parser.add_argument(
        "--schedule",
        default="constant",
        choices=SCHEDULES,
        help="what every training runs: the suggested LR held constant (default), as cosine's "
        "initial LR, or as onecycle's max_lr",
    )
    args = parser.parse_args(argv)

    import torch

    from lrtune.suggest import HEADLINE_RULE, RULES

    torch.set_num_threads(args.threads)
    by_name = {t.name: t for t in TASKS}
    unknown = [n for n in args.tasks or [] if n not in by_name]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    tasks = [by_name[n] for n in args.tasks] if args.tasks else list(TASKS)
    cache = TrainCache(args.schedule)
    rules = [*RULES, *CANDIDATES]
    t0 = time.perf_counter()
    results = [evaluate_task(t, args.groups, cache, rules, args.seeds, args.pool) for t in tasks]
    log(f"done in {time.perf_counter() - t0:.0f}s")

    md = args.markdown
    used = {"constant": "LR held constant", "cosine": "cosine decay from the LR to 0",
            "onecycle": "onecycle with the LR as max_lr"}[args.schedule]  # fmt: skip
    scored = "mean over each task's seeds (0 .. seeds-1, column below)" + (
        ", pooled with the lattice LRs 10% either side (1/4, 1/2, 1/4)" if args.pool else ""
    )
    print(f"Oracle: {used}, fixed budget; metric = {scored}, at the best grid LR "
          "(* = held-out task, not used to choose the rule)\n")  # fmt: skip
    print(oracle_table(results, md))
    engine_is_ema = all(
        r.outcomes[(rule, ENGINE, m)].lrs == r.outcomes[(rule, "ema", m)].lrs
        for r in results
        for rule in RULES
        for m in MODES
    )
    tables = [(ENGINE, "auto"), (ENGINE, "repeats=1")]
    if not engine_is_ema:
        tables.append(("ema", "auto"))
    for reading, mode in tables:
        keys = [(r, reading, mode) for r in RULES] + [(BASELINE, "ema", mode)]
        what = "as lrtune computes it" if reading == ENGINE else f"on the {reading} reading"
        print(f"\nRegret of each rule {what}, {mode.replace('=', ' ')} (cell: LR, geometric "
              "mean of 3 runs, and regret in accuracy points or % relative MSE; median/worst "
              "in points, 10% MSE = 1 point; * = held-out tasks)\n")  # fmt: skip
        print(regret_table(results, make_rows(results, keys), md))
    print("\nEvery rule on every reading of the curve (engine = what lrtune reads today; "
          "median/worst over the development tasks, * = held out)\n")  # fmt: skip
    keys = [(r, rd, m) for rd in READINGS for r in rules for m in MODES]
    keys += [(r, ENGINE, m) for r in RULES for m in MODES]
    print(readings_table(make_rows(results, keys), md))
    print(f"\nSpread of the headline ({HEADLINE_RULE}): max/min of its suggestion\n")
    print(spread_table(results, HEADLINE_RULE, md))
    for mode in MODES:
        rows = make_rows(results, [(r, ENGINE, mode) for r in RULES])
        best = best_row(rows)
        head = next(r for r in rows if r.key[0] == HEADLINE_RULE)
        print(f"\n{mode}: lowest median regret on the development tasks: {best.key[0]} "
              f"(median {best.dev[0]:.2f}, worst {best.dev[1]:.2f}); headline {HEADLINE_RULE}: "
              f"median {head.dev[0]:.2f}, worst {head.dev[1]:.2f}"
              + ("" if head.held is None else
                 f"; held out: median {head.held[0]:.2f}, worst {head.held[1]:.2f}"))  # fmt: skip
        tried = make_rows(results, [k for k in results[0].outcomes if k[2] == mode])
        safest = min(tried, key=lambda r: (r.dev[1], r.dev[0]))
        print(f"{mode}: lowest worst case of the {len(tried)} rule/reading pairs tried: "
              f"{safest.key[0]} on the {safest.key[1]} reading (median {safest.dev[0]:.2f}, "
              f"worst {safest.dev[1]:.2f})")  # fmt: skip
    if args.json:
        save_json(args.json, summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
