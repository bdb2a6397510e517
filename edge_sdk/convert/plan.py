"""Plan the chip part: float-graph nodes -> chip layers made of channel groups (plan_types).

Rules (each keeps the float result exact before quantization):

* conv with (capped) ReLU: one group, relu(T), cap 6 for ReLU6.
* conv without ReLU: "raw" output when only the host reads it (the last chip
  layer); otherwise its positive and negative parts, as two groups of one layer
  when convolutions read it, or as two single-group layers when adds read it.
* add with ReLU: folded into convolutions when the geometry allows
  (``residual.py``, per-kernel-scalar chips); otherwise chip adds: positive
  parts summed first, then negative parts subtracted one at a time, each step
  clamped at 0, which is exact because relu(relu(x) - n) = relu(x - n) for n >= 0.
* max-pool: pools the codes of a single-group layer (scale unchanged).
Anything else raises UnsupportedOpError naming the node.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..chips import ChipProfile
from ..errors import UnsupportedOpError
from .graph import Graph, Node, nonnegative
from .partition import Placement
from .plan_dither import dither_layer, split_pieces
from .plan_types import Group, HostLayer, Plan, PlannedLayer, Ref, Term
from .residual import Fold, centre_tap, embed, find_folds, one_hot


def _relu_group(
    tensor: int,
    sign: int,
    channels: int,
    terms: list[Term],
    bias: np.ndarray,
    act: str,
    relu6_cap: Optional[float],
    suffix: str = "",
) -> Group:
    cap = relu6_cap if act == "relu6" else None
    key = f"t{tensor}{'+' if sign > 0 else '-'}{suffix}"
    return Group(key, tensor, sign, channels, "relu", Ref([(1.0, tensor, sign)], "relu"), terms, bias, cap)


class Planner:
    def __init__(
        self,
        g: Graph,
        placements: list[Placement],
        profile: ChipProfile,
        *,
        residual: str = "auto",
        relu6_cap: Optional[float] = 6.0,
        act_pieces: int = 1,
        piece_split: float = 0.5,
        input_dither: int = 1,
    ) -> None:
        self.g = g
        self.profile = profile
        self.chip = [p.node for p in placements if p.target == "chip"]
        self.host = [p.node for p in placements if p.target == "host"]
        self.relu6_cap = relu6_cap
        allow_fold = residual == "fold" or (residual == "auto" and profile.weight_scale == "per_kernel")
        self.folds = find_folds(g, self.chip) if allow_fold else {}
        self.by_conv_y = {f.conv_y.name: f for f in self.folds.values()}
        self.by_conv_z = {f.conv_z.name: f for f in self.folds.values()}
        self.absorbed = {f.add.name for f in self.folds.values()} | {
            f.conv_s.name for f in self.folds.values() if f.conv_s is not None
        }
        self.layers: list[PlannedLayer] = []
        c = g.shape(g.input)[-1]
        self.where: dict[int, list[tuple[int, Group]]] = {
            g.input: [(-1, Group("input", g.input, 1, c, "relu", Ref([(1.0, g.input, 0)], "none")))]
        }
        self.chip_output = self._chip_output()
        self.notes: list[str] = []
        self.act_pieces, self.piece_split = act_pieces, piece_split
        self.no_pieces = self._no_pieces()
        if input_dither > 1:
            self._dither_layer(input_dither)

    # ------------------------------------------------------------------ helpers
    def _chip_output(self) -> int:
        chip_tensors = {n.output for n in self.chip} | {self.g.input}
        read = {t for n in self.host for t in n.inputs if t in chip_tensors}
        if len(read) > 1:
            raise UnsupportedOpError(
                self.host[0].source, self.host[0].name, "the host part reads more than one chip tensor"
            )
        return read.pop() if read else self.g.output

    def _dither_layer(self, factor: int) -> None:
        """First chip layer for dithered input frames (``plan_dither``)."""
        frame, layer, note = dither_layer(self.g, factor)
        c = self.g.shape(self.g.input)[-1]
        self.where = {frame: [(-1, Group("input", frame, 1, c, "relu", Ref([(1.0, frame, 0)], "none")))]}
        self.layers.append(layer)
        self.where[self.g.input] = [(0, grp) for grp in layer.groups]
        self.notes.append(note)

    def _no_pieces(self) -> set[int]:
        """Tensors that must stay one group: read by chip adds, depthwise convs or the host."""
        out = {self.chip_output}
        for node in self.chip:
            grouped = node.op == "conv" and node.attrs["groups"] > 1
            if (node.op == "add" and node.name not in self.absorbed) or grouped:
                out |= set(node.inputs)
        return out

    def _pieces(self, grp: Group) -> list[Group]:
        """Split a ReLU group into pieces (two code maps, finer steps) where the tensor allows it."""
        if grp.tensor in self.no_pieces:
            return [grp]
        return split_pieces(grp, self.act_pieces, self.piece_split)

    def parts(self, tensor: int, layer: Optional[int] = None) -> list[tuple[int, Group]]:
        """Where the parts of ``tensor`` live (in ``layer`` only, if given)."""
        found = [(i, grp) for i, grp in self.where.get(tensor, []) if layer is None or i == layer]
        return found

    def source_layer(self, node: Node, tensor: int) -> int:
        """The first layer holding every part (sign) of ``tensor``: what a convolution reads."""
        entries = self.parts(tensor)
        if not entries:
            raise UnsupportedOpError(node.source, node.name, f"its input tensor {tensor} is not on the chip")
        signs = {grp.sign for _, grp in entries}
        for i in dict.fromkeys(i for i, _ in entries):
            if {grp.sign for j, grp in entries if j == i} == signs:
                return i
        raise UnsupportedOpError(
            node.source,
            node.name,
            "its input's positive and negative parts live in different layers; a convolution reads one layer",
        )

    def add_layer(self, layer: PlannedLayer) -> int:
        if layer.op == "conv" and layer.conv_groups == 1:  # a depthwise layer keeps C outputs
            layer.groups = [p for g in layer.groups for p in self._pieces(g)]
        layer.place_groups()
        if layer.groups:  # a layer's channels are its groups' (copies and parts included)
            layer.out_shape = (*layer.out_shape[:2], layer.channels)
        self.layers.append(layer)
        index = len(self.layers) - 1
        for grp in layer.groups:
            if grp.tensor is not None:
                self.where.setdefault(grp.tensor, []).append((index, grp))
        return index

    def _name(self, op: str) -> str:
        return f"{op}{len(self.layers)}"

    def _signed_use(self, node: Node) -> str:
        """How a conv output without ReLU is carried: raw | split | layers."""
        t = node.output
        users = [u for u in self.g.consumers(t) if u in self.chip]
        if t == self.chip_output and not users:
            return "raw"
        if users and all(u.op == "conv" and u.attrs["groups"] == 1 for u in users) and t != self.chip_output:
            return "split"
        if (
            users
            and all(u.op == "add" and u.name not in self.absorbed for u in users)
            and t != self.chip_output
        ):
            return "layers"
        raise UnsupportedOpError(
            node.source,
            node.name,
            "its output has no ReLU and is read by "
            f"{sorted({u.op for u in self.g.consumers(t)})}; signed feature maps can feed "
            "convolutions or adds on the chip, or the host as the last chip layer",
        )

    # ------------------------------------------------------------------ conv
    def _geometry(self, node: Node) -> dict:
        a = node.attrs
        o, _, k, _ = a["w"].shape
        c = self.g.shape(node.inputs[0])[-1]
        dw = a["groups"] > 1 and a["groups"] == c == o
        return dict(
            kernel=k, stride=a["stride"][0], pad=tuple(a["pad"]), depthwise=dw, conv_groups=a["groups"]
        )

    def _main_groups(self, node: Node) -> list[Group]:
        a = node.attrs
        o = a["w"].shape[0]
        fold = self.by_conv_z.get(node.name)
        if fold is not None:
            return [self._fold_output(node, fold)]
        term = [Term(node.inputs[0], a["w"])]
        if node.act in ("relu", "relu6"):
            return [_relu_group(node.output, 1, o, term, a["b"], node.act, self.relu6_cap)]
        use = self._signed_use(node)
        if use == "raw":
            return [
                Group(
                    f"t{node.output}r",
                    node.output,
                    1,
                    o,
                    "none",
                    Ref([(1.0, node.output, 0)], "none"),
                    term,
                    a["b"],
                )
            ]
        return [_relu_group(node.output, s, o, term, a["b"], "relu", None) for s in (1, -1)]

    def _fold_output(self, node: Node, fold: Fold) -> Group:
        """conv_Z's group: relu(conv_Z(Y) + S) = the add's output tensor."""
        a = node.attrs
        o, _, k, _ = a["w"].shape
        terms = [
            Term(node.inputs[0], a["w"]),
            Term(fold.s_tensor, one_hot(o, k, centre_tap(node)), exact=True),
        ]
        grp = _relu_group(fold.add.output, 1, o, terms, a["b"], fold.add.act, self.relu6_cap)
        self.notes.append(
            f"{fold.add.name}: add folded into {node.name} (shortcut channels carried by {fold.conv_y.name})"
        )
        return grp

    def _shortcut_groups(self, node: Node, fold: Fold, index: int) -> list[Group]:
        """Extra groups of conv_Y carrying the shortcut S for the fold."""
        k = node.attrs["w"].shape[2]
        s = fold.s_tensor
        c = self.g.shape(s)[-1]
        sfx = f"@{index}"
        if fold.conv_s is None:  # copy X's parts at the tap, with X's own scale
            groups = []
            for _, part in self.parts(s, self.source_layer(node, s)):
                grp = Group(
                    f"{part.key}{sfx}",
                    s,
                    part.sign,
                    c,
                    "relu",
                    part.ref,
                    [Term(s, one_hot(c, k, fold.tap), exact=True, part=part.key)],
                    np.zeros(c, np.float32),
                    copy_of=part.key,
                    base=f"{part.base}{sfx}" if part.base else None,
                    piece=part.piece,
                )
                groups.append(grp)
            return groups
        a = fold.conv_s.attrs
        term = [Term(fold.conv_s.inputs[0], embed(a["w"], k, fold.tap))]
        signs = (1,) if fold.conv_s.act == "relu" or nonnegative(self.g, s, False) else (1, -1)
        return [_relu_group(s, sg, c, list(term), a["b"], "relu", None, sfx) for sg in signs]

    def conv(self, node: Node) -> None:
        src = self.source_layer(node, node.inputs[0])
        geo = self._geometry(node)
        if geo["conv_groups"] > 1:
            parts = self.parts(node.inputs[0], src)
            if len(parts) != 1 or parts[0][1].sign < 0 or (src >= 0 and len(self.layers[src].groups) != 1):
                raise UnsupportedOpError(
                    node.source,
                    node.name,
                    "a depthwise/grouped convolution needs a non-negative input alone in its layer",
                )
        groups = self._main_groups(node)
        out_shape = tuple(self.g.shape(node.output))
        if len(groups) == 2 and self._signed_use(node) == "layers":
            for grp in groups:
                self.add_layer(
                    PlannedLayer(
                        self._name("conv"), "conv", [src], out_shape, [grp], nodes=[node.name], **geo
                    )
                )
            return
        layer = PlannedLayer(self._name("conv"), "conv", [src], out_shape, groups, nodes=[node.name], **geo)
        fold = self.by_conv_y.get(node.name)
        if fold is not None:
            layer.groups += self._shortcut_groups(node, fold, len(self.layers))
            layer.nodes += [fold.conv_s.name] if fold.conv_s is not None else []
            layer.min_bits = 2
        if node.name in self.by_conv_z:
            layer.min_bits = 2
            layer.nodes.append(self.by_conv_z[node.name].add.name)
        self.add_layer(layer)

    # ------------------------------------------------------------------ maxpool / add
    def maxpool(self, node: Node) -> None:
        src = self.source_layer(node, node.inputs[0])
        parts = self.parts(node.inputs[0], src)
        others = len(self.layers[src].groups) if src >= 0 else 1
        if any(part.sign < 0 for _, part in parts) or others != len(parts):
            raise UnsupportedOpError(
                node.source,
                node.name,
                "max-pool needs a non-negative input alone in its layer (max(P) - max(N) is not max(P - N))",
            )
        c = self.g.shape(node.output)[-1]
        groups = []
        for k, (_, part) in enumerate(parts):  # pieces pool piecewise: max(min(T, a)) = min(max(T), a)
            base = f"t{node.output}+" if len(parts) > 1 else None
            key = f"{base}~{k}" if base else f"t{node.output}+"
            groups.append(
                Group(
                    key,
                    node.output,
                    1,
                    c,
                    "relu",
                    Ref([(1.0, node.output, 1)], "relu"),
                    copy_of=part.key,
                    base=base,
                    piece=part.piece,
                )
            )
        self.add_layer(
            PlannedLayer(
                self._name("maxpool"),
                "maxpool",
                [src],
                tuple(self.g.shape(node.output)),
                groups,
                kernel=2,
                stride=2,
                nodes=[node.name],
            )
        )

    def add(self, node: Node) -> None:
        if node.act not in ("relu", "relu6"):
            raise UnsupportedOpError(
                node.source, node.name, "an add without ReLU makes a signed map; the chip add clamps at 0"
            )
        operands = []
        for t in node.inputs:
            for i, grp in self.parts(t):
                if i < 0 or len(self.layers[i].groups) != 1:
                    raise UnsupportedOpError(
                        node.source,
                        node.name,
                        f"operand tensor {t} is not alone in its layer (the chip add reads whole layers)",
                    )
                grp.uniform = True  # the add's multipliers are per layer
                operands.append((i, grp))
        pos = [p for p in operands if p[1].sign > 0]
        neg = [p for p in operands if p[1].sign < 0]
        if not pos:
            raise UnsupportedOpError(node.source, node.name, "both operands are non-positive")
        shape = tuple(self.g.shape(node.output))
        steps = [(p, 1) for p in pos[1:]] + [(n, -1) for n in neg]
        cur, done = pos[0], [pos[0]]
        for k, (operand, coef) in enumerate(steps):
            done.append(operand)
            last = k == len(steps) - 1
            if last:
                grp = _relu_group(node.output, 1, shape[-1], [], None, node.act, self.relu6_cap)
            else:
                ref = Ref([(float(1 if g_.sign > 0 else -1), g_.tensor, g_.sign) for _, g_ in done], "relu")
                grp = Group(f"sum{len(self.layers)}", None, 1, shape[-1], "relu", ref)
            grp.uniform = True
            layer = PlannedLayer(
                self._name("add"),
                "add",
                [cur[0], operand[0]],
                shape,
                [grp],
                coefs=(1, coef),
                nodes=[node.name],
            )
            cur = (self.add_layer(layer), grp)

    # ------------------------------------------------------------------ host
    def host_layers(self) -> list[HostLayer]:
        out: list[HostLayer] = []
        current = self.chip_output
        for node in self.host:
            if node.op == "reshape":
                current = node.output
                continue
            if node.op == "softmax" and abs(node.attrs.get("beta", 1.0) - 1.0) > 1e-12:
                if not out or out[-1].op != "dense":
                    raise UnsupportedOpError(
                        node.source, node.name, "softmax with beta != 1 needs a dense before it"
                    )
                out[-1].w, out[-1].b = out[-1].w * node.attrs["beta"], out[-1].b * node.attrs["beta"]
            w = node.attrs.get("w") if node.op == "dense" else None
            b = node.attrs.get("b") if node.op == "dense" else None
            out.append(
                HostLayer(
                    node.op + str(len(self.layers) + len(out)), node.op, current, node.output, w, b, node.name
                )
            )
            current = node.output
        return out

    def run(self) -> Plan:
        for node in self.chip:
            if node.name in self.absorbed:
                continue
            getattr(self, node.op)(node)
        entries = self.parts(self.chip_output)
        if len(entries) != 1 or len(self.layers[entries[0][0]].groups) != 1:
            raise UnsupportedOpError("-", self.g.name, "the chip output is not a single code map")
        return Plan(self.layers, self.host_layers(), self.where, self.chip_output, self.notes)


def make_plan(g: Graph, placements: list[Placement], profile: ChipProfile, **options) -> Plan:
    """Plan the chip layers of a partitioned graph (see the module docstring)."""
    return Planner(g, placements, profile, **options).run()
