"""Cap calibration: run the float model on calibration images, pick each ReLU group's cap.

methods.md section 1: the cap of a capped ReLU is the 99th percentile of its
output per batch, maximum over batches (``method="percentile"``).  Also
``"max"`` (the largest value seen) and ``"mse"`` (per batch, the cap among
percentile candidates that minimizes the squared error of the activation
quantizer, averaged over batches).  Groups with a fixed cap (ReLU6 -> 6) or
that copy another group's scale are not calibrated.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..errors import ConversionError
from .float_exec import pixels_to_real, run_graph
from .graph import Graph
from .plan_types import Group, Plan

METHODS = ("percentile", "max", "mse")


def calibrated_groups(plan: Plan) -> list[Group]:
    """One group per calibration key (pieces of one part share theirs)."""
    seen: dict[str, Group] = {}
    for layer in plan.layers:
        for g in layer.groups:
            if g.act == "relu" and g.cap is None and g.copy_of is None:
                seen.setdefault(g.cal_key, g)
    return list(seen.values())


def _mse_cap(v: np.ndarray, levels: int) -> float:
    """The cap (among high percentiles) minimizing E[(q(v) - v)^2] for a ``levels``-step clamp quantizer."""
    flat = v.ravel()
    best, best_err = float(flat.max()), np.inf
    for p in (90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 99.99, 100.0):
        cap = float(np.percentile(flat, p))
        if cap <= 0:
            continue
        q = np.clip(np.floor(flat / cap * levels + 0.5), 0, levels) * cap / levels
        err = float(((q - flat) ** 2).mean())
        if err < best_err:
            best, best_err = cap, err
    return best


def batch_stat(v: np.ndarray, method: str, percentile: float, levels: int, per_channel: bool = False):
    """One batch's statistic: a float, or one per channel (last axis)."""
    if per_channel:
        flat = v.reshape(-1, v.shape[-1])
        return np.array([batch_stat(flat[:, c], method, percentile, levels) for c in range(flat.shape[1])])
    if method == "percentile":
        return float(np.percentile(v, percentile))
    if method == "max":
        return float(v.max())
    return _mse_cap(v, levels)


def calibrate(
    graph: Graph,
    plan: Plan,
    pixels: np.ndarray,
    *,
    levels: int,
    method: str = "percentile",
    percentile: float = 99.0,
    batch: int = 50,
    per_channel: bool = False,
    progress: Optional[Callable] = None,
) -> dict[str, Any]:
    """Caps of the calibrated groups, keyed by group key (arrays per channel where allowed)."""
    if method not in METHODS:
        raise ConversionError(f"unknown calibration method {method!r}; choose one of {METHODS}")
    if pixels is None or len(pixels) == 0:
        raise ConversionError("calibration needs at least one image")
    groups = calibrated_groups(plan)
    needed = {t for g in groups for t in g.ref.tensors}
    stats: dict[str, list] = {g.cal_key: [] for g in groups}
    starts = range(0, len(pixels), batch)
    for start in progress(starts, desc="calibrate", unit="batch") if progress else starts:
        env = run_graph(graph, pixels_to_real(graph, pixels[start : start + batch]), keep=needed)
        for g in groups:
            stats[g.cal_key].append(
                batch_stat(g.ref.evaluate(env), method, percentile, levels, per_channel and not g.uniform)
            )
    caps: dict[str, Any] = {}
    for key, values in stats.items():
        cap = np.mean(values, axis=0) if method == "mse" else np.max(values, axis=0)
        cap = np.where(cap > 0, cap, 1.0)  # a dead channel: any cap represents its zeros exactly
        caps[key] = float(cap) if np.ndim(cap) == 0 else cap
    return caps


def model_caps(graph: Graph, plan: Plan) -> dict[str, float]:
    """Caps from a quantized model's own activation ranges (no calibration images needed).

    A ReLU output stored as uint8/int8 with (scale, zero point) can reach
    (q_max - zp) * scale; a negative part reaches (zp - q_min) * scale.
    """
    caps = {}
    for g in calibrated_groups(plan):
        terms = g.ref.terms
        info = graph.tensors.get(terms[0][1]) if len(terms) == 1 else None
        if info is None or info.scale is None or info.dtype not in ("uint8", "int8"):
            what = "a partial sum" if info is None else f"tensor {info.name!r} (not quantized)"
            raise ConversionError(
                f"group {g.key}: {what} has no range in the model; calibration images needed"
            )
        qmin, qmax = (0, 255) if info.dtype == "uint8" else (-128, 127)
        scale, zp = float(info.scale[0]), float(info.zero_point[0])
        cap = (qmax - zp) * scale if terms[0][2] >= 0 else (zp - qmin) * scale
        caps[g.cal_key] = cap if cap > 0 else 1.0
    return caps
