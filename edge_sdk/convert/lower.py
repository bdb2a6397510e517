"""Plan + caps + bit widths -> the integer Network the chip runs (and the host tail).

Scales flow forward: the network input's codes are worth ``2^input_shift * a``
(the chip's input conversion of pixels whose real value is ``a * pixel + c``;
``c`` is folded into the first layer's bias), each ReLU group's codes are
worth ``cap / (2^a - 1)``, copies and max-pools keep their source's scale, and a
raw last layer's unit is set by its weights.  Adds rescale both operands to the
output scale with integer multipliers and a shift: m / 2^shift ~ s_operand / s_out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..chips import ChipProfile
from ..errors import ConversionError
from ..network import Layer, Network
from .graph import Graph
from .lower_conv import ConvResult, SourceMap, lower_conv_per_kernel, lower_conv_per_layer
from .plan_types import Group, Plan, PlannedLayer
from .wquant import round_half_away


@dataclass
class Lowered:
    network: Network
    sources: list[SourceMap]  # per chip layer: output scales and groups
    convs: dict[int, ConvResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def input_map(g: Graph, plan: Plan, p: ChipProfile) -> SourceMap:
    c = g.shape(g.input)[-1]
    code_scale = float(2**p.input_shift) if p.input_conversion == "round_shift" else 1.0
    scale = np.broadcast_to(np.asarray(g.input_scale, np.float64) * code_scale, (c,)).copy()
    offset = np.broadcast_to(np.asarray(g.input_offset, np.float64), (c,)).copy()
    if np.any(scale <= 0):
        raise ConversionError(f"the input scale must be positive, found {scale}")
    grp = _input_group(plan)
    grp.scale = scale
    return SourceMap(scale, offset, [grp])


def resolve_scales(pl: PlannedLayer, plan: Plan, caps: dict[str, float], p: ChipProfile) -> None:
    """Set each group's scale before its layer is lowered (copies reuse their source's)."""
    for grp in pl.groups:
        if grp.act == "none":
            continue
        if grp.copy_of is not None:
            src_grp = _find(plan, grp.copy_of)
            grp.scale = src_grp.scale.copy()
            continue
        cap = np.asarray(grp.cap if grp.cap is not None else caps[grp.cal_key], np.float64)
        lo, hi = grp.piece if grp.piece is not None else (0.0, 1.0)
        grp.shift = float(lo) * cap if np.ndim(cap) == 0 else lo * cap
        grp.scale = np.broadcast_to((hi - lo) * cap / p.act_max, (grp.channels,)).copy()


def _find(plan: Plan, key: str) -> Group:
    return _input_group(plan) if key == "input" else plan.group(key)[1]


def _input_group(plan: Plan) -> Group:
    for entries in plan.where.values():
        for i, grp in entries:
            if i < 0:
                return grp
    raise KeyError("input")


def lower_add(pl: PlannedLayer, srcs: list[SourceMap], p: ChipProfile, in_shape: tuple) -> Layer:
    s_out = float(pl.groups[0].scale[0])
    ratios = [coef * float(sm.scale[0]) / s_out for coef, sm in zip(pl.coefs, srcs)]
    lim = (1 << (p.multiplier_bits - 1)) - 1
    top = max(abs(r) for r in ratios)
    shift = int(np.clip(np.floor(np.log2(lim / top)) if top > 0 else p.shift_max, p.shift_min, p.shift_max))
    mults = tuple(int(np.clip(round_half_away(np.array(r * 2.0**shift)), -lim, lim)) for r in ratios)
    return Layer(
        pl.name,
        "add",
        tuple(pl.src),
        tuple(in_shape),
        tuple(pl.out_shape),
        act_bits=p.activation_bits,
        shift=shift,
        mults=mults,
        out_scale=s_out,
    )


def lower_chip(
    g: Graph,
    plan: Plan,
    caps: dict[str, float],
    bits: dict[str, int],
    p: ChipProfile,
    method: str = "paper",
    recon=None,
    input_shape: Optional[tuple] = None,
    progress: Optional[Callable] = None,
) -> Lowered:
    """Lower every planned layer in order; ``recon`` (a recon.Reconstructor) refits convs to the chip's inputs."""
    inp = input_map(g, plan, p)
    input_shape = tuple(input_shape or g.shape(g.input))
    layers: list[Layer] = []
    maps: list[SourceMap] = []
    out = Lowered(None, maps)
    lower_conv = lower_conv_per_kernel if p.weight_scale == "per_kernel" else lower_conv_per_layer
    items = list(enumerate(plan.layers))
    for i, pl in progress(items, desc="quantize", unit="layer") if progress else items:
        resolve_scales(pl, plan, caps, p)
        srcs = [inp if s < 0 else maps[s] for s in pl.src]
        in_shape = input_shape if pl.src[0] < 0 else tuple(layers[pl.src[0]].out_shape)
        if pl.op == "conv":
            real = recon.fit(pl, srcs[0], in_shape[2]) if recon is not None else None
            res = lower_conv(pl, srcs[0], in_shape, bits[pl.name], p, method, real)
            for grp, sc in zip(pl.groups, res.scales):
                grp.scale = sc
            out.convs[i] = res
            out.notes += res.notes
            layer = res.layer
        elif pl.op == "maxpool":
            in_bits = 8 if pl.src[0] < 0 and p.input_conversion == "identity" else p.activation_bits
            layer = Layer(
                pl.name,
                "maxpool",
                tuple(pl.src),
                in_shape,
                tuple(pl.out_shape),
                kernel=2,
                stride=2,
                act_bits=in_bits,
                out_scale=float(pl.groups[0].scale[0]),
            )
            if pl.src[0] < 0 and np.any(inp.offset):
                raise ConversionError(f"{pl.name}: max-pooling the network input needs a zero input offset")
        else:
            layer = lower_add(pl, srcs, p, in_shape)
        layers.append(layer)
        if recon is not None:
            recon.record(Network(p, input_shape, layers), i, layer)
        maps.append(
            SourceMap(np.concatenate([grp.scale for grp in pl.groups]), np.zeros(pl.channels), pl.groups)
        )
    out.network = Network(p, input_shape, layers)
    return out


