"""`lrtune doctor`: the practitioner's sanity checks on a task file, each PASS/WARN/FAIL.

The checks run in order (`CHECKS`, one registry); each measures something, compares it with
a documented threshold (constants below) and says what to do:

1. `data`: the loaders yield batches (train and val), how many examples.
2. `labels`: integer labels lie in [0, C) for a model with C outputs; regression output and
   target shapes agree.
3. `inputs`: inputs are normalised (per-feature mean and std not far from 0 and 1).
4. `overlap`: no validation example is also a training example (rows hashed; only when the
   data are small enough to scan, `SCAN_MAX_EXAMPLES`).
5. `initial_loss`: the loss of the freshly initialised model against the know-nothing loss:
   ln C for C-class cross-entropy, Var(y) for MSE regression, the loss of an all-zero output
   for a custom `loss_fn`.
6. `gradients`: one backward pass: no NaN/inf, every trainable parameter gets a gradient,
   no frozen parameters (unless `allow_frozen`), the output depends on the input and examples
   do not leak into each other; then a few optimizer steps at `lr` without exploding norms.
7. `overfit`: a fresh model must drive the loss on one fixed small batch (`OVERFIT_EXAMPLES`)
   near zero within `OVERFIT_STEPS` steps of Adam at `OVERFIT_LR` (a setting that memorises
   nearly any small batch; if it cannot, the model or the pipeline is broken).
8. `range_test`: `lrtune.rangetest.find_lr` with its suggestion, then a few steps at the
   suggested LR to check the gradient norms stay bounded there.

A problem found while checking (the user's code raising, an empty loader) is a FAIL row, not
an exception: the report decides the exit code (1 if any check FAILs, else 0). Only problems
that stop the doctor from starting (the task file cannot be imported, a bad option) raise.
The engine never prints; progress goes through a callback.
"""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lrtune.errors import ConfigError, ExitCode, unknown_name

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lrtune.task import Task

Verdict = Literal["PASS", "WARN", "FAIL", "SKIP"]
VERDICTS: tuple[Verdict, ...] = ("PASS", "WARN", "FAIL", "SKIP")
Progress = Callable[..., Any]

# -- thresholds and budgets (documented once, here) ----------------------------------------
#: Scan at most this many examples of each loader for the data checks.
SCAN_MAX_EXAMPLES = 20_000
#: inputs: a feature (column / channel) whose |mean| or std exceeds this FAILs ...
INPUT_FAIL_SCALE = 10.0
#: ... and one above this WARNs (normalised inputs sit near mean 0, std 1; [0, 1] is fine).
INPUT_WARN_SCALE = 3.0
#: inputs: mention it when the largest feature std is this many times the smallest
#: non-constant one (not a verdict: flattened images have near-constant border pixels).
INPUT_SCALE_SPREAD = 100.0
#: inputs: an overall std below this means (nearly) constant inputs: FAIL.
INPUT_MIN_STD = 1e-6
#: overlap: FAIL when at least this fraction of validation rows also appear in training ...
OVERLAP_FAIL_FRACTION = 0.01
#: (any overlap below it WARNs).
#: initial_loss: batches averaged for the loss at initialisation.
INIT_BATCHES = 4
#: initial_loss, classification: FAIL above this many times ln C, WARN above ...
INIT_CE_FAIL_RATIO = 3.0
INIT_CE_WARN_RATIO = 1.5
#: ... and WARN below this many times ln C (suspiciously low for an untrained model).
INIT_LOW_RATIO = 0.5
#: initial_loss, regression / custom loss: FAIL above this many times the reference, WARN above ...
INIT_REG_FAIL_RATIO = 10.0
INIT_REG_WARN_RATIO = 3.0
#: gradients: optimizer steps taken at `lr` to watch the gradient norm.
GRAD_STEPS = 20
#: gradients: FAIL when the gradient norm grows this many times during those steps ...
GRAD_EXPLODE_RATIO = 100.0
#: ... or the loss ends above this many times where it started.
SHORT_RUN_DIVERGE_RATIO = 3.0
#: gradients: default LR for the short run when none is given, per optimizer family.
DEFAULT_LR: Mapping[str, float] = {"sgd": 0.01, "adam": 1e-3}
#: overfit: examples in the fixed batch.
OVERFIT_EXAMPLES = 16
#: overfit: step budget and Adam LR (the usual 1e-3..3e-3 range; the high end is quicker).
OVERFIT_STEPS = 300
OVERFIT_LR = 3e-3
#: overfit: PASS when the loss gets below this fraction of the reference (know-nothing) loss ...
OVERFIT_TARGET_FRACTION = 0.02
#: ... WARN when it only got below this fraction (learning, but slowly), else FAIL.
OVERFIT_WARN_FRACTION = 0.3
#: range_test: steps of the range test run by the doctor.
RANGE_TEST_STEPS = 100


@dataclass(frozen=True)
class DoctorSettings:
    """How the doctor runs. Validated at construction; the bad value is quoted.

    Attributes:
        optimizer: registry name for the gradient short run and the range test (the task
            file's optimizer(), when it defines one, is used instead).
        lr: the LR to check gradients at (None: DEFAULT_LR for the family of the optimizer
            actually used).
        batch_size: overrides the task's batch size.
        device: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'.
        seed: seeds every fresh model.
        only: run only these checks (default: all).
        skip: do not run these checks.
        allow_frozen: frozen parameters (requires_grad=False) are intended (fine-tuning).
        overfit_steps: step budget of the overfit check.
        overfit_examples: size of the overfit batch.
        range_test_steps: steps of the range test.
    """

    optimizer: str = "sgd"
    lr: float | None = None
    batch_size: int | None = None
    device: str = "auto"
    seed: int = 0
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    allow_frozen: bool = False
    overfit_steps: int = OVERFIT_STEPS
    overfit_examples: int = OVERFIT_EXAMPLES
    range_test_steps: int = RANGE_TEST_STEPS

    def __post_init__(self) -> None:
        from lrtune.optim import get_optimizer

        get_optimizer(self.optimizer)
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"--lr must be > 0, got {self.lr!r}")
        for name, value, low in (
            ("--batch-size", self.batch_size, 1),
            ("--overfit-steps", self.overfit_steps, 1),
            ("--overfit-examples", self.overfit_examples, 1),
            ("--range-test-steps", self.range_test_steps, 10),
        ):
            if value is not None and (isinstance(value, bool) or int(value) < low):
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in (*self.only, *self.skip):
            if name not in CHECKS:
                raise ConfigError(unknown_name("doctor check", name, CHECKS))

    def selected(self) -> list[str]:
        """The checks to run, in registry order."""
        return [c for c in CHECKS if (not self.only or c in self.only) and c not in self.skip]


