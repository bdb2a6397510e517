"""A toy nqe network, separable toy data and an interrupting logger, shared by the trainer tests."""

from __future__ import annotations

import torch

from edge_sdk.train.data import ArrayData

SPEC = [{"out": 4, "bits": 2}, {"op": "pool"}, {"out": 6, "bits": 1, "k": 1, "raw": True}]


class Interrupt(Exception):
    """Raised by ``interrupting_log`` to stop a run as a kill would."""


def toy_data() -> ArrayData:
    """40 8x8 images in 3 classes whose brightness tells the class apart."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (40,), generator=g)
    x = (torch.rand(40, 8, 8, 3, generator=g) * 60 + y[:, None, None, None] * 80).to(torch.uint8)
    return ArrayData(x, y)


def interrupting_log(at: int):
    """A ``TrainConfig.log`` that raises ``Interrupt`` on its ``at``-th line (0: never)."""
    calls = []

    def log(msg: str) -> None:
        calls.append(msg)
        if at and len(calls) == at:
            raise Interrupt

    return log
