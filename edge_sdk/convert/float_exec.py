"""A numpy float executor of the converter's graph (calibration, per-layer SQNR, verification).

Batched NHWC float32, TFLite semantics: SAME/VALID padding as explicit pads,
max-pool padding ignored, average-pool padding excluded from the count,
dense flattening in C order.  Checked against LiteRT on real models
(tests/data/test_convert_import.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Callable, Optional

import numpy as np

from ..errors import ConversionError
from .graph import Graph, Node, apply_act


def _windows(
    xp: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], out_hw: tuple[int, int]
) -> np.ndarray:
    """(N, Ho, Wo, kh*kw, C): every kernel tap's strided view, stacked."""
    ho, wo = out_hw
    taps = []
    for ky in range(k[0]):
        for kx in range(k[1]):
            y0, x0 = ky * d[0], kx * d[1]
            taps.append(xp[:, y0 : y0 + (ho - 1) * s[0] + 1 : s[0], x0 : x0 + (wo - 1) * s[1] + 1 : s[1], :])
    return np.stack(taps, axis=3)


def out_size(size: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    return (size + lo + hi - ((k - 1) * d + 1)) // s + 1


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: tuple[int, int],
    pad: tuple[int, int, int, int],
    groups: int,
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Grouped 2-D convolution: x (N, H, W, C), w (O, C/groups, kh, kw) -> (N, Ho, Wo, O), in x's dtype."""
    n, h, wd, c = x.shape
    o, ig, kh, kw = w.shape
    t, left, bot, r = pad
    ho = out_size(h, kh, stride[0], dilation[0], t, bot)
    wo = out_size(wd, kw, stride[1], dilation[1], left, r)
    xp = np.pad(x, ((0, 0), (t, bot), (left, r), (0, 0)))
    cols = _windows(xp, (kh, kw), stride, dilation, (ho, wo))  # (N, Ho, Wo, K, C)
    if groups == 1:
        mat = cols.reshape(n * ho * wo, kh * kw * c)
        wm = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)
        y = mat @ wm
    elif ig == 1:  # depthwise (with a channel multiplier)
        mult = o // c
        src = np.repeat(cols, mult, axis=-1) if mult > 1 else cols
        y = np.einsum("nhwkc,kc->nhwc", src, w[:, 0].reshape(o, kh * kw).T, optimize=True)
    else:
        go = o // groups
        parts = []
        for g in range(groups):
            mat = cols[..., g * ig : (g + 1) * ig].reshape(n * ho * wo, kh * kw * ig)
            parts.append(mat @ w[g * go : (g + 1) * go].transpose(2, 3, 1, 0).reshape(kh * kw * ig, go))
        y = np.concatenate(parts, axis=-1)
    return (y.reshape(n, ho, wo, o) + b).astype(x.dtype, copy=False)  # float64 in: exact integer sums


def _pool(x: np.ndarray, node: Node, kind: str) -> np.ndarray:
    k, s, pad = node.attrs["k"], node.attrs["stride"], node.attrs["pad"]
    n, h, wd, c = x.shape
    ho = out_size(h, k[0], s[0], 1, pad[0], pad[2])
    wo = out_size(wd, k[1], s[1], 1, pad[1], pad[3])
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pad[0], pad[2]), (pad[1], pad[3]), (0, 0)), constant_values=fill)
    cols = _windows(xp, k, s, (1, 1), (ho, wo))
    if kind == "max":
        return cols.max(axis=3)
    ones = np.pad(np.ones((1, h, wd, 1), np.float32), ((0, 0), (pad[0], pad[2]), (pad[1], pad[3]), (0, 0)))
    count = _windows(ones, k, s, (1, 1), (ho, wo)).sum(axis=3)
    return (cols.sum(axis=3) / count).astype(np.float32)


def _softmax(x: np.ndarray, beta: float) -> np.ndarray:
    z = beta * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _run_node(node: Node, xs: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    x = xs[0]
    if node.op == "conv":
        y = conv2d(x, a["w"], a["b"], a["stride"], a["pad"], a["groups"], a.get("dilation", (1, 1)))
    elif node.op == "add":
        y = xs[0] + xs[1]
    elif node.op == "affine":
        y = x * a["scale"] + a["shift"]
    elif node.op == "maxpool":
        y = _pool(x, node, "max")
    elif node.op == "avgpool":
        y = _pool(x, node, "avg")
    elif node.op == "gap":
        y = x.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None, :]
    elif node.op == "dense":
        y = x.reshape(x.shape[0], -1) @ a["w"].T + a["b"]
    elif node.op == "softmax":
        return _softmax(x, a.get("beta", 1.0))
    elif node.op == "pad":
        t, left, bot, r = a["pads"]
        y = np.pad(x, ((0, 0), (t, bot), (left, r), (0, 0)))
    elif node.op in ("act", "identity"):
        y = x
    elif node.op == "reshape":
        return x.reshape((x.shape[0],) + tuple(a["shape"]))
    else:
        raise ConversionError(f"float executor: unknown op {node.op!r}")
    return apply_act(y.astype(np.float32, copy=False), node.act)


def run_graph(
    graph: Graph,
    x: np.ndarray,
    keep: Optional[Iterable[int]] = None,
    hook: Optional[Callable[[Node, np.ndarray], None]] = None,
) -> dict[int, np.ndarray]:
    """Run the graph on a real-valued batch x (N, *input_shape).

    Returns the output tensor plus every tensor in ``keep`` (all tensors when
    ``keep`` is None).  ``hook(node, value)`` sees each node's output as it is made.
    """
    env = {graph.input: np.asarray(x, np.float32)}
    wanted = None if keep is None else set(keep) | {graph.output}
    last_use = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            last_use[t] = i
    for i, node in enumerate(graph.nodes):
        env[node.output] = _run_node(node, [env[t] for t in node.inputs]).reshape(
            (-1,) + tuple(graph.shape(node.output))
        )
        if hook is not None:
            hook(node, env[node.output])
        if wanted is not None:  # free what nobody needs any more
            for t in node.inputs:
                if last_use.get(t) == i and t not in wanted:
                    env.pop(t, None)
    return env if wanted is None else {t: v for t, v in env.items() if t in wanted}


def pixels_to_real(graph: Graph, pixels: np.ndarray) -> np.ndarray:
    """uint8 pixel frames -> the model's real input values (the model's own input normalization)."""
    return pixels.astype(np.float32) * np.float32(graph.input_scale) + np.float32(graph.input_offset)


def run_pixels(graph: Graph, pixels: np.ndarray, batch: int = 64) -> np.ndarray:
    """The graph output for uint8 frames, in batches (float32)."""
    outs = [
        run_graph(graph, pixels_to_real(graph, pixels[i : i + batch]), keep=())[graph.output]
        for i in range(0, len(pixels), batch)
    ]
    return np.concatenate(outs) if outs else np.zeros((0,) + graph.shape(graph.output), np.float32)
