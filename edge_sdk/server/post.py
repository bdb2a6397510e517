"""Work done *after* a commit: decoding frames to PNG and adding descriptors to the index.

None of this delays an ack, and none of it can lose data: the patches and descriptors
are already durable in SQLite when the ack goes out.

The database itself is the work queue, so memory stays bounded however far behind
this worker falls (a server that acks faster than it can encode PNGs must not grow a
queue in RAM):

* frames to decode are those with ``ended = 1 AND decoded = 0`` (FRAME_END and late
  patches set ``decoded = 0``; a ``version`` column makes a decode that raced with a
  late patch count for nothing, so the frame is decoded again);
* descriptors to index are those with an id above the worker's cursor, which starts
  at the saved index's largest id.

The ingest writer calls :meth:`PostProcessor.notify` after a commit that created work;
the worker then polls in batches until nothing is left.  At start-up the same polling
picks up whatever a crash left undone, and :meth:`recover` re-creates derived files a
power cut may have lost (they are written without fsync).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from . import storage
from .assembler import AssemblyReport, assemble, write_png
from .decoders import DecoderError, FrameGeometry
from .index import IndexSet

log = logging.getLogger("edge_sdk.server")
#: How far back start-up checks that derived files (PNGs, thumbnails) exist.
RECENT_S = 600.0
DECODE_BATCH = 32
INDEX_BATCH = 256

Writer = Callable[[str, list, Callable[[bool], None]], None]


class PostProcessor:
    """The worker thread (see module docstring)."""

    def __init__(self, data_dir: Path, index: IndexSet, save_every_s: float = 5.0) -> None:
        self.data_dir = data_dir
        self.index = index
        self.save_every_s = save_every_s
        self.decoded = 0
        self.indexed = 0
        #: ``writer(sql, rows, done)``: the single database writer (the Ingestor's ``write``).
        self.writer: Optional[Writer] = None
        self._cursor = 0  # largest descriptor id handled
        self._redo: list = []  # frames whose PNG a power cut lost (bounded by RECENT_S of arrivals)
        self._wake = threading.Event()
        self._cv = threading.Condition()
        self._requested = 0  # notify() generation
        self._done_gen = -1  # generation the worker last found no work at
        self._stopping = False
        self._dirty = False
        self._thread = threading.Thread(target=self._run, name="edge-post", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """There may be new work in the database (called after a commit)."""
        with self._cv:
            self._requested += 1
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Block until the worker found no work after the latest ``notify`` (tests, demos)."""
        self.notify()
        with self._cv:
            target = self._requested
            return self._cv.wait_for(lambda: self._done_gen >= target, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the work in the database, save the index, stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self.index.save()

    def recover(self) -> None:
        """Load the saved index (rebuilt from the database if unreadable); re-create lost files."""
        if not self.index.load():
            log.warning("descriptor index unreadable; rebuilding from the database")
            self.index.spaces.clear()
        self._cursor = self.index.max_id()
        conn = storage.connect(self.data_dir / "edge.db", readonly=True)
        try:
            self._recover_files(conn)
        finally:
            conn.close()
        self.notify()

    def _recover_files(self, conn) -> None:
        """Re-create derived files lost to a power cut (see RECENT_S)."""
        newest = conn.execute("SELECT max(received_at) FROM frames").fetchone()[0] or 0.0
        since = newest - RECENT_S
        rows = conn.execute(
            "SELECT device, frame, png FROM frames WHERE decoded=1 AND png IS NOT NULL AND received_at > ?",
            (since,),
        )
        self._redo = [(r["device"], r["frame"]) for r in rows if not _nonempty(self.data_dir / r["png"])]
        for row in conn.execute(
            "SELECT thumb, thumb_png FROM descriptors WHERE thumb_png IS NOT NULL AND received_at > ?",
            (since,),
        ):
            if not _nonempty(self.data_dir / row["thumb"]):
                _write_file(self.data_dir / row["thumb"], row["thumb_png"])

    # ------------------------------------------------------------------ the worker

    def _run(self) -> None:
        conn = storage.connect(self.data_dir / "edge.db")
        last_save = time.monotonic()
        try:
            while True:
                self._wake.wait(self.save_every_s)
                self._wake.clear()  # before reading the generation: a later notify() wakes us again
                with self._cv:
                    gen = self._requested
                stopping = self._stopping
                while self._pass(conn):
                    pass
                with self._cv:
                    self._done_gen = gen
                    self._cv.notify_all()
                if self._dirty and (stopping or time.monotonic() - last_save >= self.save_every_s):
                    self.index.save()
                    self._dirty, last_save = False, time.monotonic()
                if stopping:
                    return
        finally:
            conn.close()

    def _pass(self, conn) -> bool:
        """One batch of each kind of work; False when there was none."""
        todo = conn.execute(
            "SELECT device, frame FROM frames WHERE ended=1 AND decoded=0 LIMIT ?", (DECODE_BATCH,)
        ).fetchall()
        frames = [(r["device"], r["frame"]) for r in todo] + self._redo
        self._redo = []
        ids = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM descriptors WHERE id > ? ORDER BY id LIMIT ?", (self._cursor, INDEX_BATCH)
            )
        ]
        recorded = self._decode_batch(conn, frames) if frames else 0
        for desc_id in ids:
            self._guard(self._index, conn, desc_id)
            self._cursor = desc_id
        # Frames that could not even be read stay to do; stop this round rather than spin on them.
        return bool(ids) or (bool(frames) and recorded > 0)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except Exception:  # one bad frame must not stop the worker; logged with its traceback
            log.exception("post-processing %s%r failed", fn.__name__, args[1:])
            return None

    def _decode_batch(self, conn, frames: list) -> int:
        """Decode with no database lock held, then record all results in one commit; returns how many."""
        updates = [u for u in (self._guard(self._decode, conn, d, f) for d, f in frames) if u is not None]
        if not updates or self.writer is None:
            return 0
        done = threading.Event()
        ok = []
        self.writer(
            "UPDATE frames SET decoded=1, png=?, missing=? WHERE device=? AND frame=? AND version=?",
            updates,
            lambda success: (ok.append(success), done.set()),
        )
        if not done.wait(60.0) or not ok[0]:
            log.error("recording %d decoded frames failed; they are decoded again later", len(updates))
            return 0
        self.decoded += len(updates)
        return len(updates)

    def _decode(self, conn, device: str, frame: int) -> tuple:
        row = conn.execute("SELECT * FROM frames WHERE device=? AND frame=?", (device, frame)).fetchone()
        g = FrameGeometry(
            row["width"], row["height"], row["channels"], row["patch"], row["n_patches"], row["codec"]
        )
        patches = {
            r["idx"]: r["payload"]
            for r in conn.execute(
                "SELECT idx, payload FROM patches WHERE device=? AND frame=?", (device, frame)
            )
        }
        png: Optional[str] = None
        try:
            image, report = assemble(g, patches)
            rel = storage.frame_png_path(device, frame)
            write_png(image, self.data_dir / rel, durable=False)
            png = str(rel)
        except DecoderError as exc:
            report = AssemblyReport(error=str(exc))
        except Exception as exc:  # a decoder bug must not make the frame come back forever; it is reported
            log.exception("decoding frame %s/%s failed", device, frame)
            report = AssemblyReport(error=f"decode failed: {type(exc).__name__}: {exc}")
        return (png, json.dumps(report.to_json()), device, frame, row["version"])

    def _index(self, conn, desc_id: int) -> None:
        row = conn.execute(storage.DESCRIPTOR_ROWS + " WHERE d.id=?", (desc_id,)).fetchone()
        if row is None:
            return  # deleted meanwhile
        if row["thumb_png"] is not None:
            _write_file(self.data_dir / row["thumb"], row["thumb_png"])
        self.index.add(desc_id, row["kind"], row["dim"], row["vec"], storage.index_meta(row))
        self.indexed += 1
        self._dirty = True


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _write_file(path: Path, data: bytes) -> None:
    """Atomic (tmp + rename) but not fsync'd: the bytes are durable in SQLite already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
