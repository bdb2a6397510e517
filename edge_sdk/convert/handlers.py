"""TFLite operators -> canonical float graph nodes, through a table of handlers.

``HANDLERS[op_name](ctx, raw_op)`` appends nodes to ``ctx.graph``.  An operator
without a handler raises :class:`~edge_sdk.errors.UnsupportedOpError` naming the
op and the layer: nothing downstream (chip, host or float executor) could run it.
Quantized activations are treated as the real values they encode; QUANTIZE and
DEQUANTIZE therefore become identities.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ConversionError, UnsupportedOpError
from .graph import Graph, Node, TensorInfo
from .tflite_reader import RawModel, RawOp, RawTensor

_ACT = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}


class ImportContext:
    """The raw model being imported and the graph being built."""

    def __init__(self, raw: RawModel, graph: Graph) -> None:
        self.raw = raw
        self.graph = graph

    def tensor(self, index: int) -> RawTensor:
        return self.raw.tensors[index]

    def const(self, index: int, what: str, op: RawOp) -> np.ndarray:
        t = self.tensor(index)
        if not t.is_const:
            raise UnsupportedOpError(op.op, self.layer_name(op), f"its {what} must be a constant tensor")
        return t.dequantized()

    def layer_name(self, op: RawOp) -> str:
        return f"{op.op.lower()}_{op.index} ({self.tensor(op.outputs[0]).name})"

    def ensure(self, index: int) -> int:
        """Register an activation tensor in the graph (shape without the batch dimension)."""
        if index not in self.graph.tensors:
            t = self.tensor(index)
            shape = t.shape[1:] if len(t.shape) >= 2 and t.shape[0] == 1 else t.shape
            self.graph.tensors[index] = TensorInfo(
                tuple(shape), t.name, t.dtype.lower(), t.scale, t.zero_point
            )
        return index

    def emit(self, op: RawOp, kind: str, inputs: list[int], attrs: dict) -> Node:
        node = Node(
            kind,
            [self.ensure(i) for i in inputs],
            self.ensure(op.outputs[0]),
            attrs,
            op.op,
            f"{op.op.lower()}_{op.index}",
        )
        self.graph.nodes.append(node)
        return node


def _act(op: RawOp, ctx: ImportContext) -> str:
    code = int(op.options.get("fusedActivationFunction", 0))
    if code not in _ACT:
        raise UnsupportedOpError(op.op, ctx.layer_name(op), f"fused activation code {code} is not supported")
    return _ACT[code]


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding: (before, after); the odd extra pixel goes after (bottom/right)."""
    eff = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _pads(
    op: RawOp,
    ctx: ImportContext,
    hw: tuple[int, int],
    k: tuple[int, int],
    s: tuple[int, int],
    d: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int]:
    if int(op.options.get("padding", 1)) == 1:  # VALID
        return (0, 0, 0, 0)
    top, bottom = same_pads(hw[0], k[0], s[0], d[0])
    left, right = same_pads(hw[1], k[1], s[1], d[1])
    return (top, left, bottom, right)


def _strides(op: RawOp) -> tuple[int, int]:
    return int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1))


def _dilation(op: RawOp) -> tuple[int, int]:
    return int(op.options.get("dilationHFactor", 1)), int(op.options.get("dilationWFactor", 1))


