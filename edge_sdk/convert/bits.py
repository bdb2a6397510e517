"""Bit width per layer: from a config, or greedy under a weight-memory budget.

Memory is counted like the tiling schedule counts weight SRAM (bits x count):
codes at the layer's width, per-kernel scalars at ``scalar_bits`` and biases
at ``bias_bits``.  Under a budget, every conv starts at the profile's widest
mode; while the total exceeds the budget, the layer whose next narrower mode
costs the least weight SQNR (dB, integer-domain weights) per bit saved steps
down.  Layers that carry one-hot copy kernels never go below 2 bits (binary
codes have no zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..chips import ChipProfile
from ..errors import ConversionError
from .graph import Graph
from .lower import input_map, resolve_scales
from .lower_conv import SourceMap, assemble, code_domain
from .plan_types import Plan, PlannedLayer
from .wquant import kernel_quant, layer_quant, levels_of, weight_sqnr


@dataclass
class LayerCost:
    name: str
    modes: list[int]  # allowed widths, widest first
    memory: dict[int, int]  # bits -> weight memory bits
    sqnr: dict[int, float]  # bits -> weight SQNR dB


def memory_bits(pl: PlannedLayer, in_channels: int, bits: int, p: ChipProfile) -> int:
    per_out = (in_channels // pl.conv_groups) * pl.kernel * pl.kernel
    scalars = (
        pl.channels * (in_channels // pl.conv_groups) * p.scalar_bits if p.weight_scale == "per_kernel" else 0
    )
    return pl.channels * per_out * bits + scalars + pl.channels * p.bias_bits


def integer_domain(g: Graph, plan: Plan, caps: dict[str, float], p: ChipProfile) -> dict[str, np.ndarray]:
    """W'' = W * s_in / s_out of every planned conv (the domain the weight quantizer sees)."""
    maps = []
    out = {}
    inp = input_map(g, plan, p)
    for pl in plan.layers:
        resolve_scales(pl, plan, caps, p)
        src = inp if pl.src[0] < 0 else maps[pl.src[0]]
        scale = np.concatenate(
            [grp.scale if grp.scale is not None else np.ones(grp.channels) for grp in pl.groups]
        )
        if pl.op == "conv":
            w, b = assemble(pl, src.groups, len(src.scale))
            w, _ = code_domain(pl, w, b, src)
            out[pl.name] = w / scale[:, None, None, None]
        maps.append(SourceMap(scale, np.zeros(pl.channels), pl.groups))
    return out


def layer_costs(g: Graph, plan: Plan, caps: dict[str, float], p: ChipProfile, method: str) -> list[LayerCost]:
    weights = integer_domain(g, plan, caps, p)
    costs = []
    for pl in plan.layers:
        if pl.op != "conv":
            continue
        w = weights[pl.name]
        modes = sorted((b for b in p.weight_modes if b >= pl.min_bits), reverse=True)
        mem, sq = {}, {}
        for b in modes:
            mode = p.mode(b)
            if p.weight_scale == "per_kernel":
                codes, m = kernel_quant(w, mode, method)
                wq = levels_of(codes, mode) * m[:, :, None, None]
            else:
                codes, step = layer_quant(w, mode, method)
                wq = levels_of(codes, mode) * step
            mem[b] = memory_bits(pl, w.shape[1] * pl.conv_groups, b, p)
            sq[b] = weight_sqnr(w, wq)
        costs.append(LayerCost(pl.name, modes, mem, sq))
    return costs


def allocate(costs: list[LayerCost], budget: int) -> dict[str, int]:
    """Greedy: step down the layer with the least SQNR loss per bit saved until the budget holds."""
    chosen = {c.name: c.modes[0] for c in costs}
    by_name = {c.name: c for c in costs}

    def total() -> int:
        return sum(by_name[n].memory[b] for n, b in chosen.items())

    while total() > budget:
        best = None
        for c in costs:
            i = c.modes.index(chosen[c.name])
            if i + 1 >= len(c.modes):
                continue
            lo = c.modes[i + 1]
            saved = c.memory[chosen[c.name]] - c.memory[lo]
            loss = max(c.sqnr[chosen[c.name]] - c.sqnr[lo], 0.0)
            score = loss / max(saved, 1)
            if best is None or score < best[0]:
                best = (score, c.name, lo)
        if best is None:
            floor = sum(c.memory[c.modes[-1]] for c in costs)
            raise ConversionError(
                f"weight budget {budget} bits cannot be met: the narrowest modes need {floor} bits"
            )
        chosen[best[1]] = best[2]
    return chosen
