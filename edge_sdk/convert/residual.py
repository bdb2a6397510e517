"""Residual folding: absorb ``relu(conv_Z(Y) + S)`` into convolutions, with no add layer.

Chip activations are unsigned, but a ResNet's residual branch ends in a conv
without ReLU.  On a per-kernel-scalar chip the add can be folded away exactly:
the conv that makes Y (``conv_Y``, reading X) also emits S as extra output
channels (S = X copied through a one-hot tap, or S = conv_S(X) embedded at the
matching tap, split into relu(S) and relu(-S) when S can be negative), and
conv_Z reads them through one-hot +1/-1 kernels at its centre tap:

    relu(conv_Z(Y) + S) = relu(conv_Z'([Y, S+, S-]))

Each per-kernel scalar lets the copied channels keep their own scale, so the
copy of X is exact.  The fold applies when the geometry lines up (conv_Z stride
1 with a centre tap; conv_S sampling a subset of conv_Y's taps at the same
stride) and Y and S feed nothing else; other adds go through the chip's add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .graph import Graph, Node


@dataclass
class Fold:
    add: Node
    conv_z: Node  # the branch conv (no activation) feeding the add
    conv_y: Node  # produces conv_z's input; gains the S channels
    s_tensor: int  # the shortcut operand
    conv_s: Optional[Node]  # None: S is conv_y's input, copied
    tap: tuple[int, int]  # conv_y tap at which S (or conv_s's kernel origin) sits


def centre_tap(node: Node) -> Optional[tuple[int, int]]:
    """The tap of a stride-1 conv that reads the same pixel it writes, or None."""
    a = node.attrs
    k = a["w"].shape[2]
    if tuple(a["stride"]) != (1, 1) or a["w"].shape[3] != k:
        return None
    t, left, b, r = a["pad"]
    if (t, left) != (b, r) or not (0 <= t < k and 0 <= left < k) or t + b != k - 1 or left + r != k - 1:
        return None
    return (t, left)


def _is_dense_conv(node: Optional[Node]) -> bool:
    return node is not None and node.op == "conv" and node.attrs["groups"] == 1


def _embed_offset(g: Graph, conv_y: Node, conv_s: Node) -> Optional[tuple[int, int]]:
    """Where conv_s's kernel sits inside conv_y's window, if it samples the same grid."""
    ay, as_ = conv_y.attrs, conv_s.attrs
    if (
        tuple(ay["stride"]) != tuple(as_["stride"])
        or g.shape(conv_y.output)[:2] != g.shape(conv_s.output)[:2]
    ):
        return None
    ky, kx = ay["w"].shape[2:]
    ks_y, ks_x = as_["w"].shape[2:]
    dy, dx = ay["pad"][0] - as_["pad"][0], ay["pad"][1] - as_["pad"][1]
    if dy < 0 or dx < 0 or dy + ks_y > ky or dx + ks_x > kx:
        return None
    return (dy, dx)


def _try_fold(g: Graph, add: Node, z: int, s: int, chip: set[str]) -> Optional[Fold]:
    conv_z = g.producer(z)
    if not _is_dense_conv(conv_z) or conv_z.name not in chip or conv_z.act != "none":
        return None
    if len(g.consumers(z)) != 1 or centre_tap(conv_z) is None:
        return None
    y = conv_z.inputs[0]
    conv_y = g.producer(y)
    if not _is_dense_conv(conv_y) or conv_y.name not in chip or len(g.consumers(y)) != 1:
        return None
    x = conv_y.inputs[0]
    if x == g.input:
        return None  # the input's offset would make the copy inexact
    if s == x:
        tap = centre_tap(conv_y)
        return None if tap is None else Fold(add, conv_z, conv_y, s, None, tap)
    conv_s = g.producer(s)
    if (
        not _is_dense_conv(conv_s)
        or conv_s.name not in chip
        or conv_s.inputs[0] != x
        or len(g.consumers(s)) != 1
        or conv_s.act not in ("none", "relu")
    ):
        return None
    off = _embed_offset(g, conv_y, conv_s)
    return None if off is None else Fold(add, conv_z, conv_y, s, conv_s, off)


def find_folds(g: Graph, chip_nodes: list[Node]) -> dict[str, Fold]:
    """Folds keyed by add-node name; each conv takes part in at most one fold."""
    chip = {n.name for n in chip_nodes}
    folds: dict[str, Fold] = {}
    used: set[str] = set()
    for node in chip_nodes:
        if node.op != "add" or node.act not in ("relu", "relu6"):
            continue
        for z, s in ((node.inputs[1], node.inputs[0]), (node.inputs[0], node.inputs[1])):
            fold = _try_fold(g, node, z, s, chip)
            if fold is None:
                continue
            names = {fold.conv_z.name, fold.conv_y.name} | ({fold.conv_s.name} if fold.conv_s else set())
            if names & used:
                continue
            used |= names
            folds[node.name] = fold
            break
    return folds


def one_hot(channels: int, k: int, tap: tuple[int, int], value: float = 1.0) -> np.ndarray:
    """(C, C, k, k) kernels copying channel c to channel c through one tap."""
    w = np.zeros((channels, channels, k, k), np.float32)
    w[np.arange(channels), np.arange(channels), tap[0], tap[1]] = value
    return w


def embed(w: np.ndarray, k: int, offset: tuple[int, int]) -> np.ndarray:
    """Place a (O, I, ks, ks) kernel inside a k x k window at ``offset``."""
    o, i, kh, kw = w.shape
    out = np.zeros((o, i, k, k), np.float32)
    out[:, :, offset[0] : offset[0] + kh, offset[1] : offset[1] + kw] = w
    return out