def host_layers(plan: Plan, lowered: Lowered, recon=None) -> list[Layer]:
    """gap / dense / softmax after the chip part, reading the chip output layer (the first dense refit by recon)."""
    layers = lowered.network.layers
    src = plan.where[plan.chip_output][0][0]
    refit = recon.fit_host_dense(plan, src, layers[src].out_scale) if recon is not None else None
    ratio = _scale_ratio(plan, layers[src])
    shape = tuple(layers[src].out_shape)
    result = []
    for hl in plan.host:
        index = len(layers) + len(result)
        if hl.op == "gap":
            out_shape = (1, 1, shape[2])
            layer = Layer(hl.name, "gap", (src,), shape, out_shape)
        elif hl.op == "dense":
            w, b = (hl.w, hl.b) if refit is None else refit
            if (
                ratio is not None and refit is None
            ):  # dequantized with out_scale; per-channel scales fold into W
                w = w * np.tile(ratio, w.shape[1] // len(ratio))[None, :]
            refit, ratio = None, None
            out_shape = (1, 1, w.shape[0])
            layer = Layer(
                hl.name,
                "dense",
                (src,),
                shape,
                out_shape,
                dense_w=np.ascontiguousarray(w, np.float32),
                dense_b=np.asarray(b, np.float32),
            )
        else:
            out_shape = shape
            layer = Layer(hl.name, "softmax", (src,), shape, out_shape)
        result.append(layer)
        src, shape = index, out_shape
    return result


def _scale_ratio(plan: Plan, layer: Layer):
    """Per-channel scale / out_scale of the chip output layer, or None if uniform."""
    grp = plan.where[plan.chip_output][0][1]
    if grp.scale is None or np.allclose(grp.scale, grp.scale[0]):
        return None
    ops = [h.op for h in plan.host]
    if "dense" not in ops or any(op != "gap" for op in ops[: ops.index("dense")]):
        raise ConversionError(
            "per-channel caps on the chip output need a dense layer after it (or a gap and a "
            "dense) to absorb them; use per-tensor caps"
        )
    return grp.scale / layer.out_scale


def quant_metadata(plan: Plan, g: Graph) -> list[dict[str, Any]]:
    """Per chip layer, its groups: which float tensor, which channels, sign, scale (for verify / SQNR)."""
    rows = []
    for pl in plan.layers:
        groups = []
        for grp in pl.groups:
            scale = grp.scale if grp.scale is not None else np.zeros(grp.channels)
            uniform = bool(np.allclose(scale, scale[0]))
            name = g.tensors[grp.tensor].name if grp.tensor is not None else None
            groups.append(
                {
                    "key": grp.key,
                    "base": grp.base or grp.key,
                    "tensor": name,
                    "tensor_index": -1 if grp.tensor is None else int(grp.tensor),
                    "channels": [grp.offset, grp.channels],
                    "sign": grp.sign,
                    "act": grp.act,
                    "ref": [[float(c), int(t), int(s)] for c, t, s in grp.ref.terms],
                    "scale": float(scale[0]) if uniform else [float(v) for v in scale],
                }
            )
        rows.append({"name": pl.name, "nodes": list(pl.nodes), "groups": groups})
    return rows
