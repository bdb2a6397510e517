"""Data types of the chip plan: planned layers, their channel groups, and float references.

A planned chip layer's output channels are split into **groups**.  Each group
holds a non-negative code map ``relu(sign * (sum of terms + bias))`` (or, for a
"raw" last layer, the signed accumulator) and knows which float-graph tensor it
represents, so calibration and per-layer SQNR can compare it with the float
model.  A float tensor that can be negative is carried as two groups, its
positive and negative parts (``T = relu(T) - relu(-T)``), which every consumer
convolution reads with weights ``W`` and ``-W``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Ref:
    """Float reference of a group: act(sum of coef * part(tensor)), part = relu(sign*T), or T when sign is 0."""

    terms: list[tuple[float, int, int]]  # (coef, tensor, part sign)
    act: str = "relu"  # "relu" (clamped, the cap is calibrated on it) or "none" (raw)

    def evaluate(self, env: dict[int, np.ndarray]) -> np.ndarray:
        total = None
        for coef, tensor, sign in self.terms:
            v = env[tensor] if sign == 0 else np.maximum(sign * env[tensor], 0)
            total = coef * v if total is None else total + coef * v
        return np.maximum(total, 0) if self.act == "relu" else total

    @property
    def tensors(self) -> list[int]:
        return [t for _, t, _ in self.terms]


@dataclass
class Term:
    """A linear contribution to a group: ``w`` (C_group, C_tensor/groups, k, k) applied to ``tensor``."""

    tensor: int
    w: np.ndarray
    exact: bool = False  # a constructed one-hot copy (passthrough)
    part: Optional[str] = None  # read only this part (group key) of the tensor: copies


@dataclass
class Group:
    """One channel group of a planned layer."""

    key: str  # unique in the plan, e.g. "t25+" (positive part of tensor 25)
    tensor: Optional[int]  # the float tensor it represents (None for partial sums)
    sign: int  # +1: relu(T) or raw T; -1: relu(-T)
    channels: int
    act: str  # "relu" | "none" (raw accumulator)
    ref: Ref
    terms: list[Term] = field(default_factory=list)
    bias: Optional[np.ndarray] = None  # (channels,) real
    cap: Optional[float] = None  # fixed cap (ReLU6 -> 6) or None to calibrate
    copy_of: Optional[str] = None  # passthrough: use the scale of this group so the copy is exact
    offset: int = 0  # first output channel in the layer
    scale: Optional[np.ndarray] = None  # (channels,) real value of one code (set by calibration)
    uniform: bool = False  # one scale for all channels (add operands and outputs)
    base: Optional[str] = None  # pieces: the key their common cap is calibrated under
    piece: Optional[tuple[float, float]] = None  # pieces: this group covers [lo, hi) x cap of relu(sign*T)
    shift: float = 0.0  # real value subtracted before the ReLU (upper pieces), set with the scale
    target_from_ref: bool = False  # reconstruction target = the ref (its terms read no float tensor)

    @property
    def cal_key(self) -> str:
        return self.base or self.key

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.channels)


@dataclass
class PlannedLayer:
    """One chip layer before quantization (``src`` are planned-layer indices, -1 = network input)."""

    name: str
    op: str  # conv | maxpool | add
    src: list[int]
    out_shape: tuple[int, int, int]
    groups: list[Group] = field(default_factory=list)
    kernel: int = 1
    stride: int = 1
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    depthwise: bool = False
    conv_groups: int = 1
    coefs: tuple[int, int] = (1, 1)  # add: operand signs
    nodes: list[str] = field(default_factory=list)  # float-graph nodes merged into this layer
    min_bits: int = 1  # one-hot (passthrough) kernels need a mode with a zero level
    host_pad: Optional[tuple[int, int, int, int]] = None  # the float conv's padding, now done by the host

    @property
    def channels(self) -> int:
        return sum(g.channels for g in self.groups)

    def place_groups(self) -> None:
        offset = 0
        for g in self.groups:
            g.offset = offset
            offset += g.channels


@dataclass
class HostLayer:
    """A host op after the chip part: gap, dense or softmax (reshapes are dropped)."""

    name: str
    op: str
    tensor_in: int
    tensor_out: int
    w: Optional[np.ndarray] = None
    b: Optional[np.ndarray] = None
    node: str = ""


@dataclass
class Plan:
    """The chip layers, the host layers and where every float tensor lives."""

    layers: list[PlannedLayer]
    host: list[HostLayer]
    where: dict[int, list[tuple[int, Group]]]  # tensor -> [(layer index, group)] holding its parts
    chip_output: int  # float tensor the host part reads (or the network output)
    notes: list[str] = field(default_factory=list)

    def group(self, key: str) -> tuple[int, Group]:
        for i, layer in enumerate(self.layers):
            for g in layer.groups:
                if g.key == key:
                    return i, g
        raise KeyError(key)