def _bias(ctx: ImportContext, op: RawOp, n: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(n, np.float32)
    return ctx.const(op.inputs[2], "bias", op).reshape(n)


def h_conv2d(ctx: ImportContext, op: RawOp) -> None:
    x = ctx.ensure(op.inputs[0])
    w = ctx.const(op.inputs[1], "filter", op).transpose(0, 3, 1, 2)  # OHWI -> OIHW
    h, wd, c = ctx.graph.shape(x)
    if w.shape[1] != c:
        groups = c // w.shape[1]  # TFLite grouped conv: filter (O, kh, kw, C/groups)
        if groups * w.shape[1] != c:
            raise ConversionError(
                f"{ctx.layer_name(op)}: filter depth {w.shape[1]} does not divide {c} channels"
            )
    else:
        groups = 1
    _emit_conv(ctx, op, x, w, groups, (h, wd))


def _emit_conv(ctx: ImportContext, op: RawOp, x, w: np.ndarray, groups: int, hw: tuple[int, int]) -> None:
    """A conv node from OIHW weights ``w`` (dense, grouped or depthwise) and the op's options."""
    s, d = _strides(op), _dilation(op)
    attrs = dict(
        w=np.ascontiguousarray(w, np.float32),
        b=_bias(ctx, op, w.shape[0]),
        stride=s,
        pad=_pads(op, ctx, hw, w.shape[2:], s, d),
        groups=groups,
        dilation=d,
        act=_act(op, ctx),
    )
    ctx.emit(op, "conv", [x], attrs)


def h_depthwise(ctx: ImportContext, op: RawOp) -> None:
    x = ctx.ensure(op.inputs[0])
    f = ctx.const(op.inputs[1], "filter", op)  # (1, kh, kw, C*mult)
    h, wd, c = ctx.graph.shape(x)
    w = f[0].transpose(2, 0, 1)[:, None]  # (C*mult, 1, kh, kw): output c*mult+m reads input c
    _emit_conv(ctx, op, x, w, c, (h, wd))


def h_fully_connected(ctx: ImportContext, op: RawOp) -> None:
    w = ctx.const(op.inputs[1], "weights", op)
    ctx.emit(
        op,
        "dense",
        [op.inputs[0]],
        dict(w=np.ascontiguousarray(w, np.float32), b=_bias(ctx, op, w.shape[0]), act=_act(op, ctx)),
    )


def _binary(ctx: ImportContext, op: RawOp, kind: str) -> None:
    a, b = op.inputs[:2]
    consts = [ctx.tensor(i).is_const for i in (a, b)]
    act = _act(op, ctx)
    if not any(consts):
        if kind != "add":
            raise UnsupportedOpError(
                op.op,
                ctx.layer_name(op),
                "element-wise products of two feature maps have no chip or host implementation",
            )
        if ctx.graph.shape(ctx.ensure(a)) != ctx.graph.shape(ctx.ensure(b)):
            raise UnsupportedOpError(op.op, ctx.layer_name(op), "broadcasting add of different shapes")
        ctx.emit(op, "add", [a, b], dict(act=act))
        return
    if all(consts):
        raise UnsupportedOpError(
            op.op, ctx.layer_name(op), "constant folding of two constants is not supported"
        )
    x, c = (b, a) if consts[0] else (a, b)
    value = ctx.const(c, "operand", op)
    channels = ctx.graph.shape(ctx.ensure(x))[-1]
    if value.size not in (1, channels):
        raise UnsupportedOpError(
            op.op, ctx.layer_name(op), f"constant of shape {value.shape} is not per-channel"
        )
    value = np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float32)
    one, zero = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    if kind == "sub" and consts[0]:
        raise UnsupportedOpError(op.op, ctx.layer_name(op), "constant minus feature map is not supported")
    scale, shift = {"add": (one, value), "sub": (one, -value), "mul": (value, zero)}[kind]
    ctx.emit(op, "affine", [x], dict(scale=scale, shift=shift, act=act))


def _pool(ctx: ImportContext, op: RawOp, kind: str) -> None:
    x = ctx.ensure(op.inputs[0])
    k = (int(op.options["filterHeight"]), int(op.options["filterWidth"]))
    s = _strides(op)
    ctx.emit(
        op,
        kind,
        [x],
        dict(k=k, stride=s, pad=_pads(op, ctx, ctx.graph.shape(x)[:2], k, s), act=_act(op, ctx)),
    )


def h_mean(ctx: ImportContext, op: RawOp) -> None:
    axes = sorted(int(v) % 4 for v in np.atleast_1d(ctx.tensor(op.inputs[1]).data))
    if axes != [1, 2]:
        raise UnsupportedOpError(
            op.op,
            ctx.layer_name(op),
            f"only the mean over H and W (axes 1, 2) is supported, found axes {axes}",
        )
    ctx.emit(op, "gap", [op.inputs[0]], {})


def _activation(kind: str) -> Callable[[ImportContext, RawOp], None]:
    def handler(ctx: ImportContext, op: RawOp) -> None:
        ctx.emit(op, "act", [op.inputs[0]], dict(act=kind))

    return handler


