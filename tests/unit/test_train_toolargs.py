"""The run options and stage plan shared by the training scripts (edge_sdk.train.toolargs)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from edge_sdk.train.toolargs import add_run_args, full_plan  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_plan_learning_rates():
    ap = argparse.ArgumentParser()
    add_run_args(ap, threads=1, lr=0.006, epochs={"float": 4, "qweight": 2, "qact": 3, "fused": 1})
    args = ap.parse_args(["--qact-epochs", "7"])
    assert (args.threads, args.seed, args.batch_size, args.distill) == (1, 0, 128, 0.0)
    plan = full_plan(args)
    assert [s.name for s in plan] == ["float", "qweight", "calib", "qact", "fused"]
    assert [s.epochs for s in plan if s.name != "calib"] == [4, 2, 7, 1]
    assert [s.lr for s in plan if s.name != "calib"] == pytest.approx([0.006, 0.002, 0.002, 0.0006])


@pytest.mark.parametrize("tool", ["train_mnist.py", "train_cifar10_nqe.py", "train_resnet8_2bit.py"])
def test_training_scripts_parse_their_options(tool):
    """Each script's --help runs (its options are declared without clashes)."""
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / tool), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "--qact-epochs" in out.stdout and "--export-only" in out.stdout
