"""Descriptor index on faiss-cpu, behind a small interface.

Two exact (brute-force) index kinds, chosen by descriptor kind:

* ``f32`` / ``f16`` / ``i8`` -> :class:`InnerProductIndex` (``IndexFlatIP``).  Descriptors
  are L2-normalised on the device, so the inner product is the cosine similarity; int8
  codes are scaled by 1/127 so their scores are on the same scale.
* ``bin`` (packed sign bits) -> :class:`HammingIndex` (``IndexBinaryFlat``).  The score
  reported is ``1 - 2 * hamming / bits``, an estimate of the cosine, so larger is always
  better; the raw Hamming distance is reported too.

Each entry carries metadata (device, frame, capture time, thumbnail path).  An index
persists as ``<name>.faiss`` plus ``<name>.meta.json``, each written atomically; the
SQLite database stays the source of truth, so a lost or stale index file is rebuilt.
"""

from __future__ import annotations

import abc
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import faiss
import numpy as np

from ..errors import InputError

KINDS = ("f32", "f16", "i8", "bin")


@dataclass(frozen=True)
class Hit:
    """One search result: higher ``score`` is more similar."""

    id: int
    score: float
    distance: float
    meta: dict

    def to_json(self) -> dict:
        return {"id": self.id, "score": self.score, "distance": self.distance, **self.meta}


def to_search_space(kind: str, dim: int, blob: bytes) -> np.ndarray:
    """Turn a stored descriptor blob into the vector its index works with."""
    if kind == "bin":
        vec = np.frombuffer(blob, np.uint8)
        want = (dim + 7) // 8
    else:
        dtype = {"f32": "<f4", "f16": "<f2", "i8": "i1"}.get(kind)
        if dtype is None:
            raise InputError(f"descriptor kind: expected one of {KINDS}, found {kind!r}")
        vec = np.frombuffer(blob, dtype).astype(np.float32)
        if kind == "i8":
            vec = vec / 127.0
        want = dim
    if vec.size != want:
        raise InputError(f"descriptor {kind}/{dim}: expected {want} elements, found {vec.size}")
    return vec


class DescriptorIndex(abc.ABC):
    """Exact top-k search over one descriptor space, with per-entry metadata."""

    def __init__(self, kind: str, dim: int) -> None:
        self.kind, self.dim = kind, dim
        self.meta: dict[int, dict] = {}
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abc.abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _score(self, distance: float) -> float: ...

    @abc.abstractmethod
    def _remove(self, ids: np.ndarray) -> int: ...

    @abc.abstractmethod
    def _serialize(self) -> bytes: ...

    def add(self, ids: Sequence[int], vectors: np.ndarray, metas: Sequence[dict]) -> None:
        """Add entries; an id already present is ignored (adds are idempotent)."""
        with self._lock:
            keep = [i for i, x in enumerate(ids) if int(x) not in self.meta]
            if not keep:
                return
            vecs = np.ascontiguousarray(np.asarray(vectors)[keep])
            id_arr = np.asarray([int(ids[i]) for i in keep], np.int64)
            self._add(id_arr, vecs)
            for i in keep:
                self.meta[int(ids[i])] = dict(metas[i])

    def search(self, query: np.ndarray, k: int = 10) -> list[Hit]:
        """Top-``k`` entries for one query vector, best first."""
        q = np.ascontiguousarray(np.asarray(query).reshape(1, -1))
        with self._lock:
            if not self.meta or k <= 0:
                return []
            dist, ids = self._search(q, min(k, len(self.meta)))
            return [
                Hit(int(i), self._score(float(d)), float(d), self.meta.get(int(i), {}))
                for d, i in zip(dist[0], ids[0])
                if i >= 0
            ]

    def remove(self, ids: Sequence[int]) -> int:
        """Remove entries by id; returns how many were present."""
        with self._lock:
            arr = np.asarray([int(i) for i in ids if int(i) in self.meta], np.int64)
            if arr.size == 0:
                return 0
            for i in arr:
                self.meta.pop(int(i), None)
            return self._remove(arr)

    def __len__(self) -> int:
        return len(self.meta)

    def max_id(self) -> int:
        return max(self.meta, default=0)

    def save(self, path: Path) -> None:
        """Persist to ``path.faiss`` and ``path.meta.json`` (each atomically)."""
        with self._lock:
            blob = self._serialize()
            meta = {
                "version": 1,
                "kind": self.kind,
                "dim": self.dim,
                "entries": {str(k): v for k, v in self.meta.items()},
            }
        _atomic_write(path.with_suffix(".faiss"), blob)
        _atomic_write(path.with_suffix(".meta.json"), json.dumps(meta).encode())

    @staticmethod
    def load(path: Path) -> Optional[DescriptorIndex]:
        """Reload a saved index; None if missing or inconsistent (the caller rebuilds)."""
        try:
            meta = json.loads(path.with_suffix(".meta.json").read_text())
            blob = np.frombuffer(path.with_suffix(".faiss").read_bytes(), np.uint8)
        except (OSError, ValueError):
            return None
        try:
            index = make_index(meta["kind"], meta["dim"])
            index._deserialize(blob)
            index.meta = {int(k): v for k, v in meta["entries"].items()}
        except (RuntimeError, KeyError, TypeError, ValueError):  # faiss raises RuntimeError on a corrupt file
            return None
        if index._ntotal() != len(index.meta):
            return None
        return index


