"""Publish a trained model: export, firmware image, accuracy on the chip, model card.

The accuracy in the model card is measured by running the *firmware image* (written
with ``edge_sdk.firmware.write_firmware`` and read back with ``load_firmware``) on a
``Device`` (the Cython emulator if built, else the numpy reference backend), not the
torch model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..network import Network
from ..runtime import Device
from .data import ArrayData
from .export import to_network, weight_memory_bits
from .model import QNet
from .trainer import evaluate

try:
    from tqdm import tqdm
except ImportError:

    def tqdm(it, **_):
        return it


def chip_accuracy(
    image, data: ArrayData, backend: str = "auto", chunk: int = 100, progress: bool = True
) -> tuple[float, np.ndarray]:
    """Top-1 accuracy of a firmware image / Network run on a Device; also the predictions."""
    dev = Device(backend).load(image)
    x = data.x.numpy()
    preds = []
    for i in tqdm(range(0, len(x), chunk), desc="chip", disable=not progress, mininterval=10):
        out = dev.run(np.ascontiguousarray(x[i : i + chunk])).output
        preds.append(out.reshape(out.shape[0], -1).argmax(1))
    pred = np.concatenate(preds)
    return float((pred == data.y.numpy()).mean()), pred


def layer_table(net: Network) -> list[str]:
    """Markdown rows: layer, op, shape, weight bits, shift, memory bits."""
    p = net.profile
    rows = [
        "| # | layer | op | out shape | weight bits | groups | output | shift | weight+const bits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, layer in enumerate(net.layers):
        bits = 0
        if layer.op == "conv":
            bits = layer.codes.size * layer.weight_bits + layer.out_shape[2] * p.bias_bits
            bits += 0 if layer.scalars is None else layer.scalars.size * p.scalar_bits
        where = "chip" if layer.on_chip else "host"
        rows.append(
            f"| {i} | {layer.name} | {layer.op} ({where}) | {tuple(layer.out_shape)} | "
            f"{layer.weight_bits or '-'} | {layer.groups} | {layer.output if layer.on_chip else '-'} | "
            f"{layer.shift if layer.on_chip else '-'} | {bits or '-'} |"
        )
    return rows


def publish(
    model: QNet,
    run_dir: Path,
    firmware_path: Path,
    test_data: ArrayData,
    *,
    name: str,
    data_desc: str,
    command: str,
    backend: str = "auto",
    extra: Optional[dict] = None,
    labels: Optional[list] = None,
) -> dict:
    """Export the fused model, write the firmware and its model card; returns the measured figures."""
    from ..firmware import load_firmware, write_firmware

    model.set_stage("fused")
    history = _history(run_dir)
    meta = {"model_name": name, "classes": int(model.dense.out_features)}
    if labels is not None:
        meta["labels"] = [str(v) for v in labels]  # class names: what the camera app and demo print
    net = to_network(model, meta)
    blob = write_firmware(net)
    firmware_path.parent.mkdir(parents=True, exist_ok=True)
    firmware_path.write_bytes(blob)
    t0 = time.time()
    acc, _ = chip_accuracy(load_firmware(firmware_path), test_data, backend)
    figures = {
        "name": name,
        "profile": net.profile.id,
        "firmware": firmware_path.name,
        "firmware_bytes": len(blob),
        "chip_accuracy": round(acc, 4),
        "test_images": len(test_data),
        "torch_fused_accuracy": round(evaluate(model, test_data), 4),
        "weight_memory_bits": weight_memory_bits(net),
        "weight_sram_bits": net.profile.weight_sram_bytes * 8,
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "eval_seconds": round(time.time() - t0, 1),
        "backend": Device(backend).backend.name,
        "command": command,
    }
    figures.update(extra or {})
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    firmware_path.with_suffix(".md").write_text(model_card(net, model, figures, history, data_desc))
    print(json.dumps(figures, indent=2))
    return figures


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "ckpt.pt"
    return torch.load(path, weights_only=False).get("history", []) if path.is_file() else []


def _cell(v) -> str:
    """A history value for the table: '-' where there is none (e.g. the loss of a weight average)."""
    return "-" if v is None else str(v)


def model_card(net: Network, model: QNet, f: dict, history: list[dict], data_desc: str) -> str:
    """The model card (markdown) written next to the firmware image."""
    wbits = sorted({layer.weight_bits for layer in net.chip_layers if layer.op == "conv"})
    lines = [
        f"# {f['name']} ({f['profile']})",
        "",
        f"Firmware image `{f['firmware']}` ({f['firmware_bytes']:,} bytes), trained with `edge_sdk.train` "
        "(quantization-aware, staged: float -> quantized weights -> cap calibration -> quantized activations -> "
        "fused integer arithmetic; docs/training.md).",
        "",
        "## Figures",
        "",
        f"- **Top-1 accuracy on the chip: {100 * f['chip_accuracy']:.2f} %** on {f['test_images']:,} test images, "
        f"measured by running this firmware image on the `{f['backend']}` backend (Device), not the torch model.",
        f"- torch fused (integer) model on the same images: {100 * f['torch_fused_accuracy']:.2f} %.",
        f"- Weight bits per conv layer: {wbits}; activations {net.profile.activation_bits}-bit.",
        f"- Chip weights and constants (codes + scalars + biases, bits x count): {f['weight_memory_bits']:,} bits "
        f"= {f['weight_memory_bits'] / 8:,.0f} bytes (weight SRAM {f['weight_sram_bits']:,} bits).",
        f"- Host head: GAP + dense {tuple(net.layers[-1].dense_w.shape)} float32 "
        f"({net.layers[-1].dense_w.size + net.layers[-1].dense_b.size:,} parameters, not on chip).",
        f"- Training time: {f['train_seconds'] / 60:.1f} min wall time on a shared 2-core CPU (nice 19).",
        "",
        "## Data",
        "",
        data_desc,
        "",
        "## Reproduce",
        "",
        "```",
        f["command"],
        "```",
        "",
        "The run checkpoints every epoch and resumes when started again with the same command.",
        "",
        "## Layers",
        "",
        *layer_table(net),
        "",
        "## Training history",
        "",
        "| stage | epoch | loss | test acc (torch) | seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {h['stage']} | {h['epoch']} | {_cell(h['loss'])} | {_cell(h['val_acc'])} | {h['seconds']} |"
        for h in history
    ]
    return "\n".join(lines) + "\n"
