"""Pooling moments and the NIP / RNIP aggregation stages (methods.md section 6, docs/retrieval.md).

A *moment* reduces an axis: ``mean``, ``max``, ``sqrt`` (square-root / L2 pooling:
the square root of the mean of squares) or ``gem:p`` (generalized mean with power
p).  RNIP applies one moment per stage: within a crop, over crops, over scales,
over rotations.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def check_moment(moment: str) -> str:
    if moment in ("mean", "max", "sqrt"):
        return moment
    if moment.startswith("gem:"):
        try:
            if float(moment[4:]) > 0:
                return moment
        except ValueError:
            pass
    raise InputError(f"pooling moment must be mean, max, sqrt or gem:P (P > 0), found {moment!r}")


def pool(x: np.ndarray, moment: str, axis) -> np.ndarray:
    """Reduce ``x`` (float, non-negative features) over ``axis`` with ``moment``."""
    x = np.asarray(x, dtype=np.float64)
    if moment == "mean":
        return x.mean(axis=axis)
    if moment == "max":
        return x.max(axis=axis)
    if moment == "sqrt":
        return np.sqrt(np.mean(x * x, axis=axis))
    p = float(check_moment(moment)[4:])
    return np.mean(np.maximum(x, 0.0) ** p, axis=axis) ** (1.0 / p)


def l2_normalize(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(n, eps)).astype(np.float32)


def window_pool_max(fmap: np.ndarray, k: int, moment: str = "sqrt") -> np.ndarray:
    """NIP's translation stage: ``moment`` over every k x k window of (h, w, C), then max over positions."""
    h, w, _ = fmap.shape
    k = min(k, h, w)
    win = np.lib.stride_tricks.sliding_window_view(np.asarray(fmap, np.float64), (k, k), axis=(0, 1))
    pooled = pool(win, moment, axis=(-2, -1))  # (h-k+1, w-k+1, C)
    return pooled.reshape(-1, pooled.shape[-1]).max(axis=0)


def nip_from_maps(
    maps_per_rotation: list[np.ndarray],
    windows=(3, 5, 7),
    *,
    window_moment: str = "sqrt",
    scale_moment: str = "mean",
    rotation_moment: str = "max",
) -> np.ndarray:
    """Nested invariance pooling of one feature map per rotation -> L2-normalized descriptor."""
    per_rot = []
    for fmap in maps_per_rotation:
        per_window = np.stack([window_pool_max(fmap, k, window_moment) for k in windows])
        per_rot.append(pool(per_window, scale_moment, axis=0))
    return l2_normalize(pool(np.stack(per_rot), rotation_moment, axis=0))
