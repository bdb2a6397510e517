"""Work done *after* a commit: decoding frames to PNG and adding descriptors to the index.

None of this delays an ack, and none of it can lose data: the patches and descriptors
are already durable in SQLite.  If the server dies before a job ran, :meth:`recover`
finds the frames still marked ``ended`` but not ``decoded`` and the descriptors newer
than the saved index, and queues them again at start-up.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Optional

from . import storage
from .assembler import AssemblyReport, assemble, write_png
from .decoders import DecoderError, FrameGeometry
from .index import IndexSet

log = logging.getLogger("edge_sdk.server")


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
        finally:
            conn.close()

    def _run(self) -> None:
        conn = storage.connect(self.data_dir / "edge.db")
        last_save = time.monotonic()
        try:
            while True:
                try:
                    job = self._q.get(timeout=self.save_every_s)
                except queue.Empty:
                    job = ()
                if job is None:
                    return
                if job:
                    self._do(conn, job)
                if self._dirty and time.monotonic() - last_save >= self.save_every_s:
                    self.index.save()
                    self._dirty, last_save = False, time.monotonic()
        finally:
            conn.close()

    def _do(self, conn, job: tuple) -> None:
        try:
            if job[0] == "decode":
                self._decode(conn, job[1], job[2])
            else:
                self._index(conn, job[1])
        except Exception:  # one bad frame must not stop the worker; the error is logged with its traceback
            log.exception("post-processing job %r failed", job)
        finally:
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()

    def _decode(self, conn, device: str, frame: int) -> None:
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
            rel = Path("frames") / device / f"{frame}.png"
            write_png(image, self.data_dir / rel)
            png = str(rel)
        except DecoderError as exc:
            report = AssemblyReport(error=str(exc))
        conn.execute(
            "UPDATE frames SET decoded=1, png=?, missing=? WHERE device=? AND frame=?",
            (png, json.dumps(report.to_json()), device, frame),
        )
        self.decoded += 1

    def _index(self, conn, desc_id: int) -> None:
        row = conn.execute(
            "SELECT d.*, f.png FROM descriptors d LEFT JOIN frames f ON f.device = d.device AND f.frame = d.frame WHERE d.id=?",
            (desc_id,),
        ).fetchone()
        if row is None:
            return  # deleted meanwhile
        meta = {
            "device": row["device"],
            "frame": row["frame"],
            "ts": row["ts"],
            "thumb": row["thumb"] or row["png"],
        }
        self.index.add(desc_id, row["kind"], row["dim"], row["vec"], meta)
        self.indexed += 1
        self._dirty = True
