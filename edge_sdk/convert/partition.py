"""Chip/host partition: which op runs where, and why.

The chip runs what its profile supports (conv 1x1/3x3, stride 1/2, depthwise or
grouped per the profile, 2x2/2 max-pool, add) as a prefix of the network; the
host runs global average pooling (``gap``), fully connected layers (``dense``)
and softmax after it, plus reshapes, which move no data.  An op that neither can
run, or a chip op after the host part has begun, raises
:class:`~edge_sdk.errors.UnsupportedOpError` naming the op and the layer: a wrong
split is never made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..chips import ChipProfile
from ..errors import UnsupportedOpError
from .graph import Graph, Node

HOST_OPS = ("gap", "dense", "softmax", "reshape")
_HOST_WHY = {
    "gap": "global average pool: the chip has no average pooling",
    "dense": "fully connected: the chip runs convolutions only",
    "softmax": "softmax: the chip has no exponentials",
    "reshape": "reshape: moves no data (C-order flatten on the host)",
}


@dataclass
class Placement:
    node: Node
    target: str  # "chip" | "host"
    reason: str


def chip_support(g: Graph, node: Node, profile: ChipProfile) -> Optional[str]:
    """None if the chip can run ``node``, else why not."""
    if node.op == "conv":
        return _conv_support(g, node, profile)
    if node.op == "maxpool":
        if "maxpool" not in profile.ops:
            return f"profile {profile.id} has no max-pool"
        a = node.attrs
        if tuple(a["k"]) != (2, 2) or tuple(a["stride"]) != (2, 2) or any(a["pad"]):
            return f"max-pool {a['k']}/{a['stride']} pad {a['pad']}: the chip pools 2x2/2 without padding"
        return None if node.act in ("none", "relu") else f"max-pool with fused {node.act}"
    if node.op == "add":
        return None if "add" in profile.ops else f"profile {profile.id} has no add"
    return {
        "avgpool": "local average pooling (only a global average pool can run on the host)",
        "affine": "a per-channel scale/shift that could not be folded into a convolution",
        "pad": "padding that could not be fused into a convolution",
        "act": f"standalone {node.act} activation that could not be fused",
    }.get(node.op, f"op {node.op}")


def _conv_support(g: Graph, node: Node, profile: ChipProfile) -> Optional[str]:
    a = node.attrs
    o, ig, kh, kw = a["w"].shape
    h, w, c = g.shape(node.inputs[0])
    sh, sw = a["stride"]
    if kh != kw or kh not in profile.kernels:
        return f"kernel {kh}x{kw}: the chip runs {'/'.join(f'{k}x{k}' for k in profile.kernels)} kernels"
    if sh != sw or sh not in profile.strides:
        return f"stride {sh}x{sw}: the chip supports strides {profile.strides}"
    if tuple(a.get("dilation", (1, 1))) != (1, 1):
        return f"dilation {a['dilation']}: the chip has no dilated convolution"
    limit = min(profile.max_pad, kh - 1)
    if any(p > limit for p in a["pad"]):
        return f"padding {a['pad']}: the chip pads at most {limit} per side for a {kh}x{kh} kernel"
    g_ = a["groups"]
    if g_ > 1 and not (profile.groups == "any" or (profile.groups == "depthwise" and g_ == c == o)):
        return f"groups={g_} ({c}->{o} channels): profile {profile.id} supports {profile.groups} convolution"
    if node.act not in ("none", "relu", "relu6"):
        return f"fused activation {node.act}: the chip's requantizer is a (capped) ReLU"
    if max(h, w) > profile.max_feature_size:
        return f"input {h}x{w} exceeds the chip's feature size {profile.max_feature_size}"
    if not profile.channels_min <= o <= profile.channels_max:
        return f"{o} output channels outside {profile.channels_min}..{profile.channels_max}"
    return None


def _host_ok(node: Node) -> Optional[str]:
    if node.op not in HOST_OPS:
        return None
    if node.op == "dense" and node.act != "none":
        return None
    return _HOST_WHY[node.op]


def partition(g: Graph, profile: ChipProfile) -> list[Placement]:
    """Place every node; the chip part is a prefix, the host part the rest (or UnsupportedOpError)."""
    placements: list[Placement] = []
    host_since: Optional[Node] = None
    for node in g.nodes:
        why_not = chip_support(g, node, profile)
        host_why = _host_ok(node)
        if host_since is None and why_not is None:
            placements.append(Placement(node, "chip", f"{_describe(g, node)} is supported by {profile.id}"))
            continue
        if host_why is not None:
            if not placements:
                raise UnsupportedOpError(
                    node.source,
                    node.name,
                    f"the first op must run on the chip; the host only finishes a network ({host_why})",
                )
            host_since = host_since or node
            placements.append(Placement(node, "host", host_why))
            continue
        if host_since is not None and why_not is None:
            raise UnsupportedOpError(
                node.source,
                node.name,
                f"a chip op after the host part began at "
                f"{host_since.name} ({host_since.op}); chip layers must form a prefix",
            )
        raise UnsupportedOpError(
            node.source,
            node.name,
            f"{why_not}; and the host only runs {', '.join(HOST_OPS)} after the chip part",
        )
    if not any(p.target == "chip" for p in placements):
        raise UnsupportedOpError("-", g.name, "nothing in this model can run on the chip")
    return placements


def _describe(g: Graph, node: Node) -> str:
    if node.op == "conv":
        o, _, k, _ = node.attrs["w"].shape
        kind = "depthwise " if node.attrs["groups"] > 1 and node.attrs["groups"] == o else ""
        return f"{kind}conv {k}x{k}/{node.attrs['stride'][0]}"
    return node.op
