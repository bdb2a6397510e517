"""Distillation teachers that are not torch models: a ``.tflite`` classifier.

    teacher = TFLiteTeacher("../shared/data/models/mlperf_tiny/pretrainedResnet.tflite")
    train(model, data, test, TrainConfig(plan, distill=0.5), teacher=teacher)

The interpreter comes from ``edge_sdk.litert.make_interpreter``.  Inputs are the
same uint8 NHWC batches the student sees, mapped to the model's input type
(float: ``x * scale + offset``; int8/uint8: its quantization parameters); outputs
are dequantized, and probabilities (a softmax output) are turned into log-probabilities
so they act as logits for the distillation loss.
"""

from __future__ import annotations

from pathlib import Path

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
    ) -> None:
        self.path = str(path)
        self.scale, self.offset, self.probabilities = scale, offset, probabilities
        self.interp = make_interpreter(self.path, num_threads=num_threads)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self._batch = 0

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
        q = np.round(x.astype(np.float32) * self.scale / (s or 1.0) + zp)
        info = np.iinfo(dtype)
        return np.clip(q, info.min, info.max).astype(dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        self._resize(len(arr))
        self.interp.set_tensor(self.inp["index"], self._input(arr))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"]).astype(np.float32)
        s, zp = self.out["quantization"]
        if self.out["dtype"] != np.float32 and s:
            y = (y - zp) * s
        y = y.reshape(len(arr), -1)
        if self.probabilities:
            y = np.log(np.clip(y, 1e-8, None))
        return torch.from_numpy(y)

    def eval(self) -> TFLiteTeacher:  # the trainer calls teacher.eval() like on a torch module
        return self
