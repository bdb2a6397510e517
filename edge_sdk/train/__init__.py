"""Quantization-aware training (torch, host only) for the chip profiles.

Needs the ``train`` extra (``pip install edge_sdk[train]``: torch, tqdm).  See
docs/training.md: layers and quantizers (``layers``, ``quant``), the fused integer
arithmetic (``integer``), the model (``model.QNet``), the staged flow with
checkpoints (``trainer``), data loading (``data``) and export to a
:class:`edge_sdk.network.Network` (``export``).
"""

from __future__ import annotations

from .data import ArrayData, load_cifar10, load_image_folder, load_mnist, load_npz
from .model import QNet
from .trainer import Stage, TrainConfig, calibrate, evaluate, train

__all__ = [
    "ArrayData",
    "QNet",
    "Stage",
    "TrainConfig",
    "calibrate",
    "evaluate",
    "load_cifar10",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "train",
]
