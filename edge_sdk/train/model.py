"""QNet: a chip network as a trainable torch model (chip nodes + host head).

    spec = [{"out": 32, "bits": 1}, {"op": "pool"}, {"out": 64, "bits": 1}, {"op": "pool"},
            {"out": 128, "bits": 1, "k": 1, "raw": True}]
    model = QNet("lightspeeur-2803", (28, 28, 1), spec, classes=10)
    logits = model(x_uint8_nhwc)          # torch uint8 (N, H, W, C)

Each spec entry is a node: a conv (``out``, ``bits``, optional ``k``, ``s``, ``g``,
``raw``, ``pad`` = (top, left, bottom, right)), ``{"op": "pool"}`` or ``{"op": "add", "inputs": [i, j]}``; nodes read the
previous node unless ``inputs`` says otherwise.  The host head is global average
pooling and a dense layer (float, on the CPU, as ``edge_sdk.runtime.host`` runs it).
``bsn_shift`` (nqe): when the bit-shift normalization exponents may change
(``layers.BitShiftNorm``: ``"track"`` or ``"calibrated"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import nn

from ..chips import ChipProfile, load_profile
from .layers import QConv, make_node, stage_index


def convert_input(x: torch.Tensor, profile: ChipProfile) -> torch.Tensor:
    """uint8 NHWC -> float NCHW input codes exactly as the chip converts them (datasheet 2.6)."""
    x = x.permute(0, 3, 1, 2).to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    if profile.input_conversion == "identity":
        return x
    s = profile.input_shift
    code = torch.floor((torch.floor(x / 2 ** (s - 1)) + 1) / 2) if s > 0 else x
    return torch.clamp(code, max=profile.act_max)


class QNet(nn.Module):
    """Chip nodes (a DAG in topological order) followed by a host GAP + dense head."""

    def __init__(
        self,
        profile: Union[str, ChipProfile],
        input_shape: Sequence[int],
        spec: list[dict],
        *,
        classes: int = 10,
        tau: float = 1.0,
        bsn_shift: str = "track",
    ) -> None:
        super().__init__()
        self.profile = load_profile(profile)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.spec = [dict(s) for s in spec]
        nodes, channels = [], []
        for i, s in enumerate(self.spec):
            inputs = tuple(s.get("inputs", (i - 1,)))
            c_in = self.input_shape[2] if inputs[0] < 0 else channels[inputs[0]]
            name = s.get("name", f"{s.get('op', 'conv')}{i}")
            node = make_node(self.profile, s, c_in, inputs, name, tau, bsn_shift)
            nodes.append(node)
            channels.append(node.c_out if isinstance(node, QConv) else c_in)
        self.nodes = nn.ModuleList(nodes)
        self.channels = channels
        self.dense = nn.Linear(channels[-1], classes)
        self.stage = "float"

    # ------------------------------------------------------------ stages
    def set_stage(self, stage: str) -> None:
        """Switch every node to a training stage (folding BN when entering ``fused``)."""
        stage_index(stage)
        self.stage = stage
        for node in self.nodes:
            node.set_stage(stage)

    def finish_calibration(self) -> None:
        for node in self.nodes:
            node.finish_calibration()

    @property
    def input_scale(self) -> float:
        """Real value of one input code (lightspeeur: the first layer reads code/31)."""
        return 1.0 / self.profile.act_max if self.profile.input_conversion == "round_shift" else 1.0

    # ------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, taps: bool = False):
        """Logits for a uint8 NHWC batch (``taps=True``: also every node's output, NCHW)."""
        feats, outs = self.features(x)
        logits = self.dense(feats.mean(dim=(2, 3)).to(self.dense.weight.dtype))
        return (logits, outs) if taps else logits

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Real-valued output of the last chip node and the outputs of every node."""
        if self.stage == "fused":
            return self._features_int(x)
        h = convert_input(x, self.profile) * self.input_scale
        outs: list[torch.Tensor] = []
        for node in self.nodes:
            srcs = [h if s < 0 else outs[s] for s in node.inputs]
            outs.append(node.forward_float(*srcs))
        return outs[-1], outs

    def _features_int(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The chip's integer arithmetic: float64 (exact) in eval, float32 with STE in training."""
        dtype = torch.float32 if self.training else torch.float64
        h = convert_input(x.to(torch.float64) if dtype == torch.float64 else x, self.profile).to(dtype)
        outs: list[torch.Tensor] = []
        scales: list[float] = []
        for node in self.nodes:
            srcs = [h if s < 0 else outs[s] for s in node.inputs]
            s_in = [self.input_scale if s < 0 else scales[s] for s in node.inputs]
            if node.op == "add":
                y, scale = node.forward_int(*srcs, *s_in)
            else:
                y, scale = node.forward_int(srcs[0], s_in[0])
            outs.append(y)
            scales.append(scale)
        return outs[-1] * scales[-1], outs

    def code_scales(self) -> list[float]:
        """Real value of one output code of every node in the float path."""
        scales: list[float] = []
        for node in self.nodes:
            ins = [self.input_scale if s < 0 else scales[s] for s in node.inputs]
            scales.append(node.code_scale(ins))
        return scales