@dataclass(frozen=True)
class CheckResult:
    """One row of the doctor's report.

    Attributes:
        name: the check's registry key.
        title: a short human title.
        verdict: PASS, WARN, FAIL or SKIP.
        measured: plain words with the measured values.
        advice: what to do ('' when nothing).
        values: the measured numbers, for machines.
        seconds: time the check took.
    """

    name: str
    title: str
    verdict: Verdict
    measured: str
    advice: str = ""
    values: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return {**asdict(self), "values": dict(self.values)}


@dataclass
class DoctorReport:
    """All check results; decides the exit code."""

    task: str
    settings: DoctorSettings
    checks: list[CheckResult] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)  # name -> PNG path
    seconds: float = 0.0
    optimizer: str = ""  # the optimizer the checks trained with ('AdamW from the task file')

    def counts(self) -> dict[str, int]:
        """How many checks got each verdict."""
        return {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}

    @property
    def exit_code(self) -> ExitCode:
        """1 (FAILED) if any check failed, else 0."""
        return ExitCode.FAILED if any(c.verdict == "FAIL" for c in self.checks) else ExitCode.OK

    def get(self, name: str) -> CheckResult:
        """The result of one check by name."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The body of doctor.json."""
        return {
            "command": "doctor",
            "task": self.task,
            "settings": {**asdict(self.settings)},
            "optimizer": self.optimizer or self.settings.optimizer,
            "summary": self.counts(),
            "exit_code": int(self.exit_code),
            "checks": [c.to_dict() for c in self.checks],
            "plots": dict(self.plots),
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Outcome:
    """What a check function returns (the runner adds name, title and timing)."""

    verdict: Verdict
    measured: str
    advice: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckSpec:
    """A registry entry. `run(ctx)` measures one thing and returns an Outcome.

    Checks with `needs_data` are skipped when the data check failed; `needs_pairs` ones are
    skipped when batches are not (input, target) pairs (a custom step()).
    """

    name: str
    title: str
    run: Callable[[_Ctx], Outcome]
    needs_data: bool = True
    needs_pairs: bool = False


# -- shared state of one doctor run ---------------------------------------------------------
@dataclass
class _Scan:
    """Tensors read from a loader (capped at SCAN_MAX_EXAMPLES)."""

    x: Any = None  # torch.Tensor or None (not a tensor / ragged)
    y: Any = None
    examples: int = 0
    batches: int = 0
    complete: bool = True


class _Ctx:
    """What the checks share: the task, the device, cached batches and scans."""

    def __init__(self, task: Task, settings: DoctorSettings, device: torch.device) -> None:
        self.task = task
        self.settings = settings
        self.device = device
        self.data_ok = True
        self.pairs = not task.has_custom_step
        self.plot_data: dict[str, Any] = {}
        self.suggested_lr: float | None = None
        self._first: Any = None
        self._scans: dict[str, _Scan] = {}
        self.cache: dict[str, Any] = {}

    def fresh_model(self) -> torch.nn.Module:
        """A seeded, freshly built model on the device, in train mode."""
        from lrtune.runtime import seed_everything

        seed_everything(self.settings.seed)
        model = self.task.build_model().to(self.device)
        model.train()
        return model

    def train_loader(self, shuffle: bool = False) -> Any:
        return self.task.train_loader(self.settings.batch_size, shuffle=shuffle)

    def optimizer_used(self) -> OptimizerUsed:
        """The optimizer the checks train with (the task file's optimizer() wins)."""
        if "optimizer" not in self.cache:
            self.cache["optimizer"] = optimizer_used(self.task, self.settings.optimizer)
        used: OptimizerUsed = self.cache["optimizer"]
        return used

    def first_batch(self) -> Any:
        """The first training batch (unshuffled), on the device."""
        from lrtune.runtime import to_device

        if self._first is None:
            self._first = to_device(next(iter(self.train_loader())), self.device)
        return self._first

    def scan(self, which: str) -> _Scan:
        """Inputs and targets of the 'train' or 'val' loader, read once."""
        if which not in self._scans:
            loader = (
                self.train_loader()
                if which == "train"
                else self.task.val_loader(self.settings.batch_size)
            )
            self._scans[which] = _read(loader)
        return self._scans[which]


def _read(loader: Any) -> _Scan:
    import torch

    from lrtune.runtime import batch_size_of

    scan = _Scan()
    xs: list[Any] = []
    ys: list[Any] = []
    for batch in loader:
        scan.batches += 1
        scan.examples += batch_size_of(batch)
        if isinstance(batch, (list, tuple)) and len(batch) == 2:
            xs.append(batch[0])
            ys.append(batch[1])
        if scan.examples >= SCAN_MAX_EXAMPLES:
            scan.complete = False
            break
    scan.x = _cat(xs, torch)
    scan.y = _cat(ys, torch)
    return scan


def _cat(parts: list[Any], torch: Any) -> Any:
    if not parts or not all(isinstance(p, torch.Tensor) for p in parts):
        return None
    if len({tuple(p.shape[1:]) for p in parts}) != 1:
        return None
    return torch.cat([p.detach().cpu() for p in parts])


def _slice(batch: Any, n: int) -> Any:
    """The first n examples of a batch (tensors sliced along dim 0, containers recursed)."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch[:n] if batch.dim() else batch
    if isinstance(batch, Mapping):
        return type(batch)({k: _slice(v, n) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice(v, n) for v in batch)
    return batch


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    return f"{x:.3g}" if abs(x) >= 1000 or abs(x) < 1e-2 else f"{x:.3f}".rstrip("0").rstrip(".")


def _output_of(ctx: _Ctx, model: torch.nn.Module, batch: Any) -> Any:
    import torch

    from lrtune.task import split_batch

    x, _ = split_batch(batch)
    with torch.no_grad():
        return model(x)


def _kind(ctx: _Ctx) -> tuple[str, int | None]:
    """('classification', C) | ('regression', None) | ('custom', None), from the first batch."""
    if "kind" not in ctx.cache:
        ctx.cache["kind"] = _find_kind(ctx)
    kind: tuple[str, int | None] = ctx.cache["kind"]
    return kind


def _find_kind(ctx: _Ctx) -> tuple[str, int | None]:
    import torch

    if not ctx.pairs:
        return "custom", None
    _, y = ctx.first_batch()
    if isinstance(y, torch.Tensor) and not (y.is_floating_point() or y.is_complex()):
        out = _output_of(ctx, ctx.fresh_model(), ctx.first_batch())
        c = int(out.shape[1]) if isinstance(out, torch.Tensor) and out.dim() >= 2 else None
        return "classification", c
    return "regression", None


def _reference_loss(ctx: _Ctx) -> tuple[float | None, str]:
    """The know-nothing loss and how it was obtained (see the module docstring)."""
    if "reference" not in ctx.cache:
        ctx.cache["reference"] = _find_reference(ctx)
    ref: tuple[float | None, str] = ctx.cache["reference"]
    return ref


def _find_reference(ctx: _Ctx) -> tuple[float | None, str]:
    import torch

    kind, c = _kind(ctx)
    custom_loss = ctx.task._fn("loss_fn") is not None
    if kind == "classification" and c and not custom_loss:
        return math.log(c), f"ln({c})"
    if kind == "regression" and not custom_loss:
        y = ctx.scan("train").y
        if isinstance(y, torch.Tensor) and y.numel() > 1:
            return float(y.double().var()), "Var(y)"
        return None, "none"
    if kind != "custom":
        x, y = ctx.first_batch()
        out = _output_of(ctx, ctx.fresh_model(), ctx.first_batch())
        try:
            with torch.no_grad():
                ref = float(ctx.task.loss_of(torch.zeros_like(out), y))
        except Exception:  # the loss cannot take a zero output of this type: no reference
            return None, "none"
        return (
            (ref, "loss of an all-zero output")
            if math.isfinite(ref) and ref > 0
            else (
                None,
                "none",
            )
        )
    return None, "none"


# -- the checks -----------------------------------------------------------------------------
def _check_data(ctx: _Ctx) -> Outcome:
    from lrtune.errors import TaskError

    parts, values = [], {}
    for which in ("train", "val"):
        if which == "val" and not ctx.task.has_val:
            continue
        try:
            scan = ctx.scan(which)
        except TaskError as exc:
            ctx.data_ok = False
            return Outcome("FAIL", str(exc), f"make {which}_data() return examples")
        if scan.batches == 0 or scan.examples == 0:
            ctx.data_ok = False
            return Outcome(
                "FAIL",
                f"{which}_data() yielded 0 batches",
                f"{which}_data() is empty: check the path/filter/split that builds it",
                {f"{which}_batches": 0},
            )
        more = "+" if not scan.complete else ""
        parts.append(f"{which} {scan.examples}{more} examples in {scan.batches}{more} batches")
        values[f"{which}_examples"] = scan.examples
        values[f"{which}_batches"] = scan.batches
    try:
        ctx.first_batch()
    except Exception as exc:
        ctx.data_ok = False
        return Outcome("FAIL", f"reading the first batch raised {_one_line(exc)}", "")
    if not ctx.task.has_val:
        return Outcome(
            "WARN",
            "; ".join(parts) + "; no val_data()",
            "define val_data() to see overfitting and to judge schedules on held-out data",
            values,
        )
    return Outcome("PASS", "; ".join(parts), "", values)


def _check_labels(ctx: _Ctx) -> Outcome:
    import torch

    x, y = ctx.first_batch()
    out = _output_of(ctx, ctx.fresh_model(), ctx.first_batch())
    if not isinstance(out, torch.Tensor) or not isinstance(y, torch.Tensor):
        return Outcome("SKIP", "outputs/targets are not tensors")
    ys = ctx.scan("train").y
    ys = ys if isinstance(ys, torch.Tensor) else y.cpu()
    if not (ys.is_floating_point() or ys.is_complex()):
        if out.dim() < 2:
            return Outcome(
                "FAIL",
                f"integer labels but the model output has shape {tuple(out.shape)}",
                "for C classes the model must return logits of shape (batch, C)",
                {"output_shape": list(out.shape)},
            )
        c = int(out.shape[1])
        lo, hi = int(ys.min()), int(ys.max())
        counts = torch.bincount(ys.flatten().clamp(min=0).long(), minlength=c)
        seen = int((counts > 0).sum())
        values = {"classes": c, "label_min": lo, "label_max": hi, "classes_seen": seen}
        measured = f"labels {lo}..{hi}, model has {c} outputs"
        if lo < 0 or hi >= c:
            bad = int(((ys < 0) | (ys >= c)).sum())
            return Outcome(
                "FAIL",
                f"{measured}: {bad} of {ys.numel()} labels are outside 0..{c - 1}",
                "labels must be 0..C-1: re-map them (e.g. subtract 1 from 1-based labels) or "
                "give the last layer max(label)+1 outputs",
                {**values, "out_of_range": bad},
            )
        share = counts.float() / max(1, int(counts.sum()))
        present = share[counts > 0]
        measured += (
            f"; {seen} classes seen, largest {share.max():.0%}, smallest {present.min():.0%}"
        )
        if hi + 1 < c:
            return Outcome(
                "WARN",
                measured,
                f"the model has {c} outputs but labels only reach {hi}: wrong output size?",
                values,
            )
        return Outcome("PASS", measured, "", values)
    if out.numel() != y.numel():
        return Outcome(
            "FAIL",
            f"regression output {tuple(out.shape)} vs target {tuple(y.shape)}: sizes differ",
            "make the model return one value per target (a loss would broadcast them silently)",
        )
    note = "" if out.shape == y.shape else " (reshaped by the default loss)"
    return Outcome("PASS", f"regression: output {tuple(out.shape)}, target {tuple(y.shape)}{note}")


def _check_inputs(ctx: _Ctx) -> Outcome:
    import torch

    x = ctx.scan("train").x
    if not isinstance(x, torch.Tensor):
        return Outcome("SKIP", "inputs are not a single tensor")
    if not x.is_floating_point():
        return Outcome("SKIP", f"integer inputs ({x.dtype}, e.g. token ids): no scale to check")
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        return Outcome(
            "FAIL",
            f"{bad} of {x.numel()} input values are NaN/inf",
            "clean the data (missing values? a division by zero in preprocessing?)",
            {"nonfinite_inputs": bad},
        )
    xd = x.double()
    # Per feature: columns of an (N, F) input, channels of an (N, C, ...) one.
    if xd.dim() == 1:
        feats = xd.reshape(-1, 1)
    elif xd.dim() == 2:
        feats = xd
    else:
        feats = xd.transpose(0, 1).reshape(xd.shape[1], -1).T
    means = feats.mean(0)
    stds = feats.std(0) if len(feats) > 1 else torch.zeros(feats.shape[1], dtype=xd.dtype)
    overall_mean, overall_std = float(xd.mean()), float(xd.std()) if xd.numel() > 1 else 0.0
    big_mean, big_std = float(means.abs().max()), float(stds.max())
    live = stds[stds > INPUT_MIN_STD]
    spread = float(live.max() / live.min()) if live.numel() > 1 else 1.0
    constant = int((stds <= INPUT_MIN_STD).sum())
    unit = "channel" if xd.dim() > 2 else "feature"
    measured = (
        f"mean {_fmt(overall_mean)}, std {_fmt(overall_std)}; largest per-{unit} |mean| "
        f"{_fmt(big_mean)}, std {_fmt(big_std)}"
    )
    values = {
        "mean": overall_mean,
        "std": overall_std,
        "max_abs_feature_mean": big_mean,
        "max_feature_std": big_std,
        "feature_std_spread": spread,
        "constant_features": constant,
    }
    if constant:
        measured += f"; {constant} constant {unit}s"
    fix = "normalise inputs: subtract the training mean and divide by the std (per " + unit + ")"
    if overall_std <= INPUT_MIN_STD:
        return Outcome("FAIL", measured, "the inputs are constant: check the data loading", values)
    if big_mean > INPUT_FAIL_SCALE or big_std > INPUT_FAIL_SCALE:
        return Outcome("FAIL", measured + f" (limit {INPUT_FAIL_SCALE:g} for both)", fix, values)
    if big_mean > INPUT_WARN_SCALE or big_std > INPUT_WARN_SCALE:
        return Outcome("WARN", measured + f" (limit {INPUT_WARN_SCALE:g} for both)", fix, values)
    # A wide spread of feature stds is normal for flattened images (border pixels), so
    # it is reported, not judged; scale problems that matter trip the thresholds above.
    if spread > INPUT_SCALE_SPREAD and unit == "feature":
        measured += f"; feature stds differ {spread:.0f}x"
    return Outcome("PASS", measured, "", values)


def _row_hashes(x: Any) -> list[bytes]:
    flat = x.reshape(len(x), -1).contiguous().numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


def _check_overlap(ctx: _Ctx) -> Outcome:
    import torch

    if not ctx.task.has_val:
        return Outcome("SKIP", "no val_data()")
    tr, va = ctx.scan("train"), ctx.scan("val")
    if not (isinstance(tr.x, torch.Tensor) and isinstance(va.x, torch.Tensor)):
        return Outcome("SKIP", "inputs are not single tensors")
    if tr.x.shape[1:] != va.x.shape[1:]:
        return Outcome(
            "FAIL",
            f"train inputs {tuple(tr.x.shape[1:])} vs val {tuple(va.x.shape[1:])} per example",
            "train and val examples must have the same shape",
        )
    train_rows = set(_row_hashes(tr.x))
    val_rows = _row_hashes(va.x)
    dup = sum(h in train_rows for h in val_rows)
    frac = dup / max(1, len(val_rows))
    partial = "" if tr.complete and va.complete else f" (first {SCAN_MAX_EXAMPLES} of each)"
    measured = f"{dup} of {len(val_rows)} val inputs ({frac:.1%}) also in train{partial}"
    values = {"duplicates": dup, "val_rows": len(val_rows), "fraction": frac}
    if frac >= OVERLAP_FAIL_FRACTION:
        return Outcome(
            "FAIL",
            measured + f" (threshold {OVERLAP_FAIL_FRACTION:.0%})",
            "val leaks into train: split before augmenting/shuffling, and de-duplicate",
            values,
        )
    if dup:
        return Outcome("WARN", measured, "a few duplicates: de-duplicate across the split", values)
    return Outcome("PASS", measured, "", values)


def _initial_loss(ctx: _Ctx, model: torch.nn.Module) -> float:
    import torch

    from lrtune.runtime import to_device

    total, n = 0.0, 0
    with torch.no_grad():
        for i, batch in enumerate(ctx.train_loader()):
            if i >= INIT_BATCHES:
                break
            total += float(ctx.task.loss(model, to_device(batch, ctx.device)))
            n += 1
    return total / max(1, n)


def _check_initial_loss(ctx: _Ctx) -> Outcome:
    loss = _initial_loss(ctx, ctx.fresh_model())
    ref, ref_name = _reference_loss(ctx)
    values: dict[str, Any] = {"initial_loss": loss, "reference": ref, "reference_name": ref_name}
    if not math.isfinite(loss):
        return Outcome(
            "FAIL", f"loss at init is {loss}", "check the inputs, labels and loss function", values
        )
    if ref is None:
        return Outcome("SKIP", f"loss at init {_fmt(loss)}; no reference for this loss", "", values)
    ratio = loss / ref
    values["ratio"] = ratio
    kind = "ln(C)" if ref_name.startswith("ln") else ref_name
    measured = f"{_fmt(loss)} at init vs {ref_name} = {_fmt(ref)} ({ratio:.2f}x)"
    fail, warn = (
        (INIT_CE_FAIL_RATIO, INIT_CE_WARN_RATIO)
        if ref_name.startswith("ln")
        else (INIT_REG_FAIL_RATIO, INIT_REG_WARN_RATIO)
    )
    if ref_name.startswith("ln"):
        high = (
            "the untrained model is confidently wrong: scale the last layer's weights down "
            "(or zero them) and set its bias to the log class priors; check input scaling"
        )
    else:
        high = (
            "the untrained model's predictions are far off: standardise the targets or set "
            "the last layer's bias to the target mean; check input scaling"
        )
    if ratio > fail:
        return Outcome("FAIL", measured + f"; threshold {fail:g}x {kind}", high, values)
    if ratio > warn:
        return Outcome("WARN", measured + f"; threshold {warn:g}x {kind}", high, values)
    if ref_name.startswith("ln") and ratio < INIT_LOW_RATIO:
        return Outcome(
            "WARN",
            measured + f"; below {INIT_LOW_RATIO:g}x {kind}",
            "suspiciously low for an untrained model: a pretrained model, or labels leaking "
            "into the inputs?",
            values,
        )
    return Outcome("PASS", measured, "", values)


@dataclass
class _ShortRun:
    losses: list[float]
    norms: list[float]
    error: str | None = None


def _grad_norm(model: torch.nn.Module) -> float:
    sq = 0.0
    for p in model.parameters():
        if p.grad is not None:
            sq += float(p.grad.detach().double().pow(2).sum())
    return math.sqrt(sq) if math.isfinite(sq) else math.inf


def _short_run(ctx: _Ctx, lr: float, steps: int) -> _ShortRun:
    """A few optimizer steps on a fresh model at `lr`: loss and gradient norm per step."""
    from lrtune.runtime import to_device
    from lrtune.task import infinite

    model = ctx.fresh_model()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = ctx.task.build_optimizer(params, lr, ctx.settings.optimizer)
    run = _ShortRun([], [])
    batches = infinite(ctx.train_loader(shuffle=True))
    for _ in range(steps):
        batch = to_device(next(batches), ctx.device)
        opt.zero_grad(set_to_none=True)
        loss = ctx.task.loss(model, batch)
        value = float(loss.detach())
        run.losses.append(value)
        if not math.isfinite(value):
            run.error = "loss"
            break
        loss.backward()
        norm = _grad_norm(model)
        run.norms.append(norm)
        if not math.isfinite(norm):
            run.error = "grad"
            break
        opt.step()
    return run


def _judge_short_run(run: _ShortRun, lr: float, where: str) -> tuple[Verdict, str, str]:
    """(verdict, measured, advice) for a short run at `lr`."""
    n = len(run.losses)
    if run.error:
        what = "loss" if run.error == "loss" else "gradient norm"
        return (
            "FAIL",
            f"{what} became non-finite at step {n} of the run at lr {lr:.2g}{where}",
            f"lower the LR (below {lr:.2g}) or clip gradients; check for log(0), division by 0",
        )
    g0, gmax = run.norms[0], max(run.norms)
    growth = gmax / g0 if g0 > 0 else math.inf
    l0, l1 = run.losses[0], run.losses[-1]
    measured = (
        f"{n} steps at lr {lr:.2g}{where}: loss {_fmt(l0)} -> {_fmt(l1)}, grad norm "
        f"{_fmt(g0)} -> max {_fmt(gmax)} ({growth:.3g}x)"
    )
    if growth > GRAD_EXPLODE_RATIO or l1 > SHORT_RUN_DIVERGE_RATIO * l0:
        return (
            "FAIL",
            measured
            + f"; thresholds {GRAD_EXPLODE_RATIO:g}x norm, {SHORT_RUN_DIVERGE_RATIO:g}x loss",
            f"gradients explode at lr {lr:.2g}: lower the LR or clip the gradient norm",
        )
    return "PASS", measured, ""


def _check_gradients(ctx: _Ctx) -> Outcome:
    import torch

    model = ctx.fresh_model()
    batch = ctx.first_batch()
    x = None
    if ctx.pairs and isinstance(batch[0], torch.Tensor) and batch[0].is_floating_point():
        x = batch[0].detach().clone().requires_grad_(True)
        batch = type(batch)((x, batch[1])) if isinstance(batch, tuple) else [x, batch[1]]
    loss = ctx.task.loss(model, batch)
    values: dict[str, Any] = {"loss": float(loss.detach())}
    if not torch.isfinite(loss):
        return Outcome(
            "FAIL",
            f"loss is {float(loss.detach())} on the first batch",
            "check the inputs (NaN?), the labels and the loss function",
        )
    loss.backward()
    named = list(model.named_parameters())
    frozen = [(n, p) for n, p in named if not p.requires_grad]
    missing = [n for n, p in named if p.requires_grad and p.grad is None]
    nonfinite = [
        n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]
    zero = [n for n, p in named if p.grad is not None and not bool(p.grad.any())]
    values.update(
        {
            "tensors": len(named),
            "frozen": [n for n, _ in frozen],
            "no_grad": missing,
            "nonfinite_grad": nonfinite,
            "zero_grad": zero,
            "grad_norm": _grad_norm(model),
        }
    )
    fails: list[tuple[str, str]] = []
    warns: list[tuple[str, str]] = []
    if nonfinite:
        fails.append((f"NaN/inf gradients in {_names(nonfinite)}", "look for log(0), sqrt(0), /0"))
    if missing:
        fails.append(
            (
                f"{len(missing)} trainable tensors never get a gradient: {_names(missing)}",
                "unused layers: remove them or wire them into forward()",
            )
        )
    if frozen:
        count = sum(p.numel() for _, p in frozen)
        item = (
            f"{len(frozen)} frozen tensors ({count:,} values, requires_grad=False): "
            f"{_names([n for n, _ in frozen])}",
            "unfreeze them (requires_grad=True), or pass --allow-frozen when fine-tuning on "
            "purpose",
        )
        (warns if ctx.settings.allow_frozen else fails).append(item)
    if zero:
        warns.append(
            (
                f"all-zero gradient on the first batch: {_names(zero)}",
                "dead units (ReLU), a zero-initialised path, or a bias before BatchNorm",
            )
        )
    if x is not None:
        if x.grad is None or not bool(x.grad.any()):
            fails.append(
                (
                    "the loss does not depend on the input",
                    "forward() ignores x (zeroed, detached or replaced): check the model",
                )
            )
        elif len(x) > 1:
            leak = _batch_leak(ctx, x.detach())
            values["batch_leak"] = leak
            if leak:
                warns.append(
                    (
                        "in eval mode, example 0's output depends on other examples",
                        "a reshape/view or reduction mixes the batch dimension",
                    )
                )
    used = ctx.optimizer_used()
    opt_name = used.label
    lr = ctx.settings.lr or DEFAULT_LR[used.family]
    run = _short_run(ctx, lr, GRAD_STEPS)
    verdict, run_words, run_advice = _judge_short_run(run, lr, f" ({opt_name})")
    values["short_run"] = {
        "lr": lr,
        "optimizer": opt_name,
        "losses": run.losses,
        "grad_norms": run.norms,
    }
    if verdict == "FAIL":
        fails.append((run_words, run_advice))
    base = f"{len(named)} tensors, grad norm {_fmt(values['grad_norm'])} at init"
    if verdict != "FAIL":
        base += f"; {run_words}"
    found = fails + warns
    if found:
        return Outcome(
            "FAIL" if fails else "WARN",
            "; ".join(m for m, _ in found) + f" ({base})",
            "; ".join(a for _, a in found),
            values,
        )
    return Outcome("PASS", base + "; all trainable tensors get finite gradients", "", values)


def _batch_leak(ctx: _Ctx, x: torch.Tensor) -> bool:
    """True when, in eval mode, example 0's output has a gradient w.r.t. other examples."""
    model = ctx.fresh_model().eval()
    xi = x.clone().requires_grad_(True)
    out = model(xi)
    import torch

    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return False
    out[0].sum().backward()
    if xi.grad is None:
        return False
    return bool(xi.grad[1:].abs().sum() > 0)


def _names(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


@dataclass(frozen=True)
class OptimizerUsed:
    """The optimizer a run trains with.

    Attributes:
        name: the torch class name from the task file ('AdamW'), else the registry name.
        family: 'sgd' or 'adam' (decides default LRs and schedule shapes).
        from_task: True when the task file's optimizer() built it.
    """

    name: str
    family: str
    from_task: bool = False

    @property
    def label(self) -> str:
        """'AdamW from the task file' or 'sgd'."""
        return f"{self.name} from the task file" if self.from_task else self.name


def optimizer_used(task: Task, name: str) -> OptimizerUsed:
    """The optimizer a run of `task` trains with: the task file's optimizer() when it
    defines one (built once on a fresh model at a placeholder LR, to learn its class),
    else the registry's `name`.

    Raises:
        TaskError: the file's model() or optimizer() raises or returns the wrong type.
        ConfigError: `name` is not a known optimizer.
    """
    from lrtune.optim import get_optimizer, optimizer_family

    if not task.has_custom_optimizer:
        return OptimizerUsed(name, get_optimizer(name).family)
    params = [p for p in task.build_model().parameters() if p.requires_grad]
    opt = task.build_optimizer(params, 1e-3)
    return OptimizerUsed(type(opt).__name__, optimizer_family(opt), from_task=True)


def _check_overfit(ctx: _Ctx) -> Outcome:
    import torch

    from lrtune.optim import get_optimizer
    from lrtune.runtime import batch_size_of, to_device

    s = ctx.settings
    loader = ctx.task.train_loader(s.overfit_examples, shuffle=False)
    batch = to_device(_slice(next(iter(loader)), s.overfit_examples), ctx.device)
    n = batch_size_of(batch)
    model = ctx.fresh_model()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return Outcome("FAIL", "the model has no trainable parameters", "unfreeze some layers")
    opt = get_optimizer("adam").build(params, OVERFIT_LR)
    ref, ref_name = _reference_loss(ctx)
    with torch.no_grad():
        start = float(ctx.task.loss(model, batch))
    base_value = ref if ref is not None else start
    base_name = ref_name if ref is not None else "the batch's starting loss"
    target = OVERFIT_TARGET_FRACTION * base_value
    losses: list[float] = []
    for _step in range(s.overfit_steps):
        opt.zero_grad(set_to_none=True)
        loss = ctx.task.loss(model, batch)
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value) or value <= target:
            break
        loss.backward()
        opt.step()
    best = min(losses) if losses else math.nan
    with torch.no_grad():  # dropout off: can the weights themselves fit the batch?
        model.eval()
        final_eval = float(ctx.task.loss(model, batch))
        model.train()
    reached = min(best, final_eval) if math.isfinite(final_eval) else best
    ctx.plot_data["overfit"] = {
        "losses": losses,
        "target": target,
        "examples": n,
        "lr": OVERFIT_LR,
        "reference": base_value,
        "reference_name": base_name,
    }
    values = {
        "examples": n,
        "steps": len(losses),
        "start_loss": losses[0],
        "best_loss": reached,
        "target": target,
        "lr": OVERFIT_LR,
    }
    measured = (
        f"{n} examples, Adam lr {OVERFIT_LR:g}: loss {_fmt(losses[0])} -> {_fmt(reached)} in "
        f"{len(losses)} steps (target {_fmt(target)} = {OVERFIT_TARGET_FRACTION:g}x {base_name})"
    )
    if not math.isfinite(reached):
        return Outcome("FAIL", measured, "the loss became NaN/inf: check the data and loss", values)
    if reached <= target:
        return Outcome("PASS", measured, "", values)
    if reached <= OVERFIT_WARN_FRACTION * base_value:
        return Outcome(
            "WARN",
            measured,
            "it learns but slowly: too much regularisation (dropout, weight decay), a tiny "
            f"model, or it needs more than {s.overfit_steps} steps (--overfit-steps)",
            values,
        )
    return Outcome(
        "FAIL",
        measured + f"; not even {OVERFIT_WARN_FRACTION:g}x",
        "a model that cannot memorise 16 examples is broken: check that forward() uses its "
        "input, the labels match the inputs, the loss matches the output (logits, not "
        "probabilities), and the model has capacity",
        values,
    )


def _check_range_test(ctx: _Ctx) -> Outcome:
    try:
        from lrtune.rangetest import find_lr
    except ImportError:
        return Outcome("SKIP", "lrtune.rangetest is not available in this version")
    s = ctx.settings
    result = find_lr(
        ctx.task,
        steps=s.range_test_steps,
        optimizer=s.optimizer,
        batch_size=s.batch_size,
        device=str(ctx.device),
        seed=s.seed,
        repeats=1,  # a sanity check; `lrtune find` runs the repeated, banded test
    )
    ctx.plot_data["range_test"] = result
    values: dict[str, Any] = {
        "lr": result.lr,
        "rule": result.rule,
        "suggestions": dict(result.suggestions),
        "warnings": list(result.warnings),
    }
    opt_name = ctx.optimizer_used().label
    values["optimizer"] = opt_name
    if result.lr is None:
        return Outcome(
            "FAIL",
            f"no suggestion from a {s.range_test_steps}-step range test ({opt_name})",
            "; ".join(result.warnings) or "see range_test.png",
            values,
        )
    ctx.suggested_lr = result.lr
    measured = f"suggested lr {result.lr:.2g} ({result.rule}, {opt_name})"
    run = _short_run(ctx, result.lr, GRAD_STEPS)
    verdict, run_words, run_advice = _judge_short_run(run, result.lr, " (the suggestion)")
    values["short_run"] = {"lr": result.lr, "losses": run.losses, "grad_norms": run.norms}
    measured += f"; {run_words}"
    if verdict == "FAIL":
        return Outcome("WARN", measured, run_advice + "; try the next lower suggestion", values)
    if result.warnings:
        return Outcome("WARN", measured, "; ".join(result.warnings), values)
    return Outcome(
        "PASS", measured, f"use lr {result.lr:.2g}; `lrtune find` for the full curve", values
    )


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("data", "Data loaders", _check_data, needs_data=False),
        CheckSpec("labels", "Labels vs outputs", _check_labels, needs_pairs=True),
        CheckSpec("inputs", "Input scale", _check_inputs, needs_pairs=True),
        CheckSpec("overlap", "Train/val overlap", _check_overlap, needs_pairs=True),
        CheckSpec("initial_loss", "Initial loss", _check_initial_loss),
        CheckSpec("gradients", "Gradients", _check_gradients),
        CheckSpec("overfit", "Overfit a small batch", _check_overfit),
        CheckSpec("range_test", "LR range test", _check_range_test),
    )
}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _run_one(ctx: _Ctx, spec: CheckSpec, debug: bool) -> CheckResult:
    start = time.perf_counter()
    if spec.needs_data and not ctx.data_ok:
        out = Outcome("SKIP", "skipped: the data check failed")
    elif spec.needs_pairs and not ctx.pairs:
        out = Outcome("SKIP", "skipped: batches are not (input, target) pairs (custom step())")
    else:
        try:
            out = spec.run(ctx)
        except ConfigError:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the user's code raised: that is the finding
            if debug:
                traceback.print_exc()
            out = Outcome(
                "FAIL",
                f"raised {_one_line(exc)}",
                "fix the error above (run with --debug for the traceback)",
            )
    return CheckResult(
        name=spec.name,
        title=spec.title,
        verdict=out.verdict,
        measured=out.measured,
        advice=out.advice,
        values=dict(out.values),
        seconds=time.perf_counter() - start,
    )


