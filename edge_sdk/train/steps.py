"""A step-based staged training loop with exact resume, for runs that draw a fresh seeded batch every step.

    plan = [("float", 2500, 2e-3), ("qweight", 2000, 1e-3), ("calib", 0, 0.0), ("qact", 1000, 5e-4)]
    history = run_steps(model, plan, out / "ckpt.pt", loss=loss_at, calibrate=calib, lr_at=cosine)

``loss(stage_index, step)`` returns a dict of scalar tensors with a ``"total"`` to minimize;
the batch it uses must be a function of (seed, stage, step), so a resumed run sees the same
data.  A checkpoint (model, optimizer, stage, step, history) is written every ``ckpt_every``
steps and at each stage end; ``state`` (a loaded checkpoint) resumes from it.  The epoch-based
flow with a fixed training set is :mod:`edge_sdk.train.trainer`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

Plan = list[tuple[str, int, float]]  # (stage, steps, learning rate); "calib" is a calibration pass


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill mid-save never leaves a broken checkpoint


def mean_record(stage: str, step: int, run: list[dict], seconds: float) -> dict:
    """The default history row: every loss term's mean over the last steps."""
    rec = {"stage": stage, "step": step, "seconds": round(seconds, 1)}
    rec.update({k: round(float(np.mean([r[k] for r in run])), 4) for k in run[0]})
    return rec


def run_steps(
    model: torch.nn.Module,
    plan: Plan,
    ckpt: Path,
    *,
    loss: Callable[[int, int], dict],
    calibrate: Callable[[], None],
    lr_at: Callable[[int, int, float], float],
    optimizer: Callable = torch.optim.Adam,
    ckpt_every: int = 100,
    record: Callable[[str, int, list, float], dict] = mean_record,
    state: Optional[dict] = None,
    extra: Optional[dict] = None,
) -> list[dict]:
    """Run (or resume from ``state``) the plan; returns the history.  ``extra`` is stored in checkpoints."""
    si, step, history = (state["stage"], state["step"], state["history"]) if state else (0, 0, [])
    if state:
        model.load_state_dict(state["model"])
    while si < len(plan):
        name, steps, lr = plan[si]
        if name == "calib":
            calibrate()
            si, step = si + 1, 0
            save_checkpoint(ckpt, {"model": model.state_dict(), "stage": si, "step": 0, "history": history})
            continue
        model.set_stage(name)
        opt = optimizer(model.parameters(), lr=lr)
        if state and state.get("opt") and state["stage"] == si:
            opt.load_state_dict(state["opt"])
        model.train()
        _run_stage(model, opt, plan, si, step, ckpt, loss, lr_at, ckpt_every, record, history, extra)
        si, step, state = si + 1, 0, None
    return history


def _run_stage(model, opt, plan, si, step, ckpt, loss, lr_at, ckpt_every, record, history, extra) -> None:
    name, steps, lr = plan[si]
    t0, run = time.time(), []
    while step < steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        losses = loss(si, step)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        run.append({k: float(v.detach()) for k, v in losses.items()})
        step += 1
        if step % ckpt_every == 0 or step == steps:
            history.append(record(name, step, run, time.time() - t0))
            print(json.dumps(history[-1]), flush=True)
            t0, run = time.time(), []
            nxt = (si, step) if step < steps else (si + 1, 0)
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "stage": nxt[0], "step": nxt[1]}
            save_checkpoint(ckpt, {**state, "history": history, **(extra or {})})


__all__ = ["Plan", "mean_record", "run_steps", "save_checkpoint"]
