"""Quantizers for quantization-aware training (torch), one per chip profile.

Everything here follows docs/datasheet.md and shared notes methods.md:

* lightspeeur-2803: one scalar per 3x3 kernel (output x input channel pair) times a
  1/2/3/5-bit level (``kernel_quant``);
* nqe-1mb: linear symmetric binary/ternary/quinary codes with one step per layer, the
  step by histogram equalization (``heq_step``);
* activations: capped ReLU then ``2^a - 1`` levels (round half up, lightspeeur) or
  the floor of the bit-shift-normalized value (nqe, "keep the 2 MSBs").

Gradients are straight-through (``ste``): the forward value is the quantized one,
the backward pass sees the identity (within the clamp range, where there is one).
"""

from __future__ import annotations

import math

import torch

# code of a pow2 level magnitude: 0 -> 0, 1 -> 1, 2 -> 2, 4 -> 3 (datasheet section 1)
POW2_CODE = {0: 0, 1: 1, 2: 2, 4: 3}


def ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Forward ``q``, backward identity to ``x`` (straight-through estimator).

    Written as ``q + (x - x)`` so the forward value is exactly ``q`` (bit-exactness).
    """
    return q.detach() + (x - x.detach())


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round half away from zero, the chip's rounding (exact on float64 integers/halves)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def round_shift(acc: torch.Tensor, shift: int, rounding: str) -> torch.Tensor:
    """``R(acc, shift)`` of datasheet 2.1 on integer-valued float tensors (exact in float64)."""
    if shift == 0:
        return acc
    scale = float(2**shift)
    if rounding == "floor":
        return torch.floor(acc / scale)
    return torch.sign(acc) * torch.floor((acc.abs() + scale / 2) / scale)


# ---------------------------------------------------------------- lightspeeur weights
KERNEL_METHODS = ("paper", "twn", "opt")


def kernel_quant(
    w: torch.Tensor, bits: int, method: str = "paper"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-kernel quantization of ``w`` (O, I, k, k): (codes, levels, scalar (O, I)).

    The quantized weight is ``levels * scalar[..., None, None]``; ``codes`` are the
    signed codes the chip stores (pow2 codes for 3 bits).  No gradient flows here.
    ``method="twn"`` (2-bit only; other widths as "paper"): the ternary-weight-network fit,
    zero below 0.7 mean|w| and the scalar the mean |w| of the kept taps (a closer L2 fit than
    the paper's m/4 threshold with scalar m; the chip stores the same codes and scalar).
    ``method="opt"`` (2-bit only): the least-squares ternary fit of each kernel, found exactly by
    trying every count k of kept taps (the k largest |w|, scalar = their mean; best k maximizes
    ``(sum of the k largest |w|)^2 / k``).
    """
    if method not in KERNEL_METHODS:
        raise ValueError(f"kernel quantization method must be one of {KERNEL_METHODS}, found {method!r}")
    w = w.detach()
    mag = w.abs()
    m = mag.mean(dim=(2, 3))
    sign = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    if bits == 1:
        return sign, sign, m
    if bits == 2 and method == "opt":
        keep, alpha = _ternary_lsq(mag)
        return sign * keep, sign * keep, alpha
    if bits == 2 and method == "twn":
        keep = (mag > 0.7 * m[:, :, None, None]).to(w.dtype)
        alpha = (mag * keep).sum(dim=(2, 3)) / torch.clamp(keep.sum(dim=(2, 3)), min=1.0)
        return sign * keep, sign * keep, alpha
    if bits == 2:
        keep = (mag >= m[:, :, None, None] / 4).to(w.dtype)
        return sign * keep, sign * keep, m
    if bits == 3:
        step = m / 4
        r = mag / torch.clamp(step, min=1e-30)[:, :, None, None]
        # nearest of {0, 1, 2, 4} steps: thresholds halfway between them
        level = torch.where(r < 0.5, 0.0, torch.where(r < 1.5, 1.0, torch.where(r < 3.0, 2.0, 4.0))).to(
            w.dtype
        )
        code = torch.where(level == 4.0, 3.0, level)
        return sign * code, sign * level, step
    if bits == 5:
        step = mag.amax(dim=(2, 3)) / 15
        level = torch.clamp(round_half_away(w / torch.clamp(step, min=1e-30)[:, :, None, None]), -15, 15)
        return level, level, step
    raise ValueError(f"lightspeeur has 1/2/3/5-bit weight modes, not {bits}")