def run_doctor(
    task: str | Path | Task,
    settings: DoctorSettings | None = None,
    *,
    progress: Progress | None = None,
    debug: bool = False,
) -> tuple[DoctorReport, dict[str, Any]]:
    """Run the selected checks on a task file.

    Args:
        task: a task file path or a loaded Task.
        settings: how to run (defaults: DoctorSettings()).
        progress: called as progress(done, total, status=check_name) after each check.
        debug: print tracebacks of exceptions raised by the user's code.

    Returns:
        (report, plot_data): the report, and the raw data behind the doctor's plots
        ('overfit': losses per step; 'range_test': the RangeTestResult) for the caller to draw.

    Raises:
        TaskError: the task file cannot be loaded (missing, syntax error, no model()).
        ConfigError / LrtuneError: a bad setting or an unavailable device.
    """
    from lrtune.runtime import resolve_device, seed_everything
    from lrtune.task import Task, load_task

    s = settings or DoctorSettings()
    t = task if isinstance(task, Task) else load_task(task, check=False)
    seed_everything(s.seed)  # a task's own shuffling DataLoader draws the first batch
    ctx = _Ctx(t, s, resolve_device(s.device))
    report = DoctorReport(task=str(t.path), settings=s)
    names = s.selected()
    start = time.perf_counter()
    for i, name in enumerate(names):
        if progress is not None:
            progress(i, len(names), status=name)
        report.checks.append(_run_one(ctx, CHECKS[name], debug))
    if progress is not None:
        progress(len(names), len(names), status="done")
    report.seconds = time.perf_counter() - start
    used = ctx.cache.get("optimizer")  # known when a check trained with it
    report.optimizer = used.label if used else s.optimizer
    return report, ctx.plot_data


