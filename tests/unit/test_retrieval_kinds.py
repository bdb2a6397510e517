"""The optional ``kind`` column of a retrieval ground-truth CSV: mAP per query kind, in the results,
the table and the JSON, computed exactly as the overall mAP is over those queries."""

import csv

import numpy as np
import pytest
from PIL import Image

from edge_sdk.errors import DatasetError
from edge_sdk.retrieval.evalset import load_evalset
from edge_sdk.retrieval.evaluate import format_table, map_by_kind, run_eval


def _write_set(tmp_path, with_kind=True):
    rows = [
        ("a.png", 0, "db", ""),
        ("b.png", 1, "db", ""),
        ("qa_crop.png", 0, "query", "crop"),
        ("qb_crop.png", 1, "query", "crop"),
        ("qa_col.png", 0, "query", "colour"),
        ("qb_col.png", 1, "query", "colour"),
    ]
    for name, *_ in rows:
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    with open(tmp_path / "gt.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "group_id", "role"] + (["kind"] if with_kind else []))
        w.writerows([r if with_kind else r[:3] for r in rows])
    return load_evalset(tmp_path, tmp_path / "gt.csv")


def test_kinds_are_read_and_grouped(tmp_path):
    es = _write_set(tmp_path)
    assert es.kinds == ["", "", "crop", "crop", "colour", "colour"]
    groups = es.query_kinds()
    assert sorted(groups) == ["colour", "crop"]
    assert es.query_idx[groups["crop"]].tolist() == [2, 3]


def test_a_set_without_the_column_has_no_kinds(tmp_path):
    es = _write_set(tmp_path, with_kind=False)
    assert es.kinds is None and es.query_kinds() == {}
    assert map_by_kind(es, np.eye(6, dtype=np.float32)) == {}


def test_map_per_kind_matches_a_hand_ranking(tmp_path):
    es = _write_set(tmp_path)
    # db a=[1,0], b=[0,1]; crop queries match their originals, colour queries the other one
    d = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [0.2, 1], [1, 0.2]], np.float32)
    assert map_by_kind(es, d) == {"colour": pytest.approx(0.5), "crop": pytest.approx(1.0)}
    results = run_eval(es, {"m": lambda img: d[0]}, progress=False)  # a constant descriptor: ties
    assert set(results["m"]["map_by_kind"]) == {"colour", "crop"}
    table = format_table(results)
    assert "mAP by query kind" in table and "colour" in table


def test_a_bad_role_still_names_the_row(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "gt.csv").write_text("filename,group_id,role,kind\na.png,0,querry,crop\n")
    with pytest.raises(DatasetError, match="gt.csv:2: role"):
        load_evalset(tmp_path, tmp_path / "gt.csv")
