"""The .tflite distillation teacher gives the MLPerf-Tiny ResNet-8's accuracy on exact CIFAR-10 images."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ai_edge_litert")

from edge_sdk.train.teacher import TFLiteTeacher  # noqa: E402


@pytest.mark.parametrize("name", ["pretrainedResnet.tflite", "pretrainedResnet_quant.tflite"])
def test_tflite_teacher_accuracy(shared_data, name):
    with np.load(shared_data / "cifar10" / "cifar10_test.npz") as d:
        x, y = d["x_exact"][:200], d["y"][d["idx_exact"][:200]]
    teacher = TFLiteTeacher(shared_data / "models" / "mlperf_tiny" / name)
    logits = teacher(torch.from_numpy(x))
    assert logits.shape == (200, 10)
    assert (logits.argmax(1).numpy() == y).mean() >= 0.85
