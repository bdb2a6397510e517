"""Bit-shift normalization in training: the exponent k and when it may change."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edge_sdk.train import QNet  # noqa: E402
from edge_sdk.train.layers import BitShiftNorm  # noqa: E402


def _acc(scale: float) -> torch.Tensor:
    return torch.randn(16, 4, 6, 6, generator=torch.Generator().manual_seed(0)) * scale


def test_k_follows_the_running_sigma():
    bsn = BitShiftNorm(4, tau=1.0).train()
    bsn(_acc(32.0))  # first batch initializes: sigma ~ 32 -> k = 5
    assert int(bsn.k) == 5
    y = bsn(_acc(32.0))
    assert 0.8 < float(y.detach().std()) < 1.2  # about tau output units


@pytest.mark.parametrize(("policy", "k_after"), [("track", 7), ("calibrated", 5)])
def test_calibrated_policy_fixes_k_from_the_qact_stage(policy, k_after):
    model = QNet("nqe-1mb", (6, 6, 4), [{"out": 4, "bits": 2, "raw": True}], classes=2, bsn_shift=policy)
    conv = model.nodes[0]
    conv.set_stage("qweight")
    conv.bsn.train()
    conv.bsn(_acc(32.0))
    assert int(conv.bsn.k) == 5
    conv.set_stage("qact")
    for _ in range(60):  # the accumulator grows 4x: the EMA follows, k only if allowed
        conv.bsn(_acc(128.0))
    assert float(conv.bsn.running_sigma) > 100
    assert int(conv.bsn.k) == k_after


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="shift policy.*'sometimes'"):
        BitShiftNorm(4, shift="sometimes")
