"""Tail weight averaging in the fused stage (edge_sdk.train.averaging)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from train_toy_helpers import SPEC, Interrupt, interrupting_log  # noqa: E402
from train_toy_helpers import toy_data as _data  # noqa: E402

from edge_sdk.runtime import Device  # noqa: E402
from edge_sdk.train import QNet, Stage, TrainConfig, train  # noqa: E402
from edge_sdk.train.averaging import ParamAverage, check_average_stage  # noqa: E402
from edge_sdk.train.export import to_network, torch_codes  # noqa: E402


def _cfg(out, log=None) -> TrainConfig:
    stages = [
        Stage("float", 1, 1e-2),
        Stage("calib", batches=2),
        Stage("qact", 1, 5e-3),
        Stage("fused", 3, 1e-2, average_last=2),
    ]
    return TrainConfig(stages, out_dir=str(out), batch_size=8, average_every=2, progress=False, log=log)


def _model() -> QNet:
    torch.manual_seed(0)
    return QNet("nqe-1mb", (8, 8, 3), SPEC, classes=3)


def test_the_mean_of_the_snapshots_is_applied():
    a, b = _model(), _model()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    avg = ParamAverage()
    avg.add(a)
    avg.add(b)
    expect = {k: (p.detach() + 0.5) for k, p in a.named_parameters()}
    avg.apply(a)
    for k, p in a.named_parameters():
        assert torch.allclose(p, expect[k]), k
    with pytest.raises(ValueError, match="no snapshots"):
        ParamAverage().apply(a)


def test_averaging_is_refused_where_statistics_move():
    with pytest.raises(ValueError, match="frozen normalization statistics.*'qact'"):
        check_average_stage("qact", 2, 5)
    with pytest.raises(ValueError, match="longer than"):
        check_average_stage("fused", 4, 3)
    check_average_stage("qact", 0, 5)  # no averaging: any stage


def test_stage_ends_with_the_average_of_its_window(tmp_path, monkeypatch):
    snaps = []
    real_add = ParamAverage.add

    def record(self, model):
        snaps.append({k: p.detach().clone() for k, p in model.named_parameters()})
        real_add(self, model)

    monkeypatch.setattr(ParamAverage, "add", record)
    history = []
    model = _model()
    train(model, _data(), _data(), _cfg(tmp_path, history.append))
    # 40 images in batches of 8: 5 steps per epoch, a snapshot every 2 steps, last 2 of 3 epochs
    assert len(snaps) == 4
    for k, p in model.named_parameters():
        mean = torch.stack([s[k].double() for s in snaps]).mean(0).to(p.dtype)
        assert torch.allclose(p, mean, atol=1e-6), k
    assert '"averaged_epochs": 2' in history[-1] and '"snapshots": 4' in history[-1]


@pytest.mark.parametrize("interrupt_at", [4, 5, 6, 7])
def test_resume_inside_and_after_the_window_is_exact(tmp_path, interrupt_at):
    """Stopped as the log line is written, before that step's checkpoint: fused epoch 1 (log line 4;
    resumes before the window), epoch 2 (5; resumes at the window's start), epoch 3 (6; resumes
    inside the window, its snapshots from the checkpoint) or the average (7; resumes after the last
    epoch, before the average): each run ends with the uninterrupted run's averaged model."""
    ref = _model()
    train(ref, _data(), _data(), _cfg(tmp_path / "ref"))
    with pytest.raises(Interrupt):
        train(_model(), _data(), _data(), _cfg(tmp_path / "cut", interrupting_log(interrupt_at)))
    torch.manual_seed(7)
    resumed = QNet("nqe-1mb", (8, 8, 3), SPEC, classes=3)
    train(resumed, _data(), _data(), _cfg(tmp_path / "cut"))
    for k, v in ref.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_averaged_model_is_still_exact_on_the_chip(tmp_path):
    model = _model()
    train(model, _data(), _data(), _cfg(tmp_path))
    frames = _data().x[:5].numpy()
    logits, outs = torch_codes(model, frames)
    dev = Device("reference").load(to_network(model))
    for n, frame in enumerate(frames):
        res = dev.run(frame)
        assert np.array_equal(res.codes, outs[-1][n])
        np.testing.assert_allclose(res.output, logits[n], rtol=1e-4, atol=1e-4)


def test_the_model_card_lists_the_average(tmp_path):
    from edge_sdk.train.publish import publish

    model = _model()
    train(model, _data(), _data(), _cfg(tmp_path))
    fw = tmp_path / "toy.edgefw"
    figures = publish(
        model,
        tmp_path,
        fw,
        _data(),
        name="toy",
        data_desc="toy data",
        command="train toy",
        backend="reference",
    )
    card = fw.with_suffix(".md").read_text()
    assert "| fused | mean of last 2 | - |" in card
    assert figures["chip_accuracy"] == figures["torch_fused_accuracy"]
