"""Weight quantizers and fixed-point encoding (docs/methods.md sections 1, 2, 4, 5).

Per-kernel (lightspeeur-2803): one real scalar per k x k kernel times the mode's
integer levels (``kernel_quant``), then the per-layer fixed point
(``fixed_point``): shift = clip(min(shift_w, shift_b), lo, hi) with
shift_w = floor(log2(weight_int_max / (max_level * max scalar))) and shift_b the
same for the bias at ``bias_bits``; scalars and biases are stored as
round(x * 2^shift), half away from zero.

Per-layer (nqe-1mb): one step size per layer by histogram equalization
(``heq_step``), codes = clip(round(w / step)).

``method="lloyd"`` refines either quantizer with k-means on the constrained
codebook {level * scalar} (Lloyd iterations: assign the nearest level, refit the
scalar by least squares); the chips decode codes on a fixed level grid, so this
is the form of k-means weight sharing they can run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..chips import ChipProfile, WeightMode

POW2_LEVELS = np.array([0.0, 1.0, 2.0, 4.0])  # 3-bit pow2 code magnitudes 0..3 -> levels


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _nearest_pow2_code(r: np.ndarray) -> np.ndarray:
    """|w| / scalar -> pow2 code magnitude 0..3 (nearest of the levels 0, 1, 2, 4)."""
    return np.searchsorted(np.array([0.5, 1.5, 3.0]), r, side="left").astype(np.int64)


def assign_codes(w: np.ndarray, m: np.ndarray, mode: WeightMode) -> np.ndarray:
    """Nearest codes for weights w (..., K) given per-kernel scalars m (...)."""
    if mode.decode == "binary":
        return np.where(w >= 0, 1, -1).astype(np.int64)
    safe = np.where(m > 0, m, 1.0)[..., None]
    r = w / safe
    if mode.decode == "pow2":
        codes = np.sign(r) * _nearest_pow2_code(np.abs(r))
    else:
        codes = round_half_away(r)
    codes = np.clip(codes, mode.min, mode.max).astype(np.int64)
    return np.where(m[..., None] > 0, codes, 0 if mode.decode != "binary" else 1)


def levels_of(codes: np.ndarray, mode: WeightMode) -> np.ndarray:
    if mode.decode != "pow2":
        return codes.astype(np.float64)
    mag = np.abs(codes)
    return np.sign(codes) * np.where(mag == 0, 0.0, 2.0 ** np.maximum(mag - 1, 0))


def paper_kernel_quant(flat: np.ndarray, mode: WeightMode) -> tuple[np.ndarray, np.ndarray]:
    """methods.md section 1: (codes, scalar) per kernel; flat is (..., K) real weights."""
    a = np.abs(flat)
    if mode.decode == "binary":
        return np.where(flat >= 0, 1, -1).astype(np.int64), a.mean(axis=-1)
    if mode.decode == "pow2":  # 3-bit: levels {0, m/4, m/2, m} with m = mean|w|; scalar = m/4
        m = a.mean(axis=-1) / 4.0
        return assign_codes(flat, m, mode), m
    if mode.max == 1:  # 2-bit ternary: sign(w)*m where |w| >= m/4, m = mean|w|
        m = a.mean(axis=-1)
        codes = np.where(a >= m[..., None] / 4.0, np.sign(flat), 0).astype(np.int64)
        return np.where(m[..., None] > 0, codes, 0), m
    m = a.max(axis=-1) / mode.max  # linear (5-bit): step = max|w| / 15
    return assign_codes(flat, m, mode), m


def lloyd(flat: np.ndarray, codes: np.ndarray, m: np.ndarray, mode: WeightMode, iters: int = 8):
    """k-means on the codebook {level * m}: refit m by least squares, reassign, repeat."""
    for _ in range(iters):
        lv = levels_of(codes, mode)
        den = (lv * lv).sum(axis=-1)
        m = np.where(den > 0, (flat * lv).sum(axis=-1) / np.where(den > 0, den, 1.0), m)
        m = np.maximum(m, 0.0)
        codes = assign_codes(flat, m, mode)
    return codes, m


def kernel_quant(w: np.ndarray, mode: WeightMode, method: str = "paper") -> tuple[np.ndarray, np.ndarray]:
    """Per-kernel quantization of w (O, I, k, k): codes (O, I, k, k) int64 and real scalars (O, I)."""
    o, i, kh, kw = w.shape
    flat = w.reshape(o, i, kh * kw).astype(np.float64)
    codes, m = paper_kernel_quant(flat, mode)
    if method == "lloyd":
        codes, m = lloyd(flat, codes, m, mode)
    elif method != "paper":
        raise ValueError(f"unknown weight method {method!r} (paper | lloyd)")
    return codes.reshape(o, i, kh, kw), m


def single_tap_encode(v: np.ndarray, mode: WeightMode, smax: int) -> tuple[np.ndarray, np.ndarray]:
    """Best (code, integer scalar) for kernels with one non-zero weight v (already times 2^shift)."""
    cand = np.arange(1, mode.max + 1)
    lv = levels_of(cand, mode)
    mag = np.abs(v)[..., None]
    s = np.clip(round_half_away(mag / lv), 0, smax)
    err = np.abs(s * lv - mag)
    best = err.argmin(axis=-1)
    code = cand[best] * np.where(v < 0, -1, 1)
    scal = np.take_along_axis(s, best[..., None], axis=-1)[..., 0]
    return code.astype(np.int64), scal.astype(np.int64)


@dataclass
class FixedPoint:
    shift: int
    scalars: np.ndarray  # int16 (O, I)
    codes: np.ndarray  # int8 (O, I, k, k)
    bias: np.ndarray  # int32 (O,)
    clipped: list[str]  # what had to be clipped (reported)


def _floor_log2(limit: float, value: float, fallback: int) -> int:
    return int(np.floor(np.log2(limit / value))) if value > 0 else fallback


def refit_integer(
    w2: np.ndarray, codes: np.ndarray, scal: np.ndarray, mode: WeightMode, smax: int
) -> tuple[np.ndarray, np.ndarray]:
    """Re-choose codes for the integer scalar actually stored, trying scalar-1, scalar, scalar+1.

    Rounding a small scalar (m * 2^shift ~ 3) changes the kernel's gain by up to
    ~15 %; re-assigning the nearest codes against the stored integer removes most of
    that error.  w2: (O, I, K) real weights times 2^shift.  Binary and ternary keep
    the paper's sign / threshold rules (against the integer scalar).
    """
    if mode.decode == "binary":
        return codes, scal
    best_codes, best_s = codes, scal
    best_err = ((levels_of(codes, mode) * scal[..., None] - w2) ** 2).sum(axis=-1)
    for delta in (-1, 0, 1):
        s = np.clip(scal + delta, 1, smax)
        if mode.max == 1:  # ternary: the m/4 threshold of methods.md, against the stored scalar
            c = np.where(np.abs(w2) >= s[..., None] / 4.0, np.sign(w2), 0).astype(np.int64)
        else:
            c = assign_codes(w2, s.astype(np.float64), mode)
        err = ((levels_of(c, mode) * s[..., None] - w2) ** 2).sum(axis=-1)
        better = (err < best_err) & (scal > 0)
        best_codes = np.where(better[..., None], c, best_codes)
        best_s = np.where(better, s, best_s)
        best_err = np.where(better, err, best_err)
    return best_codes, best_s


def fixed_point(
    codes: np.ndarray,
    m: np.ndarray,
    bias: np.ndarray,
    mode: WeightMode,
    p: ChipProfile,
    single: np.ndarray,
    single_v: np.ndarray,
    w: np.ndarray | None = None,
) -> FixedPoint:
    """Per-layer shift and integer scalars/biases (per-kernel profiles).

    ``single`` marks kernels with exactly one non-zero weight (value ``single_v``,
    real): they get the (code, scalar) pair closest to that value, so copies through
    one-hot kernels and 1x1 convolutions keep the scalar's full precision.
    """
    bias_lim = (1 << (p.bias_bits - 1)) - 1
    smax = min((1 << (p.scalar_bits - 1)) - 1, p.weight_int_max // max(mode.max_level, 1))
    m_eff = np.where(single, np.abs(single_v) / max(mode.max_level, 1), m)  # single taps may use any level
    shift_w = _floor_log2(p.weight_int_max, mode.max_level * float(np.max(m_eff, initial=0.0)), p.shift_max)
    shift_b = _floor_log2(bias_lim, float(np.max(np.abs(bias), initial=0.0)), p.shift_max)
    shift = int(np.clip(min(shift_w, shift_b), p.shift_min, p.shift_max))
    clipped = []
    if min(shift_w, shift_b) < p.shift_min:
        clipped.append(f"weights/bias too large for shift {p.shift_min} (needs {min(shift_w, shift_b)})")
    scal = np.clip(round_half_away(m * 2.0**shift), 0, smax).astype(np.int64)
    codes = codes.copy()
    if w is not None:  # codes against the stored integer scalar (kernels are (O, I, k, k))
        flat_w = w.reshape(codes.shape[0], codes.shape[1], -1) * 2.0**shift
        c2, scal = refit_integer(flat_w, codes.reshape(flat_w.shape).astype(np.int64), scal, mode, smax)
        codes = c2.reshape(codes.shape)
    if single.any():
        sc, ss = single_tap_encode(single_v[single] * 2.0**shift, mode, smax)
        flat = codes.reshape(codes.shape[0], codes.shape[1], -1)
        nz = np.abs(flat).argmax(axis=-1) if mode.decode != "binary" else None
        oi = np.nonzero(single)
        if nz is not None:
            flat[oi] = 0
            flat[oi[0], oi[1], nz[oi]] = sc
        else:
            flat[oi] = sc[:, None]
        codes = flat.reshape(codes.shape)
        scal[oi] = ss
    b = round_half_away(bias * 2.0**shift)
    if np.abs(b).max(initial=0) > bias_lim:
        clipped.append("bias")
    b = np.clip(b, -bias_lim, bias_lim)
    return FixedPoint(shift, scal.astype(np.int16), codes.astype(np.int8), b.astype(np.int32), clipped)


def heq_step(w: np.ndarray, mode: WeightMode) -> float:
    """Histogram-equalization step size (methods.md section 2): thresholds at the n-quantiles."""
    flat = np.asarray(w, np.float64).ravel()
    if flat.size == 0 or not np.any(flat):
        return 1.0
    if mode.decode == "binary":
        return float(np.abs(flat).mean())
    n = mode.max - mode.min + 1
    j = np.arange(1, n)
    q = np.quantile(flat, j / n)
    c = j - n / 2.0
    s = float((c * q).sum() / (c * c).sum())
    return s if s > 0 else float(np.abs(flat).max() / max(mode.max, 1))


def layer_quant(w: np.ndarray, mode: WeightMode, method: str = "paper") -> tuple[np.ndarray, float]:
    """Per-layer linear symmetric quantization: (codes, step) with the HEQ step (or Lloyd-refined)."""
    step = heq_step(w, mode)
    flat = np.asarray(w, np.float64).reshape(1, -1)
    codes = assign_codes(flat, np.array([step]), mode)
    if method == "lloyd":
        codes, m = lloyd(flat, codes, np.array([step]), mode)
        step = float(m[0]) if m[0] > 0 else step
    return codes.reshape(w.shape), step


def weight_sqnr(w: np.ndarray, wq: np.ndarray) -> float:
    """10 log10(|w|^2 / |w - wq|^2) in dB (inf when exact)."""
    err = float(((w - wq) ** 2).sum())
    sig = float((w**2).sum())
    return float("inf") if err == 0 else 10.0 * np.log10(max(sig, 1e-30) / err)