class InnerProductIndex(DescriptorIndex):
    """Exact inner product (cosine for normalised vectors) over float vectors."""

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__(kind, dim)
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def _add(self, ids, vectors):
        self.index.add_with_ids(vectors.astype(np.float32).reshape(-1, self.dim), ids)

    def _search(self, queries, k):
        return self.index.search(queries.astype(np.float32), k)

    def _score(self, distance):
        return distance

    def _remove(self, ids):
        return int(self.index.remove_ids(ids))

    def _serialize(self):
        return faiss.serialize_index(self.index).tobytes()

    def _deserialize(self, blob):
        self.index = faiss.deserialize_index(blob)

    def _ntotal(self):
        return self.index.ntotal


class HammingIndex(DescriptorIndex):
    """Exact Hamming distance over packed sign bits (``IndexBinaryFlat``)."""

    def __init__(self, kind: str, dim: int) -> None:
        if dim % 8:
            raise InputError(f"binary descriptors: expected a multiple of 8 bits, found {dim}")
        super().__init__(kind, dim)
        self.index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dim))

    def _add(self, ids, vectors):
        self.index.add_with_ids(vectors.astype(np.uint8).reshape(-1, self.dim // 8), ids)

    def _search(self, queries, k):
        return self.index.search(queries.astype(np.uint8), k)

    def _score(self, distance):
        return 1.0 - 2.0 * distance / self.dim

    def _remove(self, ids):
        return int(self.index.remove_ids(ids))

    def _serialize(self):
        return faiss.serialize_index_binary(self.index).tobytes()

    def _deserialize(self, blob):
        self.index = faiss.deserialize_index_binary(blob)

    def _ntotal(self):
        return self.index.ntotal


def make_index(kind: str, dim: int) -> DescriptorIndex:
    if kind == "bin":
        return HammingIndex(kind, dim)
    if kind in KINDS:
        return InnerProductIndex(kind, dim)
    raise InputError(f"descriptor kind: expected one of {KINDS}, found {kind!r}")


class IndexSet:
    """One index per descriptor space ``<kind>-<dim>``, persisted under one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.spaces: dict[str, DescriptorIndex] = {}
        self._lock = threading.Lock()

    @staticmethod
    def space(kind: str, dim: int) -> str:
        return f"{kind}-{dim}"

    def get(self, kind: str, dim: int, create: bool = False) -> Optional[DescriptorIndex]:
        name = self.space(kind, dim)
        with self._lock:
            if name not in self.spaces and create:
                self.spaces[name] = make_index(kind, dim)
            return self.spaces.get(name)

    def add(self, desc_id: int, kind: str, dim: int, blob: bytes, meta: dict) -> None:
        index = self.get(kind, dim, create=True)
        index.add([desc_id], to_search_space(kind, dim, blob)[None], [meta])

    def remove(self, ids: Sequence[int]) -> int:
        return sum(ix.remove(ids) for ix in list(self.spaces.values()))

    def max_id(self) -> int:
        return max((ix.max_id() for ix in list(self.spaces.values())), default=0)

    def total(self) -> int:
        return sum(len(ix) for ix in list(self.spaces.values()))

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, ix in list(self.spaces.items()):
            ix.save(self.dir / name)

    def load(self) -> bool:
        """Load every saved space; False if any was unreadable (then rebuild from the DB)."""
        ok = True
        for meta_path in sorted(self.dir.glob("*.meta.json")):
            base = self.dir / meta_path.name[: -len(".meta.json")]
            ix = DescriptorIndex.load(base)
            if ix is None:
                ok = False
                continue
            self.spaces[self.space(ix.kind, ix.dim)] = ix
        return ok


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