def h_pad(ctx: ImportContext, op: RawOp) -> None:
    pads = np.asarray(ctx.tensor(op.inputs[1]).data).reshape(-1, 2)
    if pads.shape[0] != 4 or pads[0].any() or pads[3].any():
        raise UnsupportedOpError(op.op, ctx.layer_name(op), "only spatial padding of NHWC maps is supported")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:  # PADV2: the pad value must encode real 0
        value = ctx.tensor(op.inputs[2]).dequantized().reshape(-1)
        if value.size and abs(float(value[0])) > 1e-6:
            raise UnsupportedOpError(
                op.op, ctx.layer_name(op), f"padding with the value {float(value[0])} (not 0)"
            )
    ctx.emit(
        op,
        "pad",
        [op.inputs[0]],
        dict(pads=(int(pads[1, 0]), int(pads[2, 0]), int(pads[1, 1]), int(pads[2, 1]))),
    )


def h_reshape(ctx: ImportContext, op: RawOp) -> None:
    ctx.emit(
        op, "reshape", [op.inputs[0]], dict(shape=ctx.graph.tensors.get(ctx.ensure(op.outputs[0])).shape)
    )


def h_softmax(ctx: ImportContext, op: RawOp) -> None:
    ctx.emit(op, "softmax", [op.inputs[0]], dict(beta=float(op.options.get("beta", 1.0))))


def h_identity(ctx: ImportContext, op: RawOp) -> None:
    ctx.emit(op, "identity", [op.inputs[0]], {})


HANDLERS: dict[str, Callable[[ImportContext, RawOp], None]] = {
    "CONV_2D": h_conv2d,
    "DEPTHWISE_CONV_2D": h_depthwise,
    "FULLY_CONNECTED": h_fully_connected,
    "ADD": lambda ctx, op: _binary(ctx, op, "add"),
    "SUB": lambda ctx, op: _binary(ctx, op, "sub"),
    "MUL": lambda ctx, op: _binary(ctx, op, "mul"),
    "MAX_POOL_2D": lambda ctx, op: _pool(ctx, op, "maxpool"),
    "AVERAGE_POOL_2D": lambda ctx, op: _pool(ctx, op, "avgpool"),
    "MEAN": h_mean,
    "RELU": _activation("relu"),
    "RELU6": _activation("relu6"),
    "RELU_N1_TO_1": _activation("relu_n1_to_1"),
    "TANH": _activation("tanh"),
    "PAD": h_pad,
    "PADV2": h_pad,
    "RESHAPE": h_reshape,
    "SQUEEZE": h_reshape,
    "SOFTMAX": h_softmax,
    "QUANTIZE": h_identity,
    "DEQUANTIZE": h_identity,
}


def _input_affine(t: RawTensor) -> tuple[str, float, float]:
    """(dtype, scale, offset) with real input = pixel * scale + offset for a uint8 pixel frame."""
    dtype = t.dtype.lower()
    if not t.quantized or dtype == "float32":
        return dtype, 1.0, 0.0
    scale, zp = float(t.scale[0]), float(t.zero_point[0])
    if dtype == "int8":  # the stored value is pixel - 128
        zp += 128.0
    return dtype, scale, -zp * scale


def build_graph(raw: RawModel, name: str = "model") -> Graph:
    """Translate a parsed .tflite model into the canonical float graph (unsupported ops raise)."""
    if len(raw.inputs) != 1 or len(raw.outputs) != 1:
        raise ConversionError(
            f"models with one input and one output are supported, found {len(raw.inputs)} "
            f"inputs and {len(raw.outputs)} outputs"
        )
    graph = Graph({}, [], raw.inputs[0], raw.outputs[0], name)
    ctx = ImportContext(raw, graph)
    ctx.ensure(raw.inputs[0])
    for op in raw.ops:
        handler = HANDLERS.get(op.op)
        if handler is None:
            raise UnsupportedOpError(
                op.op, ctx.layer_name(op), f"no converter handler (supported: {', '.join(sorted(HANDLERS))})"
            )
        handler(ctx, op)
    graph.input_dtype, graph.input_scale, graph.input_offset = _input_affine(raw.tensors[raw.inputs[0]])
    out = raw.tensors[raw.outputs[0]]
    graph.output_dtype = out.dtype.lower()
    if out.quantized:
        graph.output_scale, graph.output_zero_point = float(out.scale[0]), int(out.zero_point[0])
    return graph
