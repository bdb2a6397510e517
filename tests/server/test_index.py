"""The descriptor index: exact top-k against numpy, Hamming, remove, persist/reload."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.errors import InputError
from edge_sdk.server.index import DescriptorIndex, IndexSet, make_index, to_search_space
from edge_sdk.server.ingest import descriptor_blob
from edge_sdk.transport.descriptor import encode_descriptor


def unit(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(kind, d=64, n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = unit(rng, n, d)
    s = IndexSet(None)
    for i, v in enumerate(x, start=1):
        k, dim, blob = descriptor_blob(encode_descriptor(v, kind))
        s.add(i, k, dim, blob, {"device": "cam1", "frame": i, "ts": i, "thumb": f"t/{i}.png"})
    return s, x


@pytest.mark.parametrize("kind", ["f32", "f16", "i8"])
def test_inner_product_topk_matches_brute_force(kind):
    s, x = build(kind)
    ix = s.get(kind, 64)
    q = x[17]
    hits = ix.search(to_search_space(kind, 64, descriptor_blob(encode_descriptor(q, kind))[2]), 5)
    db = np.stack([to_search_space(kind, 64, descriptor_blob(encode_descriptor(v, kind))[2]) for v in x])
    qv = to_search_space(kind, 64, descriptor_blob(encode_descriptor(q, kind))[2])
    want = np.argsort(-(db @ qv))[:5] + 1
    assert [h.id for h in hits] == list(want)
    assert hits[0].id == 18 and hits[0].score == pytest.approx(1.0, abs=0.02)
    assert hits[0].meta == {"device": "cam1", "frame": 18, "ts": 18, "thumb": "t/18.png"}
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_hamming_topk_matches_brute_force():
    s, x = build("bin")
    ix = s.get("bin", 64)
    bits = (x > 0).astype(np.uint8)
    q = np.packbits(bits[3])
    hits = ix.search(q, 4)
    ham = (bits != bits[3]).sum(axis=1)
    assert hits[0].id == 4 and hits[0].distance == 0 and hits[0].score == 1.0
    assert sorted(h.distance for h in hits) == sorted(ham)[:4]
    assert all(h.score == pytest.approx(1 - 2 * h.distance / 64) for h in hits)


def test_remove_and_idempotent_add():
    s, x = build("f16", n=10)
    ix = s.get("f16", 64)
    assert len(ix) == 10
    ix.add([3], to_search_space("f16", 64, descriptor_blob(encode_descriptor(x[0], "f16"))[2])[None], [{}])
    assert len(ix) == 10  # id 3 already present: ignored
    assert s.remove([3, 999]) == 1
    hits = ix.search(to_search_space("f16", 64, descriptor_blob(encode_descriptor(x[2], "f16"))[2]), 10)
    assert 3 not in [h.id for h in hits] and len(hits) == 9


@pytest.mark.parametrize("kind", ["f16", "bin"])
def test_persist_and_reload(tmp_path, kind):
    s, x = build(kind, n=30)
    s.dir = tmp_path
    s.remove([7])
    s.save()
    again = IndexSet(tmp_path)
    assert again.load()
    assert again.total() == 29 and again.max_id() == 30
    q = to_search_space(kind, 64, descriptor_blob(encode_descriptor(x[10], kind))[2])
    assert [h.id for h in again.get(kind, 64).search(q, 3)] == [h.id for h in s.get(kind, 64).search(q, 3)]


def test_inconsistent_saved_index_is_reported_for_rebuild(tmp_path):
    s, _ = build("f16", n=5)
    s.dir = tmp_path
    s.save()
    meta = tmp_path / "f16-64.meta.json"
    meta.write_text(meta.read_text().replace('"1": {', '"99": {"x": 1}, "1": {'))
    assert DescriptorIndex.load(tmp_path / "f16-64") is None
    assert not IndexSet(tmp_path).load()


def test_bad_kinds_and_dims():
    with pytest.raises(InputError, match="multiple of 8"):
        make_index("bin", 12)
    with pytest.raises(InputError, match="expected one of"):
        make_index("f64", 12)
    with pytest.raises(InputError, match="expected 8 elements, found 4"):
        to_search_space("f32", 8, b"\0" * 16)


def test_empty_index_search_returns_nothing():
    assert make_index("f32", 4).search(np.ones(4, np.float32), 5) == []
