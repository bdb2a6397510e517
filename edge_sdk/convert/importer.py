"""Model import: a ``.tflite`` file -> canonical float graph (+ how to feed the original to LiteRT)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .graph import Graph
from .handlers import build_graph
from .passes import canonicalize
from .tflite_reader import RawModel, read_tflite


@dataclass
class ImportedModel:
    """The float graph of a model plus its provenance."""

    graph: Graph  # canonical (fused) graph
    raw_graph: Graph  # one node per TFLite op (before fusion)
    raw: RawModel
    source: bytes
    name: str

    @property
    def sha256(self) -> str:
        return self.raw.sha256

    def litert_input(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixel frames -> what the .tflite's input tensor stores (for LiteRT)."""
        dtype = self.graph.input_dtype
        if dtype == "uint8":
            return pixels.astype(np.uint8)
        if dtype == "int8":
            return (pixels.astype(np.int16) - 128).astype(np.int8)
        return (
            pixels.astype(np.float32) * np.float32(self.graph.input_scale)
            + np.float32(self.graph.input_offset)
        ).astype(np.float32)

    def litert_output(self, value: np.ndarray) -> np.ndarray:
        """A LiteRT output tensor -> real values (dequantized when the model's output is quantized)."""
        if self.graph.output_dtype in ("uint8", "int8"):
            return (value.astype(np.float32) - self.graph.output_zero_point) * self.graph.output_scale
        return value.astype(np.float32)


def import_tflite(
    model: Union[str, Path, bytes],
    *,
    name: Optional[str] = None,
    input_scale: Optional[Any] = None,
    input_offset: Optional[Any] = None,
) -> ImportedModel:
    """Parse and canonicalize a .tflite model.

    ``input_scale``/``input_offset`` override the input normalization of float
    models (real input = pixel * scale + offset; default: the model takes raw
    0..255 pixels).  Quantized models carry theirs in the input tensor.
    """
    source = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    if name is None:
        name = Path(model).stem if not isinstance(model, (bytes, bytearray)) else "model"
    raw = read_tflite(source)
    raw_graph = build_graph(raw, name)
    if input_scale is not None:
        raw_graph.input_scale = (
            np.asarray(input_scale, np.float32) if np.ndim(input_scale) else float(input_scale)
        )
    if input_offset is not None:
        raw_graph.input_offset = (
            np.asarray(input_offset, np.float32) if np.ndim(input_offset) else float(input_offset)
        )
    return ImportedModel(canonicalize(raw_graph), raw_graph, raw, source, name)


def run_litert(imported: ImportedModel, pixels: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Run the original .tflite with LiteRT on uint8 frames (one at a time): real-valued outputs."""
    from ..litert import make_interpreter

    interp = make_interpreter(imported.source, num_threads=num_threads)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    feed = imported.litert_input(pixels)
    results = []
    for frame in feed:
        interp.set_tensor(inp["index"], frame[None])
        interp.invoke()
        results.append(imported.litert_output(interp.get_tensor(out["index"])[0]))
    return np.stack(results)
