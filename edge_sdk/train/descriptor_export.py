"""Export the distilled descriptor network: firmware image, bit-exactness check, whitening, model card.

``export_descriptor`` (``tools/train_descriptor.py export``):

* writes the fused student as a lightspeeur firmware image ending at the raw ``embed`` layer,
  with retrieval metadata (feature layer, teacher, pooling) and a PCA-whitening fitted on chip
  descriptors of *training* mosaics (``edge_sdk.retrieval.Whitening``);
* checks the image on the Device against the fused torch model, bit for bit, on CIFAR-10 *test*
  mosaics (never trained on);
* measures fidelity to the float teacher on the same test mosaics: cosine of the crop descriptors
  (square-root pooled, L2-normalized).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..firmware import load_firmware, write_firmware
from ..retrieval.extractors import ChipExtractor
from ..retrieval.pooling import l2_normalize, pool
from ..retrieval.rnip import Whitening
from ..runtime import Device
from .descriptor import mosaic_samples
from .export import to_network, torch_codes, weight_memory_bits
from .publish import layer_table


def chip_descriptors(extractor: ChipExtractor, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Crop descriptors (sqrt-pooled feature map, L2-normalized) of chip-sized frames."""
    out = [extractor.features(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    return l2_normalize(pool(np.concatenate(out), "sqrt", axis=(1, 2)))


def bit_exact_check(model, blob: bytes, frames: np.ndarray) -> dict:
    dev = Device().load(load_firmware(blob))
    chip = dev.run(frames).codes
    _, outs = torch_codes(model, frames)
    return {"frames": len(frames), "mismatches": int((chip != outs[-1]).sum()), "values": int(chip.size)}


def teacher_fidelity(extractor: ChipExtractor, teacher: TeacherMaps, canvases: np.ndarray, frames) -> dict:
    """Mean cosine of chip vs teacher crop descriptors (teacher at ``canvases``, chip at ``frames``)."""
    codes = teacher(canvases)
    teach = l2_normalize(pool(codes.astype(np.float32) * teacher.scale, "sqrt", axis=(1, 2)))
    cos = np.sum(chip_descriptors(extractor, frames) * teach, axis=1)
    return {"frames": len(frames), "descriptor_cosine_mean": round(float(cos.mean()), 4)}


class TeacherMaps:
    """The float teacher's feature map as uint8 codes (N, 7, 7, 1024) for uint8 (N, 224, 224, 3) canvases.

    ``scale``: the real value of one code.  The interpreter is loaded once and reused per call.
    """

    def __init__(self, model_path: str, tensor_name: str, batch: int = 16) -> None:
        from ..litert import make_interpreter
        from ..retrieval.extractors import _find_tensor

        self.interp = make_interpreter(model_path, num_threads=1, preserve_all_tensors=True)
        self._in = self.interp.get_input_details()[0]["index"]
        tensor = _find_tensor(self.interp, tensor_name, model_path)
        self._out, self.scale, self.batch = tensor["index"], float(tensor["quantization"][0]), batch

    def __call__(self, canvases: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(canvases), self.batch):
            x = canvases[i : i + self.batch]
            self.interp.resize_tensor_input(self._in, list(x.shape))
            self.interp.allocate_tensors()
            self.interp.set_tensor(self._in, x)
            self.interp.invoke()
            out.append(self.interp.get_tensor(self._out).copy())
        return np.concatenate(out)


def export_descriptor(
    model,
    run_dir: Path,
    firmware_path: Path,
    train_frames: np.ndarray,
    test_images: np.ndarray,
    *,
    teacher: str,
    teacher_tensor: str,
    command: str,
    n_test: int = 256,
    whitening_dim: int = 256,
) -> dict:
    state = torch.load(run_dir / "ckpt.pt", weights_only=False)
    model.load_state_dict(state["model"])
    model.set_stage("fused")
    model.eval()
    retrieval = {
        "feature_layer": model.nodes[-1].name,
        "teacher": Path(teacher).name,
        "teacher_tensor": teacher_tensor,
        "crop_moment": "sqrt",
    }
    net = to_network(model, {"model_name": firmware_path.stem, "retrieval": retrieval}, head=False)
    chip = ChipExtractor(write_firmware(net))
    t0 = time.time()
    whitening = Whitening.fit(chip_descriptors(chip, train_frames), dim=whitening_dim)
    whiten_seconds = time.time() - t0
    # the whitening only adds metadata: the chip network (and ``chip``) stay as they are
    net.metadata["retrieval"]["whitening"] = whitening.to_metadata()
    net.metadata["retrieval"]["whitening_fit"] = (
        f"{len(train_frames)} training mosaics (chip descriptors), {whitening_dim} dims"
    )
    blob = write_firmware(net)
    firmware_path.write_bytes(blob)
    big, small = mosaic_samples(test_images, 0, n_test, seed=987_654)
    figures = {
        "firmware": firmware_path.name,
        "firmware_bytes": len(blob),
        "weight_memory_bits": weight_memory_bits(net),
        "bit_exact": bit_exact_check(model, blob, small[:64]),
        "teacher_fidelity_test_mosaics": teacher_fidelity(
            chip, TeacherMaps(teacher, teacher_tensor), big, small
        ),
        "whitening_fit_seconds": round(whiten_seconds, 1),
        "command": command,
    }
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    firmware_path.with_suffix(".md").write_text(model_card(net, figures, state.get("history", [])))
    print(json.dumps(figures, indent=2))
    return figures


def _n_3x3_convs(net) -> int:
    return sum(1 for layer in net.layers if layer.op == "conv" and layer.kernel == 3)


def model_card(net, f: dict, history: list) -> str:
    rows = [h for h in history if h["step"] % 500 == 0 or h is history[-1]]
    return "\n".join(
        [
            f"# {Path(f['firmware']).stem} (lightspeeur-2803): 2-bit retrieval descriptor network",
            "",
            f"Firmware `{f['firmware']}` ({f['firmware_bytes']:,} bytes), distilled by `tools/train_descriptor.py` "
            "from the float Coral MobileNet-V1 1.0 embedding extractor (its `Conv2d_13_pointwise` 7x7x1024 map).",
            "",
            "## What it is",
            "",
            f"- 112x112 RGB crop -> {_n_3x3_convs(net)} 3x3 conv layers with 2-bit ternary weights (one 12-bit "
            "scalar per kernel), "
            "5-bit activations, 4 max-pools -> raw 1x1 conv to a 7x7x1024 map: the teacher's grid and width, so "
            "RNIP / NIP pool it exactly like the teacher's.",
            f"- Chip weights and constants (bits x count): {f['weight_memory_bits']:,} bits.",
            f"- Firmware vs fused torch model: {f['bit_exact']['mismatches']} mismatching values of "
            f"{f['bit_exact']['values']:,} ({f['bit_exact']['frames']} CIFAR-10 test mosaics).",
            f"- Mean cosine of chip vs teacher crop descriptors on {f['teacher_fidelity_test_mosaics']['frames']} "
            f"CIFAR-10 test mosaics: {f['teacher_fidelity_test_mosaics']['descriptor_cosine_mean']}.",
            "- Metadata `retrieval.whitening`: PCA-whitening fitted on chip descriptors of training mosaics.",
            "",
            "## Data",
            "",
            "Training: CIFAR-10 training images only (20,000 JPEG-degraded + 7,897 exact), as k x k mosaics "
            "(k = 1..4) seen by the teacher at 224x224 and by the student at 112x112. The retrieval "
            "evaluation images (UKBench, Kodak, the hires photos, the copy-detection set built from them) are "
            "never used for training.",
            "",
            "## Layers",
            "",
            *layer_table(net),
            "",
            "## Reproduce",
            "",
            "```",
            f["command"],
            "```",
            "",
            "## Training history (every 500 steps)",
            "",
            "| stage | step | loss | regress | cosine | relational | seconds (last 100 steps) |",
            "|---|---|---|---|---|---|---|",
            *[
                f"| {h['stage']} | {h['step']} | {h['total']} | {h['regress']} | {h['cosine']} | "
                f"{h['relational']} | {h['seconds']} |"
                for h in rows
            ],
            "",
        ]
    )
