"""Canonicalization passes on the float graph (each exact in real arithmetic).

Order (``canonicalize``): drop QUANTIZE/DEQUANTIZE identities, fold a model-input
affine into the input normalization, fuse standalone activations into their
producer, fold batch-norm affines into the preceding convolution
(W' = W*gamma/sigma, b' = (b - mu)*gamma/sigma + beta, as one per-channel
scale and shift), fuse zero PAD into the following convolutions, turn global
average pools / H-W means into ``gap`` and convolutions after the host boundary
into ``dense``.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node

_COMPOSE = {
    ("relu", "relu"): "relu",
    ("relu", "relu6"): "relu6",
    ("relu6", "relu"): "relu6",
    ("relu6", "relu6"): "relu6",
}
_ACT_HOSTS = ("conv", "add", "affine", "dense", "maxpool", "avgpool")


def drop_identities(g: Graph) -> None:
    for node in [n for n in g.nodes if n.op == "identity"]:
        g.remove(node)
        g.replace_input(node.output, node.inputs[0])


def fold_input_affine(g: Graph) -> None:
    """affine(input) -> part of the input normalization (exact, also at zero-padded borders)."""
    users = g.consumers(g.input)
    if len(users) != 1 or users[0].op != "affine" or users[0].act != "none":
        return
    node = users[0]
    scale, shift = node.attrs["scale"], node.attrs["shift"]
    g.input_scale = np.asarray(g.input_scale, np.float32) * scale
    g.input_offset = np.asarray(g.input_offset, np.float32) * scale + shift
    g.remove(node)
    g.replace_input(node.output, g.input)


def fuse_activations(g: Graph) -> None:
    for node in [n for n in g.nodes if n.op == "act"]:
        src = g.producer(node.inputs[0])
        if src is None or src.op not in _ACT_HOSTS or len(g.consumers(src.output)) != 1:
            continue
        act = node.act if src.act == "none" else _COMPOSE.get((src.act, node.act))
        if act is None:
            continue
        src.attrs["act"] = act
        src.source += "+" + node.source
        g.remove(node)
        g.replace_input(node.output, src.output)
        g.tensors[src.output] = g.tensors[node.output]


def fold_affines(g: Graph) -> None:
    """conv (no activation) -> per-channel affine  ==>  one conv (batch-norm folding)."""
    for node in [n for n in g.nodes if n.op == "affine"]:
        src = g.producer(node.inputs[0])
        if src is None or src.op != "conv" or src.act != "none" or len(g.consumers(src.output)) != 1:
            continue
        scale, shift = node.attrs["scale"], node.attrs["shift"]
        src.attrs["w"] = (src.attrs["w"] * scale[:, None, None, None]).astype(np.float32)
        src.attrs["b"] = (src.attrs["b"] * scale + shift).astype(np.float32)
        src.attrs["act"] = node.act
        src.source += "+" + node.source
        g.remove(node)
        g.replace_input(node.output, src.output)


def fuse_pads(g: Graph) -> None:
    for node in [n for n in g.nodes if n.op == "pad"]:
        users = g.consumers(node.output)
        if not users or any(u.op != "conv" for u in users):
            continue
        for u in users:
            u.attrs["pad"] = tuple(int(a + b) for a, b in zip(u.attrs["pad"], node.attrs["pads"]))
            u.inputs = [node.inputs[0]]
            u.source = node.source + "+" + u.source
        g.remove(node)


def global_pools(g: Graph) -> None:
    for node in g.nodes:
        if node.op != "avgpool" or node.act != "none":
            continue
        h, w = g.shape(node.inputs[0])[:2]
        if tuple(node.attrs["k"]) == (h, w) and not any(node.attrs["pad"]):
            node.op, node.attrs = "gap", {}


def _after_host_boundary(g: Graph, tensor: int) -> bool:
    node = g.producer(tensor)
    while node is not None and node.op == "reshape":
        node = g.producer(node.inputs[0])
    return node is not None and node.op in ("gap", "dense")


def convs_to_dense(g: Graph) -> None:
    """A convolution whose kernel covers its whole (unpadded) input after a gap/dense is a dense layer."""
    for node in g.nodes:
        if node.op != "conv" or node.attrs["groups"] != 1 or any(node.attrs["pad"]):
            continue
        shape = g.shape(node.inputs[0])
        h, w = (shape[0], shape[1]) if len(shape) == 3 else (1, 1)
        o, c, kh, kw = node.attrs["w"].shape
        if (kh, kw) != (h, w) or not _after_host_boundary(g, node.inputs[0]):
            continue
        dense_w = node.attrs["w"].transpose(0, 2, 3, 1).reshape(o, kh * kw * c)  # HWC flatten order
        node.op = "dense"
        node.attrs = dict(w=np.ascontiguousarray(dense_w, np.float32), b=node.attrs["b"], act=node.act)


def drop_noop_reshapes(g: Graph) -> None:
    """Reshapes that keep the shape (after dropping the batch) do nothing."""
    for node in [n for n in g.nodes if n.op == "reshape"]:
        if tuple(g.shape(node.inputs[0])) == tuple(g.shape(node.output)):
            g.remove(node)
            g.replace_input(node.output, node.inputs[0])


def canonicalize(g: Graph) -> Graph:
    """All passes, in order, on a copy of ``g``."""
    g = g.copy()
    for p in (
        drop_identities,
        fold_input_affine,
        fuse_activations,
        fold_affines,
        fuse_activations,
        fuse_pads,
        global_pools,
        convs_to_dense,
        drop_noop_reshapes,
    ):
        p(g)
    return g


def node_by_output(g: Graph) -> dict[int, Node]:
    return {n.output: n for n in g.nodes}
