"""Work done *after* a commit: decoding frames to PNG and adding descriptors to the index.

None of this delays an ack, and none of it can lose data: the patches and descriptors
are already durable in SQLite.  If the server dies before a job ran, :meth:`recover`
finds the frames still marked ``ended`` but not ``decoded`` and the descriptors newer
than the saved index, and queues them again at start-up.
"""

from __future__ import annotations

import json
import logging
import os
import queue
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


class PostProcessor:
    """A worker thread for decode and index jobs, with periodic index saves."""

    def __init__(self, data_dir: Path, index: IndexSet, save_every_s: float = 5.0) -> None:
        self.data_dir = data_dir
        self.index = index
        self.save_every_s = save_every_s
        self.decoded = 0
        self.indexed = 0
        self._q: queue.Queue = queue.Queue()
        self._pending = 0
        self._cv = threading.Condition()
        self._dirty = False
        #: ``writer(sql, rows, done)``: the single database writer (the Ingestor's ``write``).
        self.writer: Optional[Callable[[str, list, Callable[[bool], None]], None]] = None
        self._thread = threading.Thread(target=self._run, name="edge-post", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: tuple) -> None:
        with self._cv:
            self._pending += 1
        self._q.put(job)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted job has run (tests, graceful shutdown)."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish every queued job, save the index, stop the thread."""
        self._q.put(None)
        self._thread.join(timeout)
        self.index.save()

    def recover(self) -> None:
        """Queue the work a crash may have left undone (see module docstring)."""
        if not self.index.load():
            log.warning("descriptor index unreadable; rebuilding from the database")
            self.index.spaces.clear()
        conn = storage.connect(self.data_dir / "edge.db", readonly=True)
        try:
            for row in conn.execute("SELECT device, frame FROM frames WHERE ended=1 AND decoded=0"):
                self.submit(("decode", row["device"], row["frame"]))
            for row in conn.execute(
                "SELECT id FROM descriptors WHERE id > ? ORDER BY id", (self.index.max_id(),)
            ):
                self.submit(("index", row["id"]))
            self._recover_files(conn)
        finally:
            conn.close()

    def _recover_files(self, conn) -> None:
        """Re-create derived files lost to a power cut (they are written without fsync).

        Only the last ``RECENT_S`` seconds of arrivals can be affected (the kernel
        writes dirty pages back within about 30 s), so only those are checked.
        """
        newest = conn.execute("SELECT max(received_at) FROM frames").fetchone()[0] or 0.0
        since = newest - RECENT_S
        for row in conn.execute(
            "SELECT device, frame, png FROM frames WHERE decoded=1 AND png IS NOT NULL AND received_at > ?",
            (since,),
        ):
            if not _nonempty(self.data_dir / row["png"]):
                self.submit(("decode", row["device"], row["frame"]))
        for row in conn.execute(
            "SELECT thumb, thumb_png FROM descriptors WHERE thumb_png IS NOT NULL AND received_at > ?",
            (since,),
        ):
            if not _nonempty(self.data_dir / row["thumb"]):
                _write_file(self.data_dir / row["thumb"], row["thumb_png"])

    def _run(self) -> None:
        conn = storage.connect(self.data_dir / "edge.db")
        last_save = time.monotonic()
        try:
            while True:
                jobs, stop = self._take_batch()
                if jobs:
                    self._run_batch(conn, jobs)
                if self._dirty and (stop or time.monotonic() - last_save >= self.save_every_s):
                    self.index.save()
                    self._dirty, last_save = False, time.monotonic()
                if stop:
                    return
        finally:
            conn.close()

    def _take_batch(self, limit: int = 64) -> tuple[list, bool]:
        """Up to ``limit`` queued jobs (waiting at most ``save_every_s`` for the first)."""
        jobs: list = []
        try:
            item = self._q.get(timeout=self.save_every_s)
        except queue.Empty:
            return jobs, False
        while item is not None:
            jobs.append(item)
            if len(jobs) >= limit:
                return jobs, False
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return jobs, False
        return jobs, True

    def _run_batch(self, conn, jobs: list) -> None:
        """Do the work outside any transaction, then record it in one short commit.

        Decoding and PNG encoding happen with no database lock held, so the ingest
        writer (whose commits gate every ack) never waits for them.
        """
        updates = []
        for job in jobs:
            try:
                if job[0] == "decode":
                    updates.append(self._decode(conn, job[1], job[2]))
                else:
                    self._index(conn, job[1])
            except Exception:  # one bad frame must not stop the worker; logged with its traceback
                log.exception("post-processing job %r failed", job)
        finished = len(jobs)

        def done(ok: bool) -> None:
            if ok:
                self.decoded += len(updates)
            else:  # the frames stay ended-but-undecoded and are decoded again at the next start
                log.error("recording %d decoded frames failed", len(updates))
            self._finish(finished)

        if updates and self.writer is not None:
            self.writer(
                "UPDATE frames SET decoded=1, png=?, missing=? WHERE device=? AND frame=?", updates, done
            )
        else:
            done(not updates)

    def _finish(self, n: int) -> None:
        with self._cv:
            self._pending -= n
            self._cv.notify_all()

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
        return (png, json.dumps(report.to_json()), device, frame)

    def _index(self, conn, desc_id: int) -> None:
        row = conn.execute(storage.DESCRIPTOR_ROWS + " WHERE d.id=?", (desc_id,)).fetchone()
        if row is None:
            return  # deleted meanwhile
        if row["thumb_png"] is not None:
            _write_file(self.data_dir / row["thumb"], row["thumb_png"])
        meta = storage.index_meta(row)
        self.index.add(desc_id, row["kind"], row["dim"], row["vec"], meta)
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
