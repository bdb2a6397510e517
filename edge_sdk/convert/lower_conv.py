"""Quantize one planned convolution into a chip conv Layer (both profile styles).

The real weights of the whole layer are assembled over the source layer's
channels: each group's terms read the parts of their tensor (positive parts
with +W, negative parts with -W), each source channel weighted by its scale,
and the network input's offset folded into the bias.  Dividing by the output
channel's scale gives the integer-domain weights W'' = W * s_in / s_out
(methods.md section 1), which the profile's quantizer encodes:

* per-kernel (lightspeeur): codes x per-kernel scalar, per-layer shift;
* per-layer (nqe): codes x one HEQ step; bit-shift normalization picks the
  shift k so that one output code is s_in * step * 2^k (the power of two nearest
  to cap / 3), and the per-channel bias absorbs the rounding offset 2^(k-1)
  because the requantizer floors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..chips import ChipProfile
from ..errors import ConversionError
from ..network import Layer
from .plan_types import Group, PlannedLayer
from .wquant import fixed_point, kernel_quant, layer_quant, levels_of, round_half_away


@dataclass
class SourceMap:
    """Per-channel scale and offset of a source layer, and which groups hold which tensors."""

    scale: np.ndarray  # (C,) real value of one code
    offset: np.ndarray  # (C,) real offset (the network input only)
    groups: list[Group] = field(default_factory=list)


@dataclass
class ConvResult:
    layer: Layer
    scales: list[np.ndarray]  # per group (channels,)
    w_real: np.ndarray  # integer-domain real weights (for the bit allocator / report)
    wq_real: np.ndarray  # what the chip multiplies by, in the same units
    notes: list[str]


def assemble(pl: PlannedLayer, groups: list[Group], in_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Real weights over the source layer's channels (O, C/groups, k, k), w.r.t. real input values, and bias."""
    k = pl.kernel
    ig = 1 if pl.conv_groups > 1 else in_channels
    w = np.zeros((pl.channels, ig, k, k), np.float64)
    b = np.zeros(pl.channels, np.float64)
    for grp in pl.groups:
        for term in grp.terms:
            for part in groups:
                if part.tensor != term.tensor or (term.part is not None and part.key != term.part):
                    continue
                sign = grp.sign * part.sign  # T = relu(T) - relu(-T): parts read with +W and -W
                if pl.conv_groups > 1:
                    w[grp.slice] += sign * term.w
                else:
                    w[grp.slice, part.slice] += sign * term.w
        if grp.bias is not None:
            b[grp.slice] += grp.sign * grp.bias
        b[grp.slice] -= grp.shift  # upper pieces: relu(sign*T - lo*cap)
    return w, b