def parse_names(values: Iterable[str]) -> tuple[str, ...]:
    """Split '--only a,b --only c' into ('a', 'b', 'c')."""
    return tuple(n.strip() for v in values for n in str(v).split(",") if n.strip())


# -- reuse by other commands ----------------------------------------------------------------
def know_nothing_loss(
    task: Task, *, batch_size: int | None = None, device: str = "cpu", seed: int = 0
) -> tuple[float | None, str]:
    """The loss of a model that knows nothing, and its name (see the `initial_loss` check).

    ln C for C-class cross-entropy, Var(y) for MSE regression, the loss of an all-zero output
    for a custom `loss_fn`. `lrtune check` judges its learning curves against it.

    Returns:
        (value, name), or (None, 'none') when there is no reference (a custom step(), or the
        task's code raising while it is measured).
    """
    from lrtune.runtime import resolve_device

    settings = DoctorSettings(batch_size=batch_size, device=device, seed=seed)
    ctx = _Ctx(task, settings, resolve_device(device))
    try:
        return _reference_loss(ctx)
    except Exception:  # advice only: a task that cannot be measured has no reference
        return None, "none"


def plot_data_to_json(plot_data: Mapping[str, Any]) -> dict[str, Any]:
    """The data behind the doctor's plots as plain JSON, so `lrtune report` can redraw them.

    'overfit' is kept as is (losses per step, target, ...); 'range_test' becomes the range
    test's settings, rule, checksums and per-repeat curves.
    """
    out: dict[str, Any] = {}
    if "overfit" in plot_data:
        out["overfit"] = dict(plot_data["overfit"])
    result = plot_data.get("range_test")
    if result is not None and hasattr(result, "curves"):
        out["range_test"] = {
            "settings": asdict(result.settings),
            "rule": result.rule,
            "checksum_before": result.checksum_before,
            "checksum_after": result.checksum_after,
            "seconds": result.seconds,
            "info": dict(result.info),
            "curves": [
                {
                    "lrs": list(c.lrs),
                    "losses": list(c.losses),
                    "smoothed": list(c.smoothed),
                    "stop_reason": c.stop_reason,
                    "seed": c.seed,
                    "seconds": c.seconds,
                    "steps_run": c.steps_run,
                    "skipped_steps": list(c.skipped_steps),
                    "val_lrs": None if c.val_lrs is None else list(c.val_lrs),
                    "val_losses": None if c.val_losses is None else list(c.val_losses),
                }
                for c in result.curves
            ],
        }
    return out


