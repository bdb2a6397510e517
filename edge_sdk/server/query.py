"""Queries: recent frames per device, top-k retrieval by descriptor or by stored frame.

:class:`QueryService` serves the running server (sharing its live index) and the
offline CLI (which loads the saved index and adds whatever the database holds beyond
it, without writing anything).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..transport.descriptor import encode_descriptor
from . import storage
from .index import Hit, IndexSet, to_search_space
from .ingest import descriptor_blob


class NotFoundError(LookupError, InputError):
    """The frame or descriptor a query names does not exist."""


class QueryService:
    """Read-only queries over a server data directory."""

    def __init__(self, data_dir: Path, index: Optional[IndexSet] = None) -> None:
        self.data_dir = Path(data_dir)
        db = self.data_dir / "edge.db"
        if not db.exists():
            raise InputError(
                f"no server database at {db}: expected a data directory written by `edge-sdk serve`"
            )
        self._db = db
        if index is None:
            index = IndexSet(self.data_dir / "index")
            index.load()
        self.index = index
        self._catch_up()

    def _conn(self) -> sqlite3.Connection:
        return storage.connect(self._db, readonly=True)

    def _catch_up(self) -> None:
        """Add descriptors the index does not have yet (read-your-writes for queries).

        In a running server the post-processor adds every descriptor shortly after its
        commit; doing it here too (adds are idempotent by id) means a query never misses
        a descriptor that was already acknowledged.
        """
        index = self.index
        conn = self._conn()
        try:
            rows = conn.execute(storage.DESCRIPTOR_ROWS + " WHERE d.id > ? ORDER BY d.id", (index.max_id(),))
            for r in rows:
                index.add(r["id"], r["kind"], r["dim"], r["vec"], storage.index_meta(r))
        finally:
            conn.close()

    def recent_frames(self, device: Optional[str] = None, limit: int = 20) -> list[dict]:
        conn = self._conn()
        try:
            return [f.to_json() for f in storage.recent_frames(conn, device, max(1, min(int(limit), 1000)))]
        finally:
            conn.close()

    def search_vector(self, vector: np.ndarray, kind: str, k: int = 5) -> list[Hit]:
        """Top-k for a raw float feature vector, encoded exactly as a device would."""
        kind_, dim, blob = descriptor_blob(encode_descriptor(vector, kind))
        self._catch_up()
        ix = self.index.get(kind_, dim)
        if ix is None:
            raise NotFoundError(
                f"no descriptors of kind {kind_!r} and dim {dim} indexed: expected one of {sorted(self.index.spaces)}"
            )
        return ix.search(to_search_space(kind_, dim, blob), k)

    def search_frame(self, device: str, frame: int, k: int = 5, kind: Optional[str] = None) -> list[Hit]:
        """Top-k for the descriptor stored with ``(device, frame)`` (itself included)."""
        conn = self._conn()
        try:
            sql = (
                "SELECT kind, dim, vec FROM descriptors WHERE device=? AND frame=?"
                + (" AND kind=?" if kind else "")
                + " ORDER BY id LIMIT 1"
            )
            row = conn.execute(sql, (device, frame, kind) if kind else (device, frame)).fetchone()
        finally:
            conn.close()
        if row is None:
            raise NotFoundError(f"no descriptor stored for device {device!r} frame {frame}")
        self._catch_up()
        ix = self.index.get(row["kind"], row["dim"])
        if ix is None:
            return []
        return ix.search(to_search_space(row["kind"], row["dim"], row["vec"]), k)

    def stats(self) -> dict:
        conn = self._conn()
        try:
            return {
                "counts": storage.counts(conn),
                "devices": storage.devices(conn),
                "index": {n: len(ix) for n, ix in self.index.spaces.items()},
            }
        finally:
            conn.close()