def code_domain(
    pl: PlannedLayer, w: np.ndarray, b: np.ndarray, src: SourceMap
) -> tuple[np.ndarray, np.ndarray]:
    """Weights per input code (times each source channel's scale) and the bias with the input offset folded in."""
    if pl.conv_groups > 1:
        gi = w.shape[1]
        scale = src.scale.reshape(-1, gi)[np.arange(w.shape[0]) // (w.shape[0] // (len(src.scale) // gi))]
        offset = src.offset.reshape(-1, gi)[np.arange(w.shape[0]) // (w.shape[0] // (len(src.offset) // gi))]
        wc = w * scale[:, :, None, None]
        bc = b + (w.sum(axis=(2, 3)) * offset).sum(axis=1)
    else:
        wc = w * src.scale[None, :, None, None]
        bc = b + np.einsum("oikl,i->o", w, src.offset)
    return wc, bc


def _single_mask(w: np.ndarray, decode: str) -> tuple[np.ndarray, np.ndarray]:
    flat = w.reshape(w.shape[0], w.shape[1], -1)
    nnz = (flat != 0).sum(axis=-1)
    single = (nnz == 1) & ((flat.shape[-1] == 1) | (decode != "binary"))
    return single, flat.sum(axis=-1)


def per_kernel_conv(
    pl: PlannedLayer, w: np.ndarray, b: np.ndarray, s_out: np.ndarray, bits: int, p: ChipProfile, method: str
) -> tuple[dict, np.ndarray, np.ndarray, list[str]]:
    mode = p.mode(bits)
    w2 = w / s_out[:, None, None, None]
    b2 = b / s_out
    codes, m = kernel_quant(w2, mode, method)
    single, single_v = _single_mask(w2, mode.decode)
    fp = fixed_point(codes, m, b2, mode, p, single, single_v, w2)
    wq = (
        levels_of(fp.codes.astype(np.int64), mode)
        * fp.scalars.astype(np.float64)[:, :, None, None]
        / 2.0**fp.shift
    )
    fields = dict(codes=fp.codes, scalars=fp.scalars, bias=fp.bias, shift=fp.shift)
    return fields, w2, wq, fp.clipped


def lower_conv_per_kernel(
    pl: PlannedLayer,
    src: SourceMap,
    in_shape: tuple,
    bits: int,
    p: ChipProfile,
    method: str,
    real: tuple | None = None,
) -> ConvResult:
    """``real``: (W, b) w.r.t. real input values to use instead of the plan's (reconstruction)."""
    w, b = real if real is not None else assemble(pl, src.groups, in_shape[2])
    w, b = code_domain(pl, w, b, src)
    raw = pl.groups[0].act == "none"
    if raw:  # shift 0: one raw unit is the largest weight / weight_int_max
        mode = p.mode(bits)
        _, m = kernel_quant(w, mode, method)
        single, single_v = _single_mask(w, mode.decode)
        m = np.where(single, np.abs(single_v) / max(mode.max_level, 1), m)
        unit = max(
            mode.max_level * float(m.max(initial=0)) / p.weight_int_max,
            float(np.abs(b).max(initial=0)) / ((1 << (p.bias_bits - 1)) - 1),
            1e-30,
        )
        s_out = np.full(pl.channels, unit)
    else:
        s_out = np.concatenate([g.scale for g in pl.groups])
    fields, w2, wq, clipped = per_kernel_conv(pl, w, b, s_out, bits, p, method)
    if raw and fields["shift"] != 0:
        fields["shift"] = 0  # the unit above makes shift_w 0 up to float rounding
    return _result(pl, in_shape, bits, p, fields, s_out, w2, wq, clipped)


def lower_conv_per_layer(
    pl: PlannedLayer,
    src: SourceMap,
    in_shape: tuple,
    bits: int,
    p: ChipProfile,
    method: str,
    real: tuple | None = None,
) -> ConvResult:
    s_in = src.scale
    if np.ptp(s_in) > 1e-6 * float(np.max(s_in)):
        raise ConversionError(f"layer {pl.name}: per-layer weight profiles need one input scale per layer")
    w, b = real if real is not None else assemble(pl, src.groups, in_shape[2])
    _, b = code_domain(pl, w, b, SourceMap(np.ones_like(s_in), src.offset, src.groups))  # offset -> bias
    mode = p.mode(bits)
    codes, step = layer_quant(w, mode, method)
    unit = float(s_in[0]) * step  # real value of one accumulator step
    raw = pl.groups[0].act == "none"
    if raw:
        k = 0
    else:
        target = max(float(g.scale.max()) for g in pl.groups)  # cap / act_max, shared by the layer
        k = int(np.clip(round(np.log2(max(target / unit, 1e-30))), p.shift_min, p.shift_max))
    half = (1 << (k - 1)) if (k > 0 and p.rounding == "floor") else 0
    lim = (1 << (p.bias_bits - 1)) - 1
    bias = round_half_away(b / unit) + half
    clipped = ["bias"] if np.abs(bias).max(initial=0) > lim else []
    s_out = np.full(pl.channels, unit * 2.0**k)
    fields = dict(
        codes=codes.astype(np.int8), scalars=None, bias=np.clip(bias, -lim, lim).astype(np.int32), shift=k
    )
    w2 = w * float(s_in[0]) / s_out[:, None, None, None]
    wq = levels_of(codes, mode) * unit / s_out[:, None, None, None]
    return _result(pl, in_shape, bits, p, fields, s_out, w2, wq, clipped)


def _result(
    pl: PlannedLayer,
    in_shape: tuple,
    bits: int,
    p: ChipProfile,
    fields: dict,
    s_out: np.ndarray,
    w2: np.ndarray,
    wq: np.ndarray,
    clipped: list[str],
) -> ConvResult:
    raw = pl.groups[0].act == "none"
    layer = Layer(
        pl.name,
        "conv",
        tuple(pl.src),
        tuple(in_shape),
        tuple(pl.out_shape),
        kernel=pl.kernel,
        stride=pl.stride,
        pad=tuple(pl.pad),
        groups=pl.conv_groups,
        weight_bits=bits,
        act_bits=32 if raw else p.activation_bits,
        output="raw" if raw else "act",
        out_scale=float(s_out[0]),
        **fields,
    )
    scales = [s_out[g.slice] for g in pl.groups]
    notes = [f"{pl.name}: clipped {c}" for c in clipped]
    return ConvResult(layer, scales, w2, wq, notes)
