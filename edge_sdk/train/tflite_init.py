"""Start a QNet from a ``.tflite`` model's float weights, for QAT fine-tuning by distillation.

    g = import_tflite("mobilenet_v1_0.25_128_quant.tflite").graph
    spec = chain_spec(g, bits=5, first_pad=(0, 0, 0, 0))     # the host pads the frame
    model = QNet("lightspeeur-2803", (129, 129, 3), spec, classes=1001)
    load_chain(model, g, x_cal)                                # x_cal: padded uint8 frames

``chain_spec`` accepts a plain chain of convolutions (3x3 / 1x1, any stride, depthwise
or dense, ReLU or ReLU6) followed by global average pooling and a dense layer, optionally
a reshape and a softmax: the MobileNet-V1 family.  Anything else raises
``UnsupportedOpError`` naming the op and the layer.

``load_chain`` makes the float QNet compute what the ``.tflite`` computes (up to ReLU6's
clip, which the calibrated cap replaces in the quantized stages), then

* equalizes the channels (cross-layer equalization, Nagel et al. 2019): each ReLU
  channel is scaled to the same range and the next layer's weights for it are divided
  by the same factor.  Exact in float, and it lets one cap per layer (the chip's
  activation quantizer) serve channels whose ranges differ by 100x, as MobileNet's do;
* sets every batch norm so the quantized-weight outputs have the float outputs'
  per-channel mean and variance (bias and variance correction, layer by layer).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnsupportedOpError
from .model import QNet

HEAD_OPS = ("gap", "dense")
TAIL_OPS = ("reshape", "softmax")


def bn_pass(model: QNet, convs, xb: torch.Tensor, biases, targets=None) -> list:
    """Per conv, in order: measure the conv output on ``xb`` and set its BN so the output has
    ``targets`` (mean, var) per channel plus ``biases`` (targets None: the measured statistics,
    i.e. BN = identity + bias).  Returns the measured (mean, var) per conv."""
    stats = []
    for k, node in enumerate(convs):  # in order: earlier layers are already set
        seen: dict = {}
        hook = node.bn.register_forward_pre_hook(lambda m, a, seen=seen: seen.setdefault("z", a[0]))
        model.train()
        with torch.no_grad():
            model(xb)
        hook.remove()
        z = seen["z"].double()
        mean, var = z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3), unbiased=False)
        t_mean, t_var = targets[k] if targets else (mean, var)
        with torch.no_grad():
            node.bn.weight.copy_(torch.sqrt(t_var + node.bn.eps).float())
            node.bn.bias.copy_((t_mean + biases[k]).float())
            node.bn.running_mean.copy_(mean.float())
            node.bn.running_var.copy_(var.float())
        stats.append((mean, var))
    return stats


def _check_conv(n) -> None:
    a = n.attrs
    w = a["w"]
    k = w.shape[2]
    if w.shape[2] != w.shape[3] or k not in (1, 3) or a["stride"][0] != a["stride"][1]:
        raise UnsupportedOpError(
            getattr(n, "source", "CONV_2D"),
            n.name,
            f"chain_spec takes square 1x1/3x3 kernels with equal strides; found {w.shape[2]}x{w.shape[3]} "
            f"stride {a['stride']}",
        )
    if tuple(a.get("dilation", (1, 1))) != (1, 1) or a.get("act") not in ("relu", "relu6"):
        raise UnsupportedOpError(
            getattr(n, "source", "CONV_2D"),
            n.name,
            f"chain_spec takes undilated convs with ReLU/ReLU6; found dilation {a.get('dilation')} "
            f"and activation {a.get('act')!r}",
        )


def chain_spec(graph, bits: int, first_pad=None) -> list[dict]:
    """QNet spec of a conv chain + GAP + dense head (module docstring); ``first_pad`` replaces
    the first conv's padding (e.g. (0, 0, 0, 0) when the host pads the frame)."""
    ops = [n.op for n in graph.nodes]
    n_conv = next((i for i, op in enumerate(ops) if op != "conv"), len(ops))
    head = ops[n_conv : n_conv + 2]
    rest = ops[n_conv + 2 :]
    bad = n_conv == 0 or tuple(head) != HEAD_OPS or any(op not in TAIL_OPS for op in rest)
    if bad:
        where = next(
            (n for n in graph.nodes[n_conv:] if n.op not in HEAD_OPS + TAIL_OPS), graph.nodes[n_conv]
        )
        raise UnsupportedOpError(
            getattr(where, "source", where.op),
            where.name,
            f"chain_spec takes convs, then global average pooling and a dense layer; found {ops}",
        )
    spec = []
    for i, n in enumerate(graph.nodes[:n_conv]):
        _check_conv(n)
        a = n.attrs
        pad = first_pad if i == 0 and first_pad is not None else a["pad"]
        spec.append(
            {
                "out": int(a["w"].shape[0]),
                "bits": bits,
                "k": int(a["w"].shape[2]),
                "s": int(a["stride"][0]),
                "g": int(a["groups"]),
                "pad": tuple(int(v) for v in pad),
                "name": n.name,
            }
        )
    return spec


