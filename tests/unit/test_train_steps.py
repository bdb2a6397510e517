"""The step-based staged loop (edge_sdk.train.steps): stages in order, calibration, exact resume."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.train.model import QNet  # noqa: E402
from edge_sdk.train.steps import run_steps  # noqa: E402

SPEC = [{"out": 4, "bits": 2}, {"op": "pool"}, {"out": 4, "bits": 2, "raw": True}]
PLAN = [("float", 3, 1e-2), ("qweight", 2, 1e-2), ("calib", 0, 0.0), ("qact", 3, 5e-3), ("fused", 2, 1e-3)]


def _batch(si, step):
    rng = np.random.default_rng([7, si, step])
    return torch.from_numpy(rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))


class Killed(Exception):
    pass


def _run(tmp_path, plan, state=None, kill_at=None):
    torch.manual_seed(0)
    model = QNet("lightspeeur-2803", (8, 8, 3), SPEC, classes=1)
    stages = []

    def loss(si, step):
        if (si, step) == kill_at:
            raise Killed
        stages.append(plan[si][0])
        return {"total": model.features(_batch(si, step))[0].float().pow(2).mean()}

    def calibrate():
        model.set_stage("calib")
        model.eval()
        with torch.no_grad():
            model.features(_batch(99, 0))
        model.finish_calibration()

    history = run_steps(
        model, plan, tmp_path / "ckpt.pt", loss=loss, calibrate=calibrate,
        lr_at=lambda s, n, lr: lr, ckpt_every=2, state=state, extra={"args": {"x": 1}},
    )  # fmt: skip
    return model, history, stages


def test_every_stage_runs_its_steps_in_order_and_records_history(tmp_path):
    model, history, stages = _run(tmp_path, PLAN)
    assert stages == ["float"] * 3 + ["qweight"] * 2 + ["qact"] * 3 + ["fused"] * 2
    assert [(h["stage"], h["step"]) for h in history] == [
        ("float", 2), ("float", 3), ("qweight", 2), ("qact", 2), ("qact", 3), ("fused", 2),
    ]  # fmt: skip
    assert model.stage == "fused"
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert (ckpt["stage"], ckpt["step"], ckpt["args"]) == (len(PLAN), 0, {"x": 1})


def test_a_run_killed_mid_stage_resumes_to_the_uninterrupted_result(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _, _ = _run(tmp_path / "a", PLAN)
    with pytest.raises(Killed):
        _run(tmp_path / "b", PLAN, kill_at=(3, 2))  # during qact's third step, after the step-2 checkpoint
    state = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)
    assert (state["stage"], state["step"]) == (3, 2)
    resumed, history, stages = _run(tmp_path / "b", PLAN, state=state)
    assert stages == ["qact"] + ["fused"] * 2
    assert [h["step"] for h in history[-3:]] == [2, 3, 2]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
