"""CIFAR-10 class retrieval end to end (`edge-sdk retrieval-eval --cifar10`) on a subset, float teacher."""

import json

import numpy as np
import pytest
from conftest import require  # tests/conftest.py (pytest puts tests/ on sys.path)

from edge_sdk.cli import main
from edge_sdk.retrieval.cli import DEFAULT_TEACHER
from edge_sdk.retrieval.evalset import load_cifar10

pytest.importorskip("ai_edge_litert")


def test_cifar10_teacher_whole_image_is_far_above_chance(shared_data, tmp_path, capsys):
    cifar, teacher = shared_data / "cifar10", shared_data / DEFAULT_TEACHER
    require((cifar / "cifar10_test.npz").is_file(), f"CIFAR-10 not found in {cifar}")
    require(teacher.is_file(), f"float teacher not found: {teacher}")
    limits = ["--query-limit", "50", "--db-limit", "500"]
    out = tmp_path / "cifar.json"
    argv = ["retrieval-eval", "--cifar10", str(cifar), *limits, "--methods", "teacher-whole"]
    assert main(argv + ["--teacher", str(teacher), "--quiet", "--json", str(out)]) == 0
    assert "50 queries x 500 exact database images" in capsys.readouterr().out
    m = json.loads(out.read_text())["teacher-whole"]["encodings"]["float"]
    # chance: a random ranking scores the fraction of relevant database items (~0.1 with 10 classes)
    ev = load_cifar10(cifar, query_limit=50, db_limit=500)
    q, db = ev.groups[ev.query_idx], ev.groups[ev.db_idx]
    chance = float(np.mean([(db == g).mean() for g in q]))
    assert 0.08 < chance < 0.12
    assert m["mAP"] > 2.5 * chance, m  # measured 0.37 (50 x 500)
    assert m["mP@1"] > 0.4 and m["mP@10"] > 0.35, m
    assert m["mAP@1000"] == m["mAP"]  # the database is shorter than 1000
