"""The staged trainer: an interrupted run resumed from its checkpoint equals an uninterrupted one."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from train_toy_helpers import SPEC, Interrupt, interrupting_log  # noqa: E402
from train_toy_helpers import toy_data as _data  # noqa: E402

from edge_sdk.train import QNet, Stage, TrainConfig, evaluate, train  # noqa: E402
from edge_sdk.train.data import augment, generator  # noqa: E402


def _cfg(out, log=None) -> TrainConfig:
    stages = [
        Stage("float", 2, 1e-2),
        Stage("qweight", 1, 5e-3),
        Stage("calib", batches=2),
        Stage("qact", 1, 5e-3),
        Stage("fused", 2, 1e-3),
    ]
    return TrainConfig(stages, out_dir=str(out), batch_size=16, augment=True, progress=False, log=log)


def _run(out, interrupt_at=0):
    torch.manual_seed(0)
    model = QNet("nqe-1mb", (8, 8, 3), SPEC, classes=3)
    data = _data()
    try:
        train(model, data, data, _cfg(out, interrupting_log(interrupt_at)))
    except Interrupt:
        torch.manual_seed(123)  # a fresh process: other RNG state, a new model
        model = QNet("nqe-1mb", (8, 8, 3), SPEC, classes=3)
        train(model, data, data, _cfg(out))
    return model


@pytest.mark.parametrize("interrupt_at", [2, 5])
def test_resume_is_deterministic(tmp_path, interrupt_at):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b", interrupt_at)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert a.stage == b.stage == "fused"
    assert evaluate(a, _data()) == evaluate(b, _data())


def test_augment_is_seeded_and_keeps_pixels():
    x = torch.randint(0, 255, (5, 8, 8, 3), dtype=torch.uint8)
    a = augment(x, generator(1, 2))
    assert torch.equal(a, augment(x, generator(1, 2))) and a.dtype == torch.uint8
    assert torch.equal(augment(x, generator(3), pad=0, flip=False), x)