def plot_data_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `plot_data_to_json`: 'range_test' is rebuilt as a RangeTestResult.

    The suggestions are recomputed from the saved curve by the same rules.
    """
    import numpy as np

    out: dict[str, Any] = {}
    if "overfit" in data:
        overfit = dict(data["overfit"])
        overfit["losses"] = [math.nan if v is None else float(v) for v in overfit["losses"]]
        out["overfit"] = overfit
    saved = data.get("range_test")
    if saved:
        from lrtune.rangetest import Curve, RangeTestSettings, build_result

        def arr(values: Sequence[float | None] | None) -> Any:
            if values is None:
                return None
            return np.array([math.nan if v is None else float(v) for v in values])

        settings = RangeTestSettings(**saved["settings"])
        curves = []
        for c in saved["curves"]:
            raw = arr(c["losses"])
            curves.append(
                Curve(
                    lrs=arr(c["lrs"]),
                    losses=raw,
                    smoothed=arr(c["smoothed"]),
                    stop_reason=c["stop_reason"],
                    seed=c["seed"],
                    seconds=c["seconds"],
                    steps_run=c["steps_run"],
                    skipped_steps=list(c.get("skipped_steps") or []),
                    val_lrs=arr(c.get("val_lrs")),
                    val_losses=arr(c.get("val_losses")),
                )
            )
        result = build_result(
            settings,
            curves,
            saved["rule"],
            saved.get("checksum_before", ""),
            saved.get("checksum_after", ""),
            saved.get("seconds", 0.0),
        )
        result.info.update(saved.get("info") or {})
        out["range_test"] = result
    return out


def report_from_dict(body: Mapping[str, Any]) -> DoctorReport:
    """Rebuild a DoctorReport from doctor.json's body (for `lrtune report`).

    Raises:
        ConfigError: the body is not a doctor report (missing keys, bad values).
    """
    try:
        raw = dict(body["settings"])
        for key in ("only", "skip"):
            raw[key] = tuple(raw.get(key) or ())
        known = set(DoctorSettings.__dataclass_fields__)
        settings = DoctorSettings(**{k: v for k, v in raw.items() if k in known})
        fields = set(CheckResult.__dataclass_fields__)
        checks = [
            CheckResult(**{k: v for k, v in c.items() if k in fields}) for c in body["checks"]
        ]
        return DoctorReport(
            task=str(body["task"]),
            settings=settings,
            checks=checks,
            plots=dict(body.get("plots") or {}),
            seconds=float(body.get("seconds") or 0.0),
            optimizer=str(body.get("optimizer") or settings.optimizer),
        )
    except KeyError as exc:
        raise ConfigError(f"not an lrtune doctor report (no {exc.args[0]!r} in it)") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"not an lrtune doctor report ({exc})") from None
