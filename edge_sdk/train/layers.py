"""Trainable chip layers (torch): quantized conv blocks, max-pool and shortcut add.

Every node runs in one of the training stages (methods.md section 1):

``float``    float weights, uncapped ReLU
``qweight``  quantized weights (straight-through), uncapped ReLU
``calib``    like ``qweight``; each ReLU records its 99th percentile (max over batches)
``qact``     quantized weights and activations (capped ReLU then 5-bit / 2-bit codes)
``fused``    the chip's integer arithmetic: BN folded (lightspeeur) or BSN frozen (nqe),
             integer weights, scalars, biases and shifts; bit-exact in float64 (eval)

Float stages pass real values between nodes (lightspeeur: ``code * cap / 31``; nqe:
"code units", the bit-shift-normalized value divided by ``2^e``); the fused stage
passes the integer codes themselves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..builder import same_pad
from ..chips import ChipProfile
from .integer import add_params, conv_params, requant
from .quant import (
    act_quant_floor,
    act_quant_round,
    heq_step,
    kernel_quant,
    kernel_quantize,
    nqe_codes,
    nqe_quantize,
    percentile99,
)

FLOAT_STAGES = ("float", "qweight", "calib")
STAGES = ("float", "qweight", "calib", "qact", "fused")


class BitShiftNorm(nn.Module):
    """Bit-shift normalization: ``y = (acc - mu_c) * 2^-k + beta_c`` with one k per layer.

    ``k = round(log2(mean_c sigma_c / tau))`` from running statistics (EMA), so the
    normalized output has a standard deviation of about ``tau`` output code units.
    On chip it is ``(acc + b_c) >> k`` with ``b_c = round(beta_c 2^k - mu_c)``.

    ``shift`` says when k may change: ``"track"`` in every training stage until the fused one,
    ``"calibrated"`` only until the activation caps are calibrated (then it is fixed, like the
    activation exponent ``e``).  Why the second: k is discrete, so when the running sigma drifts
    across a half-integer of log2 the layer's output doubles or halves in one step, every 2-bit
    activation downstream changes and the loss jumps (docs/training.md).
    """

    SHIFT_POLICIES = ("track", "calibrated")

    def __init__(
        self,
        channels: int,
        *,
        tau: float = 1.0,
        beta0: float = 1.0,
        momentum: float = 0.1,
        shift: str = "track",
    ) -> None:
        super().__init__()
        if shift not in self.SHIFT_POLICIES:
            raise ValueError(
                f"bit-shift normalization shift policy must be one of {self.SHIFT_POLICIES}, found {shift!r}"
            )
        self.tau, self.momentum, self.shift_policy = tau, momentum, shift
        self.shift_frozen = False
        self.beta = nn.Parameter(torch.full((channels,), float(beta0)))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_sigma", torch.zeros(()))  # 0: not yet initialized
        self.register_buffer("k", torch.zeros((), dtype=torch.long))
        self.frozen = False

    def _update(self, acc: torch.Tensor) -> None:
        mu = acc.detach().mean(dim=(0, 2, 3))
        sigma = acc.detach().std(dim=(0, 2, 3)).mean()
        first = float(self.running_sigma) == 0.0
        m = 1.0 if first else self.momentum
        self.running_mean.mul_(1 - m).add_(m * mu)
        self.running_sigma.mul_(1 - m).add_(m * sigma)
        if not self.shift_frozen:
            self.k.fill_(self.exponent_for(float(self.running_sigma)))

    def exponent_for(self, sigma: float) -> int:
        return int(min(15, max(0, round(math.log2(max(sigma, 1e-12) / self.tau)))))

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        if self.training and not self.frozen:
            self._update(acc)
            # the batch mean with its gradient, as in batch norm: without it the centering
            # direction gets gradient steps that the forward pass then removes, and training stalls
            mu = acc.mean(dim=(0, 2, 3))
        else:
            mu = self.running_mean
        return (acc - mu[None, :, None, None]) * 2.0 ** -int(self.k) + self.beta[None, :, None, None]


class Node(nn.Module):
    """Base of every chip node: ``inputs`` index earlier nodes (-1 = network input)."""

    op = "node"

    def __init__(self, profile: ChipProfile, inputs: tuple[int, ...], name: str) -> None:
        super().__init__()
        self.profile, self.inputs, self.name = profile, tuple(inputs), name
        self.stage = "float"
        self.register_buffer("cap", torch.zeros(()))  # calibrated ReLU cap (0: not calibrated)
        self.register_buffer("e", torch.zeros((), dtype=torch.long))  # nqe: extra output exponent

    @property
    def per_kernel(self) -> bool:
        return self.profile.weight_scale == "per_kernel"

    @property
    def raw(self) -> bool:
        return False

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        """The float-path activation of the current stage (y: the normalized pre-activation)."""
        if self.raw:
            return y
        if self.stage == "calib":
            self.cap.fill_(max(float(self.cap), percentile99(F.relu(y))))
        if self.stage in FLOAT_STAGES or float(self.cap) == 0.0:
            return F.relu(y) if self.per_kernel else F.relu(y) * 2.0 ** -int(self.e)
        if self.per_kernel:
            return act_quant_round(y, float(self.cap), self.profile.act_max)
        return act_quant_floor(y * 2.0 ** -int(self.e), self.profile.act_max)

    def finish_calibration(self) -> None:
        """nqe: turn the calibrated cap into a power-of-two exponent (cap ~ 4 code units)."""
        if self.per_kernel or self.raw or float(self.cap) <= 0:
            return
        e = round(math.log2(float(self.cap) / (self.profile.act_max + 1)))
        self.e.fill_(int(e))

    def code_scale(self, in_scales: list[float]) -> float:
        """Real value of one output code in the float path (lightspeeur cap/31, nqe 1)."""
        if self.per_kernel:
            return float(self.cap) / self.profile.act_max
        return 1.0


class QConv(Node):
    """Conv + BN (lightspeeur) or BSN (nqe) + capped ReLU, with the profile's quantizers."""

    op = "conv"

    def __init__(
        self,
        profile: ChipProfile,
        c_in: int,
        c_out: int,
        *,
        kernel: int = 3,
        stride: int = 1,
        bits: int = 1,
        groups: int = 1,
        raw: bool = False,
        inputs: tuple[int, ...] = (-1,),
        name: str = "conv",
        tau: float = 1.0,
        heq_momentum: float = 0.1,
        pad: tuple[int, int, int, int] | None = None,
        kernel_method: str = "paper",
        bsn_shift: str = "track",
    ) -> None:
        super().__init__(profile, inputs, name)
        self.kernel_method = kernel_method  # lightspeeur per-kernel fit (quant.KERNEL_METHODS)
        profile.mode(bits)  # fail early on a mode the chip lacks
        self.c_in, self.c_out, self.kernel, self.stride, self.bits, self.groups = (
            c_in,
            c_out,
            kernel,
            stride,
            bits,
            groups,
        )
        # top, left, bottom, right; default: the chip convention (builder.same_pad)
        self.pad = tuple(int(v) for v in pad) if pad is not None else same_pad(kernel, stride)
        self._raw = raw
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, groups=groups, bias=True)
        nn.init.zeros_(self.conv.bias)
        self.heq_momentum = heq_momentum
        if self.per_kernel:
            self.bn = nn.BatchNorm2d(c_out)
            self.register_buffer("folded", torch.zeros((), dtype=torch.bool))
            # BN's per-channel gain once folded: it scales the quantized kernels (and their scalars),
            # never the latent weights, so the fused stage quantizes exactly the weights that the
            # qact stage did (rescaled weights round differently where QAT parked them on a threshold)
            self.register_buffer("gain", torch.ones(c_out))
        else:
            self.bsn = BitShiftNorm(c_out, tau=tau, beta0=0.0 if raw else 1.0, shift=bsn_shift)
            self.register_buffer("step", torch.zeros((), dtype=torch.float64))  # HEQ step, EMA

    @property
    def raw(self) -> bool:
        return self._raw

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        top, left, bottom, right = self.pad
        return F.pad(x, (left, right, top, bottom)) if any(self.pad) else x

    def heq(self) -> float:
        """The layer's HEQ step, EMA-updated while training (frozen in the fused stage)."""
        if self.training and self.stage != "fused" or float(self.step) == 0.0:
            s = heq_step(self.conv.weight, self.bits)
            m = 1.0 if float(self.step) == 0.0 else self.heq_momentum
            self.step.mul_(1 - m).add_(m * s)
        return float(self.step)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the gain buffer folded BN into the latent weights: gain 1
        if self.per_kernel and prefix + "gain" not in state_dict:
            state_dict[prefix + "gain"] = torch.ones_like(self.gain)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def weight(self) -> torch.Tensor:
        w = self.conv.weight
        if self.per_kernel:
            q = w if self.stage == "float" else kernel_quantize(w, self.bits, self.kernel_method)
            return q * self.gain[:, None, None, None] if bool(self.folded) else q
        step = self.heq()
        return w / step if self.stage == "float" else nqe_quantize(w, step, self.bits)

    def quant_distance(self) -> torch.Tensor:
        """Mean squared distance of the latent weights from their quantized values, in units of the
        quantization step (per-kernel scalar / layer step): the oscillation-dampening penalty, which
        pulls weights off the thresholds where QAT leaves them flipping (Nagel et al. 2022)."""
        w = self.conv.weight
        if self.per_kernel:
            _, levels, scalar = kernel_quant(w, self.bits, self.kernel_method)
            step = scalar.clamp(min=1e-12)[:, :, None, None]
            return (((w - levels * scalar[:, :, None, None]) / step) ** 2).mean()
        step = self.heq()
        return ((w / step - nqe_codes(w.detach(), step, self.bits)) ** 2).mean()

    def forward_float(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_kernel:
            folded = bool(self.folded)
            z = F.conv2d(
                self.padded(x),
                self.weight(),
                self.conv.bias if folded else None,
                self.stride,
                groups=self.groups,
            )
            return self.activate(z if folded else self.bn(z))
        acc = F.conv2d(self.padded(x), self.weight(), None, self.stride, groups=self.groups)
        return self.activate(self.bsn(acc))

    def forward_int(self, x: torch.Tensor, s_in: float) -> tuple[torch.Tensor, float]:
        """Fused stage: integer codes in, integer codes (or raw accumulators) out, and their scale."""
        p = conv_params(self, s_in, x.dtype)
        acc = F.conv2d(self.padded(x), p["w_int"], p["bias"], self.stride, groups=self.groups)
        return requant(acc, p["shift"], self.profile, self.raw), p["out_scale"]

    @torch.no_grad()
    def fold(self) -> None:
        """lightspeeur: fold BN into the conv (W' = W g/sigma, b' = beta + g (b - mu)/sigma); the
        gain g/sigma is kept in ``gain`` and applied to the quantized kernels (integer.py)."""
        if not self.per_kernel or bool(self.folded):
            return
        bn = self.bn
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.gain.copy_(g)
        self.conv.bias.copy_(bn.bias + g * (self.conv.bias - bn.running_mean))
        self.folded.fill_(True)

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        if not self.per_kernel and self.bsn.shift_policy == "calibrated":
            self.bsn.shift_frozen = stage in ("qact", "fused")
        if stage == "fused":
            self.fold()
            if not self.per_kernel:
                self.bsn.frozen = True


class QPool(Node):
    """2x2/2 max-pool (on codes in the fused stage: it commutes with the requantizer)."""

    op = "maxpool"

    def forward_float(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2, 2)

    def forward_int(self, x: torch.Tensor, s_in: float) -> tuple[torch.Tensor, float]:
        return F.max_pool2d(x, 2, 2), s_in

    def code_scale(self, in_scales: list[float]) -> float:
        return in_scales[0]

    def set_stage(self, stage: str) -> None:
        self.stage = stage


class QAdd(Node):
    """Shortcut add of two activation maps, then capped ReLU (built into the chip's add)."""

    op = "add"

    def forward_float(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.activate(a + b)

    def forward_int(
        self, a: torch.Tensor, b: torch.Tensor, s_a: float, s_b: float
    ) -> tuple[torch.Tensor, float]:
        p = add_params(self, s_a, s_b)
        acc = a * p["mults"][0] + b * p["mults"][1]
        return requant(acc, p["shift"], self.profile, False), p["out_scale"]

    def set_stage(self, stage: str) -> None:
        self.stage = stage


def make_node(
    profile: ChipProfile,
    spec: dict,
    c_in: int,
    inputs: tuple[int, ...],
    name: str,
    tau: float = 1.0,
    bsn_shift: str = "track",
) -> Node:
    """Build one node from a spec dict: {"op": "conv"|"pool"|"add", ...}."""
    op = spec.get("op", "conv")
    if op == "pool":
        return QPool(profile, inputs, name)
    if op == "add":
        return QAdd(profile, inputs, name)
    return QConv(
        profile,
        c_in,
        int(spec["out"]),
        kernel=int(spec.get("k", 3)),
        stride=int(spec.get("s", 1)),
        bits=int(spec["bits"]),
        groups=int(spec.get("g", 1)),
        raw=bool(spec.get("raw", False)),
        inputs=inputs,
        name=name,
        tau=tau,
        pad=tuple(spec["pad"]) if "pad" in spec else None,
        kernel_method=str(spec.get("wq", "paper")),
        bsn_shift=bsn_shift,
    )


def stage_index(stage: str) -> int:
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; stages are {STAGES}")
    return STAGES.index(stage)


__all__ = ["STAGES", "BitShiftNorm", "QAdd", "QConv", "QPool", "make_node", "stage_index"]