def input_affine(graph, model: QNet) -> tuple[float, float]:
    """(gain, offset) with the model's real input = gain * (QNet input value) + offset.

    The QNet reads input code c as ``c * input_scale``; the chip code of pixel x is about
    ``x / 2^input_shift``, and the model's real input is ``x * scale + offset``."""
    scale = float(np.mean(graph.input_scale))
    offset = float(np.mean(graph.input_offset))
    p = model.profile
    step = 2**p.input_shift if p.input_conversion == "round_shift" else 1
    return scale * step / model.input_scale, offset


def _compensate(w: np.ndarray, groups: int, s: np.ndarray) -> None:
    """Divide the weights that read input channel c by s[c] (in place)."""
    if groups == 1:
        w[:, :] /= s[None, :, None, None]
    else:  # depthwise: output channel c reads input channel c
        w /= s[:, None, None, None]


def _relu_ranges(model: QNet, xb: torch.Tensor, percentile: float, clip: float) -> list[np.ndarray]:
    """Per conv, per channel: the ``percentile`` of its ReLU output, clipped at ``clip`` (ReLU6: 6)."""
    model.eval()
    with torch.no_grad():
        _, outs = model(xb, taps=True)
    ranges = []
    for o in outs:
        a = o.permute(1, 0, 2, 3).reshape(o.shape[1], -1).clamp(max=clip).double().numpy()
        r = np.percentile(a, percentile, axis=1)
        ranges.append(np.maximum(r, 1e-3 * max(float(r.max()), 1e-6)))
    return ranges


def _channel_gains(r: np.ndarray, equalize: float, max_ratio: float, relu6_caps: bool) -> np.ndarray:
    """Per-channel output gains from the channels' ranges ``r`` (load_chain)."""
    if relu6_caps:  # fill [0, 6) without clipping anything ReLU6 would not clip
        return np.clip(6.0 / r, 1.0, max_ratio)
    # partial (``equalize`` < 1) and bounded: the chip's per-layer shift gives every kernel
    # scalar of a layer the same step, so the gains must not spread the weights too far
    r = np.maximum(r, r.max() / max_ratio)
    return (np.median(r) / r) ** equalize


def load_chain(
    model: QNet,
    graph,
    x_cal: np.ndarray,
    *,
    equalize: float = 0.5,
    percentile: float = 99.9,
    max_ratio: float = 16.0,
    relu6_caps: bool = False,
) -> None:
    """Load the .tflite weights into the QNet, equalize channels, correct BN (module docstring).

    ``relu6_caps`` (ReLU6 networks): every cap is set to 6, so the chip clips where ReLU6 does,
    and only channels that never reach 6 are scaled up (by ``6 / their max``, at most
    ``max_ratio``) to use the codes; no cap calibration should follow (it would replace the 6s).
    """
    convs = [n for n in graph.nodes if n.op == "conv"]
    dense = next(n for n in graph.nodes if n.op == "dense")
    gain, offset = input_affine(graph, model)
    ws = [c.attrs["w"].astype(np.float64).copy() for c in convs]
    bs = [c.attrs["b"].astype(np.float64).copy() for c in convs]
    # the first conv reads real = gain * h + offset; it runs unpadded on a frame padded with real 0
    bs[0] = bs[0] + offset * ws[0].sum(axis=(1, 2, 3))
    ws[0] = ws[0] * gain
    dense_w = dense.attrs["w"].astype(np.float64).copy()
    nodes = list(model.nodes)
    xb = torch.from_numpy(np.ascontiguousarray(x_cal))

    def load() -> None:
        with torch.no_grad():
            for node, w in zip(nodes, ws):
                node.conv.weight.copy_(torch.from_numpy(w).float())
            model.dense.weight.copy_(torch.from_numpy(dense_w).float())
            model.dense.bias.copy_(torch.from_numpy(dense.attrs["b"].astype(np.float32)))

    load()
    model.set_stage("float")
    to_t = [torch.from_numpy(b) for b in bs]
    stats = bn_pass(model, nodes, xb, to_t)
    relu6 = all(c.attrs["act"] == "relu6" for c in convs)
    if relu6_caps and not relu6:
        raise ValueError("relu6_caps needs a network whose every conv ends in ReLU6")
    if equalize > 0 or relu6_caps:
        clip = 6.0 if relu6 else float("inf")
        ranges = _relu_ranges(model, xb, 100.0 if relu6_caps else percentile, clip)
        for k, r in enumerate(ranges):
            s = _channel_gains(r, equalize, max_ratio, relu6_caps)
            stats[k] = (stats[k][0] * torch.from_numpy(s), stats[k][1] * torch.from_numpy(s**2))
            to_t[k] = to_t[k] * torch.from_numpy(s)
            if k + 1 < len(ws):
                _compensate(ws[k + 1], int(convs[k + 1].attrs["groups"]), s)
            else:
                dense_w /= s[None, :]
        load()
    model.set_stage("qweight")
    bn_pass(model, nodes, xb, to_t, stats)
    if relu6_caps:
        for node in nodes:
            node.cap.fill_(6.0)


__all__ = ["bn_pass", "chain_spec", "input_affine", "load_chain"]
