"""Verify a converted image: the emulator against the reference model on the same inputs.

Reports top-1 agreement with the reference ``.tflite`` (run by LiteRT), accuracy
when labels are given (also without a reference), per-layer SQNR of the chip's
taps against the reference's float graph (the image's ``quant`` metadata says
which float tensor each channel group stands for), and the first layer where
the SQNR drops by more than ``jump_db`` from the layer before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import ConversionError
from ..runtime import Device
from .data import load_images
from .float_exec import pixels_to_real, run_graph
from .importer import ImportedModel, import_tflite, run_litert
from .sqnr import db


@dataclass
class VerifyResult:
    images: int
    backend: str
    top1_agreement: Optional[float] = None
    accuracy: Optional[float] = None
    reference_accuracy: Optional[float] = None
    layer_sqnr_db: dict[str, float] = field(default_factory=dict)
    first_jump: Optional[dict[str, Any]] = None
    worst_layer: Optional[str] = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layer_sqnr_db"] = {
            k: (round(v, 3) if np.isfinite(v) else None) for k, v in self.layer_sqnr_db.items()
        }
        return d

    def summary(self) -> str:
        lines = [f"verified {self.images} images on the {self.backend} backend"]
        if self.top1_agreement is not None:
            lines.append(f"top-1 agreement with the reference: {100 * self.top1_agreement:.2f} %")
        if self.accuracy is not None:
            ref = (
                ""
                if self.reference_accuracy is None
                else f" (reference {100 * self.reference_accuracy:.2f} %)"
            )
            lines.append(f"accuracy: {100 * self.accuracy:.2f} %{ref}")
        if self.layer_sqnr_db:
            lines.append("per-layer SQNR vs the reference float model (dB):")
            lines += [f"  {k:12s} {v:7.2f}" for k, v in self.layer_sqnr_db.items()]
        if self.first_jump:
            j = self.first_jump
            lines.append(f"first error jump: {j['layer']} ({j['from_db']:.1f} -> {j['to_db']:.1f} dB)")
        if self.worst_layer:
            lines.append(f"lowest SQNR: {self.worst_layer}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _group_ref(group: dict, env: dict[int, np.ndarray]) -> np.ndarray:
    total = None
    for coef, tensor, sign in group["ref"]:
        v = env[tensor] if sign == 0 else np.maximum(sign * env[tensor], 0)
        total = coef * v if total is None else total + coef * v
    return np.maximum(total, 0) if group["act"] == "relu" else total


class _SqnrAccumulator:
    def __init__(self, quant: list[dict]) -> None:
        self.quant = quant
        self.stats: dict[str, list[float]] = {q["name"]: [0.0, 0.0] for q in quant}
        self.tensors = {t for q in quant for g in q["groups"] for _, t, _ in g["ref"]}

    def add(self, env: dict[int, np.ndarray], taps: dict[str, np.ndarray]) -> None:
        for q in self.quant:
            combined: dict[str, list] = {}
            for g in q["groups"]:
                c0, n = g["channels"]
                deq = taps[q["name"]][..., c0 : c0 + n].astype(np.float64) * np.asarray(
                    g["scale"], np.float64
                )
                entry = combined.setdefault(g["base"], [g, 0.0])
                entry[1] = entry[1] + deq
            for g, deq in combined.values():
                ref = _group_ref(g, env).astype(np.float64)
                self.stats[q["name"]][0] += float((ref**2).sum())
                self.stats[q["name"]][1] += float(((deq - ref) ** 2).sum())

    def result(self) -> dict[str, float]:
        return {k: db(s, n) for k, (s, n) in self.stats.items()}


def first_jump(sqnr: dict[str, float], jump_db: float) -> Optional[dict[str, Any]]:
    names = list(sqnr)
    for prev, cur in zip(names, names[1:]):
        if np.isfinite(sqnr[prev]) and sqnr[prev] - sqnr[cur] > jump_db:
            return {"layer": cur, "from_db": sqnr[prev], "to_db": sqnr[cur]}
    return None


def verify(
    image: Any,
    data: Any,
    *,
    reference: Any = None,
    labels: Optional[np.ndarray] = None,
    backend: str = "auto",
    limit: Optional[int] = None,
    batch: int = 32,
    jump_db: float = 6.0,
) -> VerifyResult:
    """Run the image on the emulator and compare (see the module docstring)."""
    dev = Device(backend).load(image)
    net = dev.network
    meta = net.metadata or {}
    # frames at the model's logical input size; the Device applies the image's input prep
    x, found = load_images(data, dev.model_input_shape, limit=limit, with_labels=True)
    labels = found if labels is None else np.asarray(labels)[: len(x)]
    ref = _reference(reference, meta)
    result = VerifyResult(len(x), dev.backend.name)
    acc = _SqnrAccumulator(meta.get("quant", [])) if ref is not None and meta.get("quant") else None
    outs = []
    for i in range(0, len(x), batch):
        run = dev.run(x[i : i + batch], taps=acc is not None)
        outs.append(run.output.reshape(len(run.output), -1))
        if acc is not None:
            env = run_graph(ref.graph, pixels_to_real(ref.graph, x[i : i + batch]), keep=acc.tensors)
            acc.add(env, run.taps)
    top1 = np.concatenate(outs).argmax(axis=1)
    if ref is not None:
        ref_top1 = run_litert(ref, x).reshape(len(x), -1).argmax(axis=1)
        result.top1_agreement = float((top1 == ref_top1).mean())
        if labels is not None:
            result.reference_accuracy = float((ref_top1 == labels).mean())
        if ref.sha256 != meta.get("provenance", {}).get("source_sha256"):
            result.warnings.append("the reference model is not the one this image was converted from")
    if labels is not None:
        result.accuracy = float((top1 == labels).mean())
    if acc is not None:
        result.layer_sqnr_db = acc.result()
        result.first_jump = first_jump(result.layer_sqnr_db, jump_db)
        result.worst_layer = min(result.layer_sqnr_db, key=result.layer_sqnr_db.get)
    return result


def _reference(reference: Any, meta: dict) -> Optional[ImportedModel]:
    if reference is None:
        return None
    if isinstance(reference, ImportedModel):
        return reference
    norm = meta.get("input", {}).get("normalization", {})
    try:
        return import_tflite(reference, input_scale=norm.get("scale"), input_offset=norm.get("offset"))
    except FileNotFoundError as exc:
        raise ConversionError(f"reference model not found: {exc}") from exc
