"""Idempotent, durable ingestion: one writer thread, group commit, ack after COMMIT.

Connections hand every data message to :meth:`Ingestor.submit` and get a future.  The
writer thread takes whatever is queued (up to ``batch_max`` messages, from any number
of devices), applies it in one SQLite transaction and commits with ``synchronous=FULL``;
only then are the futures resolved and the acks sent.  Group commit makes the cost of
one fsync shared by every message of the batch.

Idempotence has two layers:

* message level: ``INSERT OR IGNORE INTO seen(device, seq)`` in the same transaction as
  the message's effect, so a retransmission is recognised (and acked again as ``dup``)
  whether the first copy was committed a millisecond or a week ago;
* frame level: frames, patches, descriptors and results are keyed by (device, frame[,
  index/kind/model]), so a frame re-sent under new sequence numbers (a device that
  crashed between spooling and recording its progress) still lands exactly once.

Semantically invalid messages (a patch for a frame never begun, an index out of range)
roll back to a per-message savepoint and are answered with a non-retryable ERROR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..transport.ext import PackedBits
from ..transport.protocol import Message, MsgType
from . import storage
from .assembler import png_bytes
from .post import PostProcessor

log = logging.getLogger("edge_sdk.server")


class InvalidMessage(Exception):
    """Internal: the message is well-formed but cannot be applied (never retried)."""


@dataclass(frozen=True)
class Outcome:
    """How a submitted message ended: ``ok``, ``dup``, ``invalid`` or ``error`` (retryable)."""

    status: str
    text: str = ""


def descriptor_blob(vec: object) -> tuple[str, int, bytes]:
    """(kind, dim, stored bytes) of a DESCRIPTOR ``vec`` field."""
    if isinstance(vec, PackedBits):
        if vec.nbits % 8:
            raise InvalidMessage(f"binary descriptor: expected a multiple of 8 bits, found {vec.nbits}")
        return "bin", vec.nbits, vec.data
    arr = np.asarray(vec)
    kind = {("f", 2): "f16", ("i", 1): "i8", ("f", 4): "f32"}[(arr.dtype.kind, arr.dtype.itemsize)]
    return kind, int(arr.size), arr.tobytes()


class Ingestor:
    """The single writer of the database (see module docstring)."""

    def __init__(self, data_dir: Path, post: PostProcessor, batch_max: int = 512) -> None:
        self.data_dir = data_dir
        self.db_path = data_dir / "edge.db"
        self.post = post
        self.batch_max = batch_max
        self.committed = 0
        self.batches = 0
        self._q: queue.Queue = queue.Queue()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="edge-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, msg: Message) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((msg, loop, fut))
        return fut

    def write(self, sql: str, rows: list, done: Callable[[bool], None]) -> None:
        """Run ``executemany(sql, rows)`` in the next commit, then call ``done(ok)``.

        Other threads (the post-processor) write through here so that the database has
        exactly one writer: a second one would make the acking writer wait on SQLite's
        busy handler, which sleeps in steps of several milliseconds.
        """
        if self._stopping:
            done(False)
            return
        self._q.put((None, (sql, rows), done))

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already submitted, then stop the thread."""
        self._stopping = True
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        conn = storage.connect(self.db_path)
        try:
            while True:
                item = self._q.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < self.batch_max:
                    try:
                        nxt = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._q.put(None)  # finish this batch first, stop on the next round
                        break
                    batch.append(nxt)
                self._commit(conn, batch)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list) -> None:
        messages = [item for item in batch if item[0] is not None]
        internal = [item for item in batch if item[0] is None]
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply_one(conn, msg) for msg, _, _ in messages]
            for _, (sql, rows), _ in internal:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
            ok = True
            self.committed += len(messages)
            self.batches += 1
        except (sqlite3.Error, OSError) as exc:
            log.error("commit of %d messages failed: %s", len(messages), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes, ok = [Outcome("error", f"storage error: {exc}")] * len(messages), False
        if ok and messages:  # before the acks go out, so "acked" implies "post-processing notified"
            self.post.notify()
        for _, _, done in internal:
            done(ok)
        for (_, loop, fut), outcome in zip(messages, outcomes):
            loop.call_soon_threadsafe(_resolve, fut, outcome)

    def _apply_one(self, conn: sqlite3.Connection, msg: Message) -> Outcome:
        conn.execute("SAVEPOINT m")
        try:
            if conn.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (msg.device, msg.seq)).rowcount == 0:
                conn.execute("RELEASE m")
                return Outcome("dup")
            _touch_frame(conn, msg)
            _APPLY[msg.type](self, conn, msg)
            conn.execute("RELEASE m")
            return Outcome("ok")
        except InvalidMessage as exc:
            conn.execute("ROLLBACK TO m")
            conn.execute("RELEASE m")
            return Outcome("invalid", str(exc))

    # ------------------------------------------------------------------ effects per type

    def _frame_begin(self, conn, msg) -> None:
        b = msg.body
        geometry = (b["w"], b["h"], b["c"], b["patch"], b["n"], b["codec"])
        row = conn.execute(
            "SELECT width, height, channels, patch, n_patches, codec FROM frames WHERE device=? AND frame=?",
            (msg.device, msg.frame),
        ).fetchone()
        if row["width"] is not None:
            if tuple(row) != geometry:
                raise InvalidMessage(
                    f"frame {msg.frame} already begun with geometry {tuple(row)}, found {geometry}"
                )
            return
        conn.execute(
            "UPDATE frames SET width=?, height=?, channels=?, patch=?, n_patches=?, codec=? WHERE device=? AND frame=?",
            (*geometry, msg.device, msg.frame),
        )

    def _patch(self, conn, msg) -> None:
        row = self._begun(conn, msg)
        idx = msg.body["i"]
        if idx >= row["n_patches"]:
            raise InvalidMessage(
                f"patch index: expected 0..{row['n_patches'] - 1} for frame {msg.frame}, found {idx}"
            )
        old = conn.execute(
            "SELECT payload FROM patches WHERE device=? AND frame=? AND idx=?", (msg.device, msg.frame, idx)
        ).fetchone()
        if old is not None and old[0] == msg.body["p"]:
            return  # the same patch again (a frame re-sent under new seqs): nothing changes
        conn.execute(
            "INSERT OR REPLACE INTO patches VALUES (?, ?, ?, ?)", (msg.device, msg.frame, idx, msg.body["p"])
        )
        if row["ended"]:  # a late (or changed) patch: decode the frame again with it
            conn.execute(
                "UPDATE frames SET decoded=0, version=version+1 WHERE device=? AND frame=?",
                (msg.device, msg.frame),
            )

    def _frame_end(self, conn, msg) -> None:
        self._begun(conn, msg)
        # Queue the decode (the post-processor polls for ended-but-undecoded frames); a repeated
        # FRAME_END changes nothing: any patch that arrived since has re-queued the frame itself.
        conn.execute(
            "UPDATE frames SET ended=1, decoded=0, version=version+1 WHERE device=? AND frame=? AND ended=0",
            (msg.device, msg.frame),
        )

    def _descriptor(self, conn, msg) -> None:
        kind, dim, blob = descriptor_blob(msg.body["vec"])
        thumb, thumb_png = None, None
        if "thumb" in msg.body:
            # Stored in the row (durable with the commit); the post-processor writes the file.
            thumb, thumb_png = (
                str(Path("thumbs") / msg.device / f"{msg.frame}.png"),
                png_bytes(msg.body["thumb"]),
            )
        conn.execute(
            "INSERT OR IGNORE INTO descriptors (device, frame, ts, kind, dim, vec, model, thumb, thumb_png, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                msg.device,
                msg.frame,
                msg.ts,
                kind,
                dim,
                blob,
                msg.body.get("model"),
                thumb,
                thumb_png,
                time.time(),
            ),
        )
        # Nothing to queue: the post-processor indexes every descriptor above its cursor.

    def _classification(self, conn, msg) -> None:
        b = msg.body
        conn.execute(
            "INSERT OR IGNORE INTO results (device, frame, ts, model, cls, score, names, received_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                msg.device,
                msg.frame,
                msg.ts,
                b.get("model", ""),
                json.dumps(b["cls"]),
                json.dumps(b["score"]),
                json.dumps(b.get("names")),
                time.time(),
            ),
        )

    @staticmethod
    def _begun(conn, msg) -> sqlite3.Row:
        row = conn.execute(
            "SELECT n_patches, ended FROM frames WHERE device=? AND frame=?", (msg.device, msg.frame)
        ).fetchone()
        if row is None or row["n_patches"] is None:
            raise InvalidMessage(f"frame {msg.frame} of {msg.device!r} was never begun (no FRAME_BEGIN)")
        return row


_APPLY = {
    MsgType.FRAME_BEGIN: Ingestor._frame_begin,
    MsgType.LATENT_PATCH: Ingestor._patch,
    MsgType.FRAME_END: Ingestor._frame_end,
    MsgType.DESCRIPTOR: Ingestor._descriptor,
    MsgType.CLASSIFICATION: Ingestor._classification,
}


def _touch_frame(conn: sqlite3.Connection, msg: Message) -> None:
    """Every data message makes its frame known (so 'recent frames' lists every mode)."""
    conn.execute(
        "INSERT OR IGNORE INTO frames (device, frame, ts, received_at) VALUES (?, ?, ?, ?)",
        (msg.device, msg.frame, msg.ts, time.time()),
    )


def _resolve(fut: asyncio.Future, outcome: Outcome) -> None:
    if not fut.done():
        fut.set_result(outcome)