def _ternary_lsq(mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep mask, scalar) minimizing ``|w - scalar * sign * keep|^2`` per kernel (exact)."""
    flat = mag.flatten(2)
    top, order = flat.sort(dim=2, descending=True)
    k = torch.arange(1, flat.shape[2] + 1, dtype=mag.dtype, device=mag.device)
    csum = top.cumsum(dim=2)
    best = (csum * csum / k).argmax(dim=2, keepdim=True)  # the first maximum: fewest taps on ties
    alpha = csum.gather(2, best).squeeze(2) / (best.squeeze(2) + 1).to(mag.dtype)
    rank = torch.empty_like(order).scatter_(
        2, order, torch.arange(flat.shape[2], device=mag.device).expand_as(order)
    )
    keep = (rank <= best).to(mag.dtype).reshape(mag.shape)
    return keep, alpha


def kernel_quantize(w: torch.Tensor, bits: int, method: str = "paper") -> torch.Tensor:
    """Quantized weights with a straight-through gradient (per-kernel scalar mode)."""
    _, levels, scalar = kernel_quant(w, bits, method)
    return ste(w, levels * scalar[:, :, None, None])


# ---------------------------------------------------------------- nqe weights
def n_levels(bits: int) -> int:
    """Levels of the nqe linear symmetric modes: binary 2, ternary 3, quinary 5."""
    return {1: 2, 2: 3, 3: 5}[bits]


def heq_step(w: torch.Tensor, bits: int) -> float:
    """Histogram-equalization step: thresholds ``(j - n/2) s`` fitted to the ``j/n`` quantiles.

    Least squares ``s = sum (j - n/2) q_j / sum (j - n/2)^2`` (ternary: ``q2 - q1``).
    Binary has a single threshold at 0, so its step is the scale ``mean|w|``.
    """
    flat = w.detach().reshape(-1).double()
    n = n_levels(bits)
    if n == 2:
        return float(flat.abs().mean())
    if flat.numel() > 1_000_000:  # torch.quantile has an input-size limit; subsample evenly
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    j = torch.arange(1, n, dtype=torch.float64)
    q = torch.quantile(flat, j / n)
    c = j - n / 2
    return max(float((c * q).sum() / (c * c).sum()), 1e-12)


def nqe_codes(w: torch.Tensor, step: float, bits: int) -> torch.Tensor:
    """Signed nqe codes of ``w`` for one layer step (binary: sign, else rounded and clamped)."""
    if bits == 1:
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    top = (n_levels(bits) - 1) // 2
    return torch.clamp(round_half_away(w / step), -top, top)


def nqe_quantize(w: torch.Tensor, step: float, bits: int) -> torch.Tensor:
    """``w / step`` replaced by its codes, straight-through inside the clamp range.

    The result is in code units (the step cancels in bit-shift normalization).
    """
    u = w / step
    codes = nqe_codes(w.detach(), step, bits)
    top = 1.0 if bits == 1 else float((n_levels(bits) - 1) // 2)
    inside = (u.detach().abs() <= top + 0.5).to(u.dtype)
    return codes + (u - u.detach()) * inside  # value = codes, gradient = inside-mask


# ---------------------------------------------------------------- activations
def act_quant_round(x: torch.Tensor, cap: float, act_max: int) -> torch.Tensor:
    """Capped ReLU then ``act_max + 1`` levels, round half up (lightspeeur): real values."""
    y = torch.clamp(x, 0.0, cap)
    q = torch.floor(y * (act_max / cap) + 0.5) * (cap / act_max)
    return ste(y, q)


def act_quant_floor(y: torch.Tensor, act_max: int) -> torch.Tensor:
    """``clamp(floor(y), 0, act_max)`` (nqe HWMSB) with gradient 1 on ``[0, act_max + 1)``."""
    inside = ((y.detach() >= 0) & (y.detach() < act_max + 1)).to(y.dtype)
    q = torch.clamp(torch.floor(y.detach()), 0, act_max)
    return q + (y - y.detach()) * inside


def percentile99(x: torch.Tensor) -> float:
    """99th percentile of a batch of ReLU outputs (cap calibration, methods.md section 1)."""
    flat = x.detach().reshape(-1).float()
    k = max(1, int(math.ceil(0.99 * flat.numel())))
    return float(flat.kthvalue(k).values)
