"""Per-layer SQNR of a converted network against the float model, on the same images.

For every chip layer, each channel group's dequantized codes (code x scale, or
raw x unit) are compared with the float tensor the group stands for (its
``Ref``: e.g. relu(T) for a positive part), over all pixels and images:
SQNR = 10 log10(sum ref^2 / sum (deq - ref)^2).  Host layers are compared with
the float graph's tensors after them (logits, probabilities).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..network import Network
from .float_exec import pixels_to_real, run_graph
from .graph import Graph
from .intsim import simulate
from .plan_types import Plan


def db(signal: float, noise: float) -> float:
    if noise <= 0:
        return float("inf")
    return float(10.0 * np.log10(max(signal, 1e-30) / noise))


def _accumulate(acc: dict, name: str, ref: np.ndarray, deq: np.ndarray) -> None:
    s, n = acc.get(name, (0.0, 0.0))
    acc[name] = (
        s + float((ref.astype(np.float64) ** 2).sum()),
        n + float(((deq.astype(np.float64) - ref) ** 2).sum()),
    )


def layer_sqnr(
    graph: Graph,
    plan: Plan,
    net: Network,
    pixels: np.ndarray,
    batch: int = 25,
    progress: Optional[Callable] = None,
    prep=None,
) -> dict[str, float]:
    """SQNR in dB per network layer name (chip and host)."""
    needed = {t for pl in plan.layers for g in pl.groups for t in g.ref.tensors}
    needed |= {hl.tensor_out for hl in plan.host}
    acc: dict[str, tuple[float, float]] = {}
    cache: dict = {}
    n_chip = len(plan.layers)
    starts = range(0, len(pixels), batch)
    for start in progress(starts, desc="sqnr", unit="batch") if progress else starts:
        frames = pixels[start : start + batch]
        env = run_graph(graph, pixels_to_real(graph, frames), keep=needed)
        outs = simulate(net, prep.apply(frames) if prep is not None else frames, cache)
        for i, pl in enumerate(plan.layers):
            combined: dict[str, list] = {}  # pieces of one part add up to it
            for grp in pl.groups:
                deq = outs[i][..., grp.slice].astype(np.float64) * grp.scale
                entry = combined.setdefault(grp.base or grp.key, [grp, 0.0])
                entry[1] = entry[1] + deq
            for grp, deq in combined.values():
                _accumulate(acc, pl.name, grp.ref.evaluate(env), deq)
        for k, hl in enumerate(plan.host):
            layer = net.layers[n_chip + k]
            ref = env[hl.tensor_out].reshape(len(frames), -1)
            _accumulate(acc, layer.name, ref, outs[n_chip + k].reshape(len(frames), -1))
    return {name: db(s, n) for name, (s, n) in acc.items()}
