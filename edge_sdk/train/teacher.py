"""Distillation teachers that are not torch models: a ``.tflite`` classifier.

    teacher = TFLiteTeacher("../shared/data/models/mlperf_tiny/pretrainedResnet.tflite")
    train(model, data, test, TrainConfig(plan, distill=0.5), teacher=teacher)

The interpreter comes from ``edge_sdk.litert.make_interpreter``.  Inputs are the
same uint8 NHWC batches the student sees, mapped to the model's input type
(float: ``x * scale + offset``; int8/uint8: its quantization parameters); outputs
are dequantized, and probabilities (a softmax output) are turned into log-probabilities
so they act as logits for the distillation loss.  ``tensor`` reads an inner tensor instead
of the output (e.g. the logits before a uint8 softmax, whose many zeros carry no ranking),
and ``input_crop`` = (H, W) feeds the top-left H x W of each frame (student frames that
carry host padding at the bottom and right).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..litert import make_interpreter


class TFLiteTeacher:
    """Logits of a .tflite classifier for uint8 NHWC torch batches (no gradients)."""

    def __init__(
        self,
        path: str | Path,
        *,
        scale: float = 1.0,
        offset: float = 0.0,
        num_threads: int = 1,
        probabilities: bool = True,
        tensor: Optional[str] = None,
        input_crop: Optional[tuple[int, int]] = None,
    ) -> None:
        self.path = str(path)
        self.scale, self.offset, self.probabilities = scale, offset, probabilities
        self.input_crop = input_crop
        self.interp = make_interpreter(self.path, num_threads=num_threads, preserve_all_tensors=bool(tensor))
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        if tensor:
            from ..retrieval.extractors import _find_tensor

            self.out = _find_tensor(self.interp, tensor, self.path)
            self.probabilities = False
        self._batch = 0
        self._per_frame = False

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interp.resize_tensor_input(self.inp["index"], [n, *self.inp["shape"][1:]])
            self.interp.allocate_tensors()
            self._batch = n

    def _input(self, x: np.ndarray) -> np.ndarray:
        dtype = self.inp["dtype"]
        if dtype == np.float32:
            return (x.astype(np.float32) * self.scale + self.offset).astype(np.float32)
        s, zp = self.inp["quantization"]
        q = np.round((x.astype(np.float32) * self.scale + self.offset) / (s or 1.0) + zp)
        info = np.iinfo(dtype)
        return np.clip(q, info.min, info.max).astype(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if self.input_crop is not None:
            arr = np.ascontiguousarray(arr[:, : self.input_crop[0], : self.input_crop[1]])
        y = self._run(self._input(arr)).astype(np.float32)
        s, zp = self.out["quantization"]
        if self.out["dtype"] != np.float32 and s:
            y = (y - zp) * s
        y = y.reshape(len(arr), -1)
        if self.probabilities:
            y = np.log(np.clip(y, 1e-8, None))
        return torch.from_numpy(y)

    def _run(self, q: np.ndarray) -> np.ndarray:
        if not self._per_frame:
            try:
                self._resize(len(q))
            except RuntimeError:  # a fixed-shape op (e.g. a Reshape to [1, N]) rules out batching
                self._per_frame, self._batch = True, -1
        if self._per_frame:
            self._resize(1)
            return np.concatenate([self._invoke(q[i : i + 1]) for i in range(len(q))])
        return self._invoke(q)

    def _invoke(self, q: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self.inp["index"], q)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"]).copy()

    def eval(self) -> TFLiteTeacher:  # the trainer calls teacher.eval() like on a torch module
        return self
