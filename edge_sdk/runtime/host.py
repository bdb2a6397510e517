"""Host-side ops (gap, dense, softmax): float32 numpy on the CPU after the chip part.

Both backends share this code, so host results are identical whichever backend
ran the chip part.
"""

from __future__ import annotations

import numpy as np

from ..network import Layer


def dequantize(values: np.ndarray, layer: Layer) -> np.ndarray:
    """Chip codes or raw accumulators -> float32 real values (times ``out_scale``)."""
    return (values.astype(np.float32) * np.float32(layer.out_scale)).astype(np.float32)


def run_host_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x: float32 (H, W, C) -> float32 layer output."""
    if layer.op == "gap":
        return x.mean(axis=(0, 1), dtype=np.float64).astype(np.float32).reshape(1, 1, -1)
    if layer.op == "dense":
        flat = x.reshape(-1).astype(np.float32)
        y = layer.dense_w @ flat + layer.dense_b
        return y.astype(np.float32).reshape(1, 1, -1)
    if layer.op == "softmax":
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z, dtype=np.float32)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    raise ValueError(f"not a host op: {layer.op!r}")
