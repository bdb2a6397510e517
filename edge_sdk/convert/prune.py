"""Structured channel pruning (methods.md section 4, post-training form): drop whole output channels.

For every convolution whose output feeds only convolutions (directly, or
through depthwise convolutions that follow the channel), the ``fraction`` of
output channels with the smallest L1 filter norm is removed, together with the
matching depthwise channels and the consumers' input channels.  A removed
channel is not zero: its output is the constant act(bias); that constant's
contribution is folded into the consumers' biases (exact away from the zero
padded borders).  Pruning is meant to be followed by fine-tuning (QAT,
``edge_sdk.train``); post-training it costs a lot: the float ResNet-8 drops from
89.7 % to 40.7 % (300 test images) at ``prune=0.1``.  The report's SQNR shows it.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node, apply_act


def _chain(g: Graph, node: Node) -> tuple[list[Node], list[Node]] | None:
    """(depthwise convs that follow the channels, dense consumer convs) or None if not prunable."""
    depthwise: list[Node] = []
    tensor = node.output
    while True:
        if tensor == g.output:
            return None
        users = g.consumers(tensor)
        if not users or any(u.op != "conv" for u in users):
            return None
        dense = [u for u in users if u.attrs["groups"] == 1]
        dw = [u for u in users if u.attrs["groups"] > 1]
        if dw and (dense or len(dw) > 1 or dw[0].attrs["w"].shape[0] != dw[0].attrs["groups"]):
            return None
        if dense:
            return depthwise, dense
        depthwise.append(dw[0])
        tensor = dw[0].output


def _constant_out(node: Node, value: np.ndarray) -> np.ndarray:
    """Per-channel output of a conv whose input channels are constants (away from borders)."""
    w = node.attrs["w"]
    if node.attrs["groups"] > 1:
        y = w.sum(axis=(1, 2, 3)) * value + node.attrs["b"]
    else:
        y = np.einsum("oikl,i->o", w, value) + node.attrs["b"]
    return apply_act(y, node.act)


def prune_node(g: Graph, node: Node, fraction: float) -> int:
    """Prune one conv in place (attrs replaced, never mutated); returns channels removed."""
    chain = _chain(g, node)
    w = node.attrs["w"]
    n_out = w.shape[0]
    n_drop = int(np.floor(fraction * n_out))
    if chain is None or node.attrs["groups"] != 1 or n_drop < 1 or n_out - n_drop < 1:
        return 0
    depthwise, dense = chain
    norms = np.abs(w).reshape(n_out, -1).sum(axis=1)
    keep = np.sort(np.argsort(-norms, kind="stable")[: n_out - n_drop])
    drop = np.setdiff1d(np.arange(n_out), keep)
    const = apply_act(node.attrs["b"][drop], node.act)  # what a removed channel outputs
    node.attrs = dict(node.attrs, w=w[keep], b=node.attrs["b"][keep])
    _shrink(g, node.output, len(keep))
    for dw in depthwise:
        const = _constant_out(_subset(dw, drop), const)
        dw.attrs = dict(dw.attrs, w=dw.attrs["w"][keep], b=dw.attrs["b"][keep], groups=len(keep))
        _shrink(g, dw.output, len(keep))
    for user in dense:
        wu = user.attrs["w"]
        folded = np.einsum("oikl,i->o", wu[:, drop], const)
        user.attrs = dict(
            user.attrs, w=np.ascontiguousarray(wu[:, keep]), b=(user.attrs["b"] + folded).astype(np.float32)
        )
    return len(drop)


def _subset(dw: Node, channels: np.ndarray) -> Node:
    return Node(
        "conv",
        dw.inputs,
        dw.output,
        dict(dw.attrs, w=dw.attrs["w"][channels], b=dw.attrs["b"][channels], groups=len(channels)),
        dw.source,
        dw.name,
    )


def _shrink(g: Graph, tensor: int, channels: int) -> None:
    info = g.tensors[tensor]
    g.tensors[tensor] = type(info)(
        tuple(info.shape[:-1]) + (channels,), info.name, info.dtype, info.scale, info.zero_point
    )


def prune_graph(g: Graph, fraction: float) -> Graph:
    """A pruned copy of the graph (see the module docstring)."""
    g = g.copy()
    for node in list(g.nodes):
        if node.op == "conv":
            prune_node(g, node, fraction)
    return g
