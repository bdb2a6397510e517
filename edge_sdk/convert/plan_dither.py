"""Planner pieces that make chip groups without the planner's state.

* ``dither_layer``: the first chip layer for dithered input frames: the host repeats each pixel
  over a factor x factor block with offsets (``runtime/inputprep``); this layer averages each
  block back, in factor^2 pieces, so the chip sees more than 5 bits of the input.
* ``split_pieces``: one ReLU group as a lower and an upper piece (two code maps, finer steps).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from .graph import Graph
from .plan_types import Group, PlannedLayer, Ref, Term


def dither_layer(g: Graph, factor: int) -> tuple[int, PlannedLayer, str]:
    """The dithered frame tensor (added to ``g``), the averaging layer and the report's note."""
    if np.any(np.asarray(g.input_offset)) or any(n.op != "conv" for n in g.consumers(g.input)):
        raise UnsupportedOpError(
            "-", "input", "input dithering needs a zero input offset and convolutions reading the input"
        )
    h, w, c = g.shape(g.input)
    frame = g.new_tensor((factor * h, factor * w, c), "dithered input frame")
    avg = np.zeros((c, c, 3, 3), np.float32)
    avg[np.arange(c), np.arange(c), :factor, :factor] = 1.0 / factor**2
    cap = float(np.max(np.asarray(g.input_scale)) * 255.0)
    n = factor * factor
    groups = [
        Group(
            f"t{g.input}+~{k}",
            g.input,
            1,
            c,
            "relu",
            Ref([(1.0, g.input, 0)], "relu"),
            [Term(frame, avg)],
            np.zeros(c, np.float32),
            cap,
            base=f"t{g.input}+",
            piece=(k / n, (k + 1) / n),
            target_from_ref=True,
        )
        for k in range(n)
    ]
    layer = PlannedLayer(
        "dither0",
        "conv",
        [-1],
        (h, w, c),
        groups,
        kernel=3,
        stride=factor,
        pad=(0, 0, 1, 1),
        nodes=["input dither"],
    )
    layer.place_groups()
    layer.out_shape = (h, w, layer.channels)
    note = (
        f"input dither x{factor}: the host repeats each pixel over a {factor}x{factor} block with "
        f"offsets; dither0 averages it back into {n} pieces"
    )
    return frame, layer, note


def split_pieces(grp: Group, n: int, split: float) -> list[Group]:
    """``n`` pieces of a ReLU group (edges 0, split, 1 for two; even otherwise); others stay whole."""
    if n < 2 or grp.act != "relu" or grp.copy_of is not None or grp.uniform:
        return [grp]
    edges = [0.0, split, 1.0] if n == 2 else [k / n for k in range(n + 1)]
    return [
        Group(
            f"{grp.key}~{k}",
            grp.tensor,
            grp.sign,
            grp.channels,
            "relu",
            grp.ref,
            list(grp.terms),
            grp.bias,
            grp.cap,
            base=grp.key,
            piece=piece,
        )
        for k, piece in enumerate(zip(edges[:-1], edges[1:]))
    ]
