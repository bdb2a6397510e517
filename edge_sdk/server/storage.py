"""SQLite storage of frames, patches, descriptors and results (WAL mode).

One database file, ``<data_dir>/edge.db``, opened with ``journal_mode=WAL`` (readers
never block the writer) and ``synchronous=FULL`` (a committed transaction survives power
loss, not only a process crash, which is what "ack only after durable" needs).

Tables (all keyed by the device id and the device-chosen frame id):

* ``seen(device, seq)`` — every data message ever ingested; the dedupe key.
* ``frames`` — one row per frame anything arrived for; image geometry when it came as
  latent patches, ``ended``/``decoded`` flags (``ended AND NOT decoded`` is the decode
  work queue), a ``version`` bumped whenever the frame needs decoding again, the PNG
  path and the assembly report.
* ``patches`` — the latent payloads, kept after decoding so frames can be re-decoded
  when a better decoder arrives.
* ``descriptors`` — one per (device, frame, kind); ``id`` is also the index id; the
  thumbnail's PNG bytes are kept here (durable with the commit) and copied to a file.
* ``results`` — classification results, one per (device, frame, model).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    device TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (device, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frames (
    device TEXT NOT NULL, frame INTEGER NOT NULL, ts INTEGER NOT NULL, received_at REAL NOT NULL,
    width INTEGER, height INTEGER, channels INTEGER, patch INTEGER, n_patches INTEGER, codec TEXT,
    ended INTEGER NOT NULL DEFAULT 0, decoded INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0,
    missing TEXT, png TEXT, PRIMARY KEY (device, frame));
CREATE INDEX IF NOT EXISTS frames_recent ON frames (device, received_at);
CREATE INDEX IF NOT EXISTS frames_todo ON frames (device, frame) WHERE ended = 1 AND decoded = 0;
CREATE TABLE IF NOT EXISTS patches (
    device TEXT NOT NULL, frame INTEGER NOT NULL, idx INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (device, frame, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS descriptors (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, frame INTEGER NOT NULL,
    ts INTEGER NOT NULL, kind TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,
    model TEXT, thumb TEXT, thumb_png BLOB, received_at REAL NOT NULL, UNIQUE (device, frame, kind));
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, frame INTEGER NOT NULL,
    ts INTEGER NOT NULL, model TEXT NOT NULL, cls TEXT NOT NULL, score TEXT NOT NULL,
    names TEXT, received_at REAL NOT NULL, UNIQUE (device, frame, model));
"""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database with the pragmas every connection needs."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.row_factory = sqlite3.Row
    return conn


def init_db(path: Path) -> None:
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
    finally:
        conn.close()


@dataclass(frozen=True)
class FrameRow:
    """A frame as listed by queries."""

    device: str
    frame: int
    ts: int
    received_at: float
    width: Optional[int]
    height: Optional[int]
    png: Optional[str]
    missing: dict
    kinds: list

    def to_json(self) -> dict:
        return dict(self.__dict__)


def recent_frames(conn: sqlite3.Connection, device: Optional[str], limit: int) -> list[FrameRow]:
    """Newest frames first, for one device or all; each says what arrived for it."""
    where, args = ("WHERE f.device = ?", [device]) if device else ("", [])
    rows = conn.execute(
        f"""SELECT f.*, (SELECT group_concat(kind) FROM descriptors d WHERE d.device = f.device AND d.frame = f.frame) AS dk,
                   (SELECT count(*) FROM results r WHERE r.device = f.device AND r.frame = f.frame) AS nr
            FROM frames f {where} ORDER BY f.received_at DESC, f.frame DESC LIMIT ?""",
        [*args, int(limit)],
    ).fetchall()
    out = []
    for r in rows:
        kinds = (
            (["image"] if r["n_patches"] else [])
            + (r["dk"].split(",") if r["dk"] else [])
            + (["class"] if r["nr"] else [])
        )
        out.append(
            FrameRow(
                r["device"],
                r["frame"],
                r["ts"],
                r["received_at"],
                r["width"],
                r["height"],
                r["png"],
                json.loads(r["missing"] or "{}"),
                kinds,
            )
        )
    return out


def devices(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT device FROM frames ORDER BY device")]


def counts(conn: sqlite3.Connection) -> dict:
    q = {t: f"SELECT count(*) FROM {t}" for t in ("seen", "frames", "patches", "descriptors", "results")}
    return {t: conn.execute(sql).fetchone()[0] for t, sql in q.items()}


#: Descriptors with what the index needs about their frame.
DESCRIPTOR_ROWS = (
    "SELECT d.id, d.device, d.frame, d.ts, d.kind, d.dim, d.vec, d.thumb, d.thumb_png, f.n_patches "
    "FROM descriptors d LEFT JOIN frames f ON f.device = d.device AND f.frame = d.frame"
)


def frame_png_path(device: str, frame: int) -> str:
    """Where the decoded image of a frame is written, relative to the data directory."""
    return f"frames/{device}/{frame}.png"


def index_meta(row: sqlite3.Row) -> dict:
    """Index metadata of a DESCRIPTOR_ROWS row; the thumbnail falls back to the decoded frame."""
    thumb = row["thumb"] or (frame_png_path(row["device"], row["frame"]) if row["n_patches"] else None)
    return {"device": row["device"], "frame": row["frame"], "ts": row["ts"], "thumb": thumb}
