"""Per-step overhead of the range-test engine against a bare training loop of the same steps.

    python benchmarks/overhead.py [--task examples/digits_cnn.py] [--steps 100] [--reps 5]

Both loops run the same model, optimizer, data and LR ramp (no divergence), side by side,
alternating, `reps` times; prints per-step times and the ratio engine/bare (min and median).
The engine's extra work: the host snapshot and restore, the EMA/divergence bookkeeping,
the zero-lag smoothing, and building the suggestions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lrtune.rangetest import RangeTest, RangeTestSettings
from lrtune.runtime import resolve_device, seed_everything, to_device
from lrtune.task import infinite, load_task

ROOT = Path(__file__).resolve().parent.parent


def bare(task, device, lrs) -> float:
    seed_everything(0)
    model = task.build_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lrs[0], momentum=0.9)
    batches = infinite(task.train_loader())
    losses = []
    t0 = time.perf_counter()
    for lr in lrs:
        for g in opt.param_groups:
            g["lr"] = lr
        loss = task.loss(model, to_device(next(batches), device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def engine(task, device, settings) -> float:
    seed_everything(0)
    model = task.build_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=settings.start_lr, momentum=0.9)
    rt = RangeTest(model, opt, task.train_loader(), task.loss, device=device)
    t0 = time.perf_counter()
    rt.run(settings, repeats=1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default=str(ROOT / "examples" / "digits_cnn.py"))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    task = load_task(args.task)
    settings = RangeTestSettings(start_lr=1e-6, end_lr=1e-2, steps=args.steps, diverge=1e9)
    lrs = settings.schedule()
    bare(task, device, lrs[:5])  # warm up
    engine(task, device, RangeTestSettings(steps=5, diverge=1e9))
    b, e = [], []
    for _ in range(args.reps):
        b.append(bare(task, device, lrs))
        e.append(engine(task, device, settings))
    ratios = [ei / bi for ei, bi in zip(e, b)]
    ms = lambda xs: 1000 * np.array(xs) / args.steps  # noqa: E731
    print(f"task {Path(args.task).name}, device {device}, {args.steps} steps, {args.reps} reps")
    print(f"bare loop  ms/step: min {ms(b).min():.3f}  median {np.median(ms(b)):.3f}")
    print(f"range test ms/step: min {ms(e).min():.3f}  median {np.median(ms(e)):.3f}")
    print(f"ratio engine/bare: min {min(ratios):.3f}  median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
