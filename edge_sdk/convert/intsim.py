"""A fast batched integer simulator of a Network (calibration-time SQNR, bit allocation, accuracy).

It computes exactly what the chip computes (``edge_sdk.arith`` rounding and
requantization), but for a whole batch at once: convolutions run as float64
GEMMs, which are exact for integer sums below 2^53 (the validator bounds the
accumulator by 2^31).  tests/unit/test_convert_intsim.py checks it bit for bit
against the reference backend.  Host layers run batched in float32, so their
outputs may differ from the runtime's per-frame float32 in the last bits.
"""

from __future__ import annotations

import numpy as np

from ..arith import convert_input, integer_weights, requantize
from ..network import Layer, Network
from .float_exec import conv2d


def _chip(net: Network, layer: Layer, xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> np.ndarray:
    p = net.profile
    if layer.op == "maxpool":
        x = xs[0]
        n, h, w, c = x.shape
        x = x[:, : h // 2 * 2, : w // 2 * 2]
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    if layer.op == "add":
        acc = xs[0].astype(np.int64) * layer.mults[0] + xs[1].astype(np.int64) * layer.mults[1]
    else:
        w = weights.get(layer.name)
        if w is None:
            w = integer_weights(layer.codes, layer.scalars, p.mode(layer.weight_bits)).astype(np.float64)
            weights[layer.name] = w
        acc = conv2d(
            xs[0].astype(np.float64),
            w,
            layer.bias.astype(np.float64),
            (layer.stride, layer.stride),
            layer.pad,
            layer.groups,
        )
        acc = np.rint(acc).astype(np.int64)
    return requantize(acc, layer.shift, p, layer.output)


def _host(layer: Layer, x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    if layer.op == "gap":
        return x.mean(axis=(1, 2), dtype=np.float64).astype(np.float32).reshape(n, 1, 1, -1)
    if layer.op == "dense":
        y = x.reshape(n, -1).astype(np.float32) @ layer.dense_w.T + layer.dense_b
        return y.astype(np.float32).reshape(n, 1, 1, -1)
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z, dtype=np.float32)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def simulate(net: Network, frames: np.ndarray, cache: dict | None = None) -> list[np.ndarray]:
    """Every layer's batched output for uint8 frames (N, H, W, C): codes, raw int32 or host float32."""
    cache = {} if cache is None else cache
    x = convert_input(frames, net.profile)
    outs: list[np.ndarray] = []
    for layer in net.layers:
        srcs = [x if s < 0 else outs[s] for s in layer.inputs]
        if layer.on_chip:
            outs.append(_chip(net, layer, srcs, cache))
        else:
            producer = net.layers[layer.inputs[0]]
            src = srcs[0].astype(np.float32) * np.float32(producer.out_scale) if producer.on_chip else srcs[0]
            outs.append(_host(layer, src))
    return outs


def outputs(net: Network, frames: np.ndarray, batch: int = 100) -> np.ndarray:
    """The network's float output (host layers applied, or the dequantized chip output), batched."""
    cache: dict = {}
    res = []
    for i in range(0, len(frames), batch):
        outs = simulate(net, frames[i : i + batch], cache)
        last = outs[-1]
        if net.layers[-1].on_chip:
            last = last.astype(np.float32) * np.float32(net.layers[-1].out_scale)
        res.append(last.reshape(len(last), -1))
    return np.concatenate(res)
