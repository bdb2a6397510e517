"""Export a trained QNet (fused stage) to an integer :class:`edge_sdk.network.Network`.

The integers come from the same ``conv_params`` / ``add_params`` the fused torch
forward uses, so the firmware computes exactly the codes the torch model computes
(tests/unit/test_train_export.py checks it on both profiles against the reference
backend).  The host head is GAP + dense in float32.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConversionError
from ..network import Layer, Network, conv_out_size
from ..tiling import compute_schedule
from .integer import add_params, conv_params
from .model import QNet


def _np(t: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(torch.float64).numpy().astype(dtype))


def _conv_layer(node, s_in: float, in_shape: tuple, act_bits: int) -> tuple[Layer, float]:
    p = conv_params(node, s_in, torch.float64)
    h, w, _ = in_shape
    ho = conv_out_size(h, node.kernel, node.stride, node.pad[0], node.pad[2])
    wo = conv_out_size(w, node.kernel, node.stride, node.pad[1], node.pad[3])
    layer = Layer(
        node.name,
        "conv",
        tuple(node.inputs),
        tuple(in_shape),
        (ho, wo, node.c_out),
        kernel=node.kernel,
        stride=node.stride,
        pad=tuple(node.pad),
        groups=node.groups,
        weight_bits=node.bits,
        act_bits=32 if node.raw else act_bits,
        output="raw" if node.raw else "act",
        shift=int(p["shift"]),
        codes=_np(p["codes"], np.int8),
        scalars=None if p["scalars"] is None else _np(p["scalars"], np.int16),
        bias=_np(p["bias"], np.int32),
        out_scale=float(p["out_scale"]),
    )
    return layer, float(p["out_scale"])


def _pool_layer(node, s_in: float, in_shape, bits: int) -> Layer:
    h, w, c = in_shape
    return Layer(
        node.name,
        "maxpool",
        (node.inputs[0],),
        tuple(in_shape),
        (h // 2, w // 2, c),
        kernel=2,
        stride=2,
        act_bits=bits,
        out_scale=s_in,
    )


def _add_layer(node, s_a: float, s_b: float, in_shape, act_bits: int) -> Layer:
    p = add_params(node, s_a, s_b)
    return Layer(
        node.name,
        "add",
        tuple(node.inputs),
        tuple(in_shape),
        tuple(in_shape),
        act_bits=act_bits,
        shift=p["shift"],
        mults=p["mults"],
        out_scale=p["out_scale"],
    )


def to_network(
    model: QNet, metadata: dict | None = None, schedule: bool = True, head: bool = True
) -> Network:
    """The chip network of a fused-stage model, validated (ProfileError) and scheduled.

    ``head=False`` leaves out the host GAP + dense head: the image ends at the last chip
    layer (e.g. an encoder whose raw output is the product).
    """
    if model.stage != "fused":
        raise ConversionError(
            f"export needs the fused stage (model.set_stage('fused')), found {model.stage!r}"
        )
    prof = model.profile
    in_bits = prof.activation_bits if prof.input_conversion == "round_shift" else 8
    layers: list[Layer] = []
    scales: list[float] = []
    with torch.no_grad():
        for node in model.nodes:
            src = node.inputs[0]
            in_shape = model.input_shape if src < 0 else layers[src].out_shape
            s_in = model.input_scale if src < 0 else scales[src]
            if node.op == "conv":
                layer, scale = _conv_layer(node, s_in, in_shape, prof.activation_bits)
            elif node.op == "maxpool":
                bits = in_bits if src < 0 else layers[src].act_bits
                layer, scale = _pool_layer(node, s_in, in_shape, bits), s_in
            else:
                s_b = model.input_scale if node.inputs[1] < 0 else scales[node.inputs[1]]
                layer = _add_layer(node, s_in, s_b, in_shape, prof.activation_bits)
                scale = layer.out_scale
            layers.append(layer)
            scales.append(scale)
    if head:
        _append_head(model, layers)
    meta = {"model_name": "qnet", "trained_with": "edge_sdk.train"}
    meta.update(metadata or {})
    net = Network(prof, tuple(model.input_shape), layers, meta)
    net.validate()
    if schedule:
        net.schedule = compute_schedule(net)
    return net


def _append_head(model: QNet, layers: list[Layer]) -> None:
    c = layers[-1].out_shape[2]
    n = model.dense.out_features
    last = len(layers) - 1
    layers.append(Layer("gap", "gap", (last,), layers[-1].out_shape, (1, 1, c)))
    layers.append(
        Layer(
            "dense",
            "dense",
            (last + 1,),
            (1, 1, c),
            (1, 1, n),
            dense_w=model.dense.weight.detach().float().numpy().copy(),
            dense_b=model.dense.bias.detach().float().numpy().copy(),
        )
    )


def weight_memory_bits(net: Network) -> int:
    """Chip weights and constants, bits x count (datasheet section 5): codes, scalars, biases."""
    p, total = net.profile, 0
    for layer in net.chip_layers:
        if layer.op != "conv":
            continue
        total += layer.codes.size * layer.weight_bits + layer.out_shape[2] * p.bias_bits
        if layer.scalars is not None:
            total += layer.scalars.size * p.scalar_bits
    return total


def torch_codes(model: QNet, frames: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Fused torch forward on uint8 NHWC frames: (logits, every chip node's output as NHWC int64)."""
    model.eval()
    with torch.no_grad():
        logits, outs = model(torch.from_numpy(np.ascontiguousarray(frames)), taps=True)
    return logits.numpy(), [o.permute(0, 2, 3, 1).numpy().astype(np.int64) for o in outs]
