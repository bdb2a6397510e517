"""The fused stage's integer constants: exactly what the chip (and the firmware) gets.

``conv_params`` / ``add_params`` turn a trained node into integer weights, scalars,
biases and a shift (datasheet sections 2 and 3).  The fused torch forward and the
exporter both call them, so the exported network and the torch model share every
integer by construction; with float64 tensors (integers below 2^53) the torch conv
and ``requant`` then compute the chip's accumulators and codes exactly.
Straight-through gradients let the same code fine-tune the fused model.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..chips import ChipProfile
from .quant import kernel_quant, nqe_quantize, round_half_away, round_shift, ste


def _floor_log2(limit: float, value: float, default: int) -> int:
    return default if value <= 0 else math.floor(math.log2(limit / value))


def requant(acc: torch.Tensor, shift: int, profile: ChipProfile, raw: bool) -> torch.Tensor:
    """Datasheet 2.2: ``R(acc, shift)``, clamped to the activation codes unless raw."""
    q = round_shift(acc.detach(), shift, profile.rounding)
    y = ste(acc * 2.0**-shift, q)
    return y if raw else torch.clamp(y, 0, profile.act_max)


def _lightspeeur_conv(node, s_in: float, dtype: torch.dtype) -> dict:
    p, mode = node.profile, node.profile.mode(node.bits)
    codes, levels, m, w = _folded_kernels(node, dtype)
    b = node.conv.bias.to(dtype)
    s_out = 1.0 if node.raw else float(node.cap) / p.act_max
    r = s_in / s_out  # W'' = W' cap_prev / cap (methods.md section 1)
    b_real = b / s_out
    m_eff, single = m, None
    if mode.max_level > 1:  # a single tap may take any level (_single_taps): its size is the weight's
        wd = w.detach()
        single = (wd != 0).sum(dim=(2, 3)) == 1
        m_eff = torch.where(single, wd.abs().sum(dim=(2, 3)) / mode.max_level, m)
    sh_w = _floor_log2(p.weight_int_max, float((m_eff * r).max()) * mode.max_level, p.shift_max)
    sh_b = _floor_log2((1 << (p.bias_bits - 1)) - 1, float(b_real.detach().abs().max()), p.shift_max)
    shift = int(min(max(min(sh_w, sh_b), p.shift_min), p.shift_max))
    scale = 2.0**shift
    top = min(p.weight_int_max // mode.max_level, (1 << (p.scalar_bits - 1)) - 1)
    scalars = torch.clamp(round_half_away(m * r * scale), 0, top)
    w_q = levels * scalars[:, :, None, None]
    if single is not None and bool(single.any()):
        codes, scalars, w_q = _single_taps(w * (r * scale), single, codes, scalars, w_q, mode, top)
    w_int = ste(w * (r * scale), w_q)
    blim = (1 << (p.bias_bits - 1)) - 1
    bias = ste(b_real * scale, torch.clamp(round_half_away(b_real.detach() * scale), -blim, blim))
    if node.raw:  # keep the whole accumulator: the host dequantizes it with 2^-shift
        return {
            "codes": codes,
            "scalars": scalars,
            "w_int": w_int,
            "bias": bias,
            "shift": 0,
            "out_scale": 1.0 / scale,
        }
    return {
        "codes": codes,
        "scalars": scalars,
        "w_int": w_int,
        "bias": bias,
        "shift": shift,
        "out_scale": s_out,
    }


def _folded_kernels(node, dtype: torch.dtype):
    """(codes, levels, scalar, real weights) of a conv with its BN gain folded in.

    The codes are decided on the latent weights in their own dtype, exactly as the qact stage
    decided them: QAT parks weights on quantization thresholds, where deciding in float64, or on
    weights rescaled by the BN gain, flips codes (one such flip moved a channel by 6 codes).
    Every per-kernel quantizer commutes with scaling a kernel, so the gain g moves into the
    scalars (|g|) and the signs of the codes (sign g)."""
    w_lat = node.conv.weight
    codes, levels, m = kernel_quant(w_lat, node.bits, getattr(node, "kernel_method", "paper"))
    g = node.gain.to(dtype)
    sg = torch.where(g < 0, -1.0, 1.0).to(dtype)[:, None, None, None]
    m = m.to(dtype) * g.abs()[:, None]
    w = w_lat.to(dtype) * g[:, None, None, None]
    return codes.to(dtype) * sg, levels.to(dtype) * sg, m, w


def _single_taps(w_scaled, single, codes, scalars, w_q, mode, top: int):
    """Kernels with one non-zero weight (``single``: 1x1 convs, one-hot copies) get the (code,
    scalar) pair whose product is closest to that weight, encoded exactly as the converter does
    (``edge_sdk.convert.wquant.single_tap_encode``): a 1x1 weight then keeps about 11 bits
    instead of the 7 of a scalar that must leave room for level 15."""
    from ..convert.wquant import levels_of, single_tap_encode

    ws = w_scaled.detach()
    code, scal = single_tap_encode(ws.sum(dim=(2, 3))[single].double().numpy(), mode, top)

    def on_kernels(values: np.ndarray) -> torch.Tensor:  # per single kernel -> (O, I) tensor
        t = torch.zeros(single.shape, dtype=ws.dtype)
        t[single] = torch.from_numpy(values).to(ws.dtype)
        return t

    sign, pick = torch.sign(ws), single[:, :, None, None]  # sign is 0 on the kernel's other taps
    codes = torch.where(pick, sign * on_kernels(np.abs(code))[:, :, None, None], codes)
    w_int = on_kernels(np.abs(levels_of(code, mode)) * scal)
    w_q = torch.where(pick, sign * w_int[:, :, None, None], w_q)
    return codes, torch.where(single, on_kernels(scal).to(scalars.dtype), scalars), w_q


def _nqe_conv(node, dtype: torch.dtype) -> dict:
    p = node.profile
    # codes decided in the weights' own dtype, as in the qact stage (see _folded_kernels)
    codes = nqe_quantize(node.conv.weight, node.heq(), node.bits).to(dtype)
    bsn = node.bsn
    k = int(bsn.k)
    b_real = bsn.beta.to(dtype) * 2.0**k - bsn.running_mean.to(dtype)
    blim = (1 << (p.bias_bits - 1)) - 1
    bias = ste(b_real, torch.clamp(round_half_away(b_real.detach()), -blim, blim))
    if node.raw:  # raw = acc + b = y 2^k
        return {
            "codes": codes.detach(),
            "scalars": None,
            "w_int": codes,
            "bias": bias,
            "shift": 0,
            "out_scale": 2.0**-k,
        }
    shift = int(min(max(k + int(node.e), p.shift_min), p.shift_max))
    return {
        "codes": codes.detach(),
        "scalars": None,
        "w_int": codes,
        "bias": bias,
        "shift": shift,
        "out_scale": 1.0,
    }


def conv_params(node, s_in: float, dtype: torch.dtype = torch.float64) -> dict:
    """Integer constants of a conv node for input codes of real scale ``s_in``.

    Keys: codes (signed weight codes), scalars (per-kernel, or None), w_int (the
    integer weights, straight-through to the float ones), bias (accumulator units),
    shift, out_scale (real value of one output code / raw unit).
    """
    if node.per_kernel:
        return _lightspeeur_conv(node, s_in, dtype)
    return _nqe_conv(node, dtype)


def add_params(node, s_a: float, s_b: float) -> dict:
    """Integer multipliers and shift of a shortcut add: ``m / 2^shift ~ s_in / s_out``."""
    p = node.profile
    s_out = float(node.cap) / p.act_max if node.per_kernel else 2.0 ** int(node.e)
    ra, rb = s_a / s_out, s_b / s_out
    mmax = (1 << (p.multiplier_bits - 1)) - 1
    shift = int(min(max(_floor_log2(mmax, max(ra, rb), p.shift_max), p.shift_min), p.shift_max))
    mults = (
        int(round_half_away(torch.tensor(ra * 2.0**shift))),
        int(round_half_away(torch.tensor(rb * 2.0**shift))),
    )
    return {"mults": mults, "shift": shift, "out_scale": s_out if node.per_kernel else 1.0}
