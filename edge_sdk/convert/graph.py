"""The converter's float graph: what an imported model computes, in one small vocabulary.

Importers (``tflite_reader`` + ``handlers``) translate a model file into a
:class:`Graph` of :class:`Node` in execution order; canonicalization passes
(``passes``) fuse activations, padding and batch-norm affines; the float
executor (``float_exec``) runs it in numpy; the planner lowers its chip part.

Tensors are identified by integers.  Shapes exclude the batch dimension
(feature maps are HWC).  Canonical ops and their ``attrs``:

==========  ==============================================================
conv        w (O, I/groups, kh, kw) float32, b (O,), stride (sh, sw),
            pad (top, left, bottom, right), groups, dilation (dh, dw), act
add         act                                    (two tensor inputs)
affine      scale (C,), shift (C,), act            (per-channel y = x*scale + shift)
maxpool     k (kh, kw), stride (sh, sw), pad, act
avgpool     k, stride, pad, act                    (TFLite semantics: padding excluded)
gap         -                                      (mean over H and W -> (1, 1, C))
dense       w (N, K), b (N,), act                  (flattens its input in C order)
softmax     beta
act         act                                    (a standalone activation)
pad         pads (top, left, bottom, right)        (zero padding of real value 0)
reshape     shape                                  (C-order reshape; data unchanged)
identity    -                                      (QUANTIZE / DEQUANTIZE in float)
==========  ==============================================================

``act`` is one of :data:`ACTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

ACTS = ("none", "relu", "relu6", "relu_n1_to_1", "tanh")
NONNEG_ACTS = ("relu", "relu6")


@dataclass
class TensorInfo:
    """Shape (without batch), display name and the source quantization, if any."""

    shape: tuple[int, ...]
    name: str
    dtype: str = "float32"
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None


@dataclass(eq=False)  # identity: nodes hold arrays
class Node:
    """One canonical op.  ``source`` names the model op(s) it came from (reports, errors)."""

    op: str
    inputs: list[int]
    output: int
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    name: str = ""

    @property
    def act(self) -> str:
        return self.attrs.get("act", "none")


@dataclass
class Graph:
    """A float graph with one input and one output tensor."""

    tensors: dict[int, TensorInfo]
    nodes: list[Node]
    input: int
    output: int
    name: str = "model"
    input_dtype: str = "float32"
    input_scale: float = 1.0  # real input = stored value * scale + offset (from the model, if quantized)
    input_offset: float = 0.0
    output_dtype: str = "float32"
    output_scale: float = 1.0
    output_zero_point: int = 0

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self.tensors[tensor].shape

    def producer(self, tensor: int) -> Optional[Node]:
        for node in self.nodes:
            if node.output == tensor:
                return node
        return None

    def consumers(self, tensor: int) -> list[Node]:
        return [node for node in self.nodes if tensor in node.inputs]

    def replace_input(self, old: int, new: int) -> None:
        """Rewire every reader of ``old`` (and the graph output) to ``new``."""
        for node in self.nodes:
            node.inputs = [new if t == old else t for t in node.inputs]
        if self.output == old:
            self.output = new

    def remove(self, node: Node) -> None:
        self.nodes = [n for n in self.nodes if n is not node]

    def copy(self) -> Graph:
        """A structural copy: new node objects and attr dicts (arrays are shared, never mutated in place)."""
        nodes = [Node(n.op, list(n.inputs), n.output, dict(n.attrs), n.source, n.name) for n in self.nodes]
        return Graph(
            dict(self.tensors),
            nodes,
            self.input,
            self.output,
            self.name,
            self.input_dtype,
            self.input_scale,
            self.input_offset,
            self.output_dtype,
            self.output_scale,
            self.output_zero_point,
        )

    def new_tensor(self, shape: tuple[int, ...], name: str) -> int:
        tid = max(self.tensors) + 1 if self.tensors else 0
        self.tensors[tid] = TensorInfo(tuple(int(v) for v in shape), name)
        return tid

    def summary(self) -> list[str]:
        """One line per node (for debugging and the report)."""
        lines = []
        for node in self.nodes:
            extra = ""
            if node.op == "conv":
                o, _, kh, kw = node.attrs["w"].shape
                extra = (
                    f" {kh}x{kw}/{node.attrs['stride'][0]} g={node.attrs['groups']} pad={node.attrs['pad']}"
                )
            lines.append(
                f"{node.name:12s} {node.op:8s} {node.inputs}->{node.output} {self.shape(node.output)}"
                f"{extra} act={node.act}"
            )
        return lines


def nonnegative(graph: Graph, tensor: int, input_nonneg: bool = True) -> bool:
    """Whether a tensor is >= 0 for every input (a ReLU output, or pooled/averaged from one)."""
    if tensor == graph.input:
        return input_nonneg
    node = graph.producer(tensor)
    if node is None:
        return False
    if node.act in NONNEG_ACTS:
        return True
    if node.op in ("maxpool", "avgpool", "gap", "reshape", "identity", "pad"):
        return nonnegative(graph, node.inputs[0], input_nonneg)
    if node.op == "add":
        return all(nonnegative(graph, t, input_nonneg) for t in node.inputs)
    return node.op == "softmax"


def apply_act(x: np.ndarray, act: str) -> np.ndarray:
    """The activation functions TFLite fuses into ops."""
    if act == "none":
        return x
    if act == "relu":
        return np.maximum(x, 0)
    if act == "relu6":
        return np.clip(x, 0, 6)
    if act == "relu_n1_to_1":
        return np.clip(x, -1, 1)
    if act == "tanh":
        return np.tanh(x)
    raise ValueError(f"unknown activation {act!r}")
