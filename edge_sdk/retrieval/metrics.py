"""Retrieval metrics: mAP, mAP@k, mP@k and the UKBench N-S score.

Rankings are by similarity (higher = closer), ties broken by database index (so equal
scores never favour the right answer).  For mAP, mAP@k and mP@k the query itself is
removed from the database when it is also a database item (role "both"); the N-S
score keeps it, as the UKBench protocol does (max 4.0 with groups of 4).

* ``mAP``: average precision over the whole ranked database (every relevant item counts).
* ``mAP@k``: the deep-hashing convention (HashNet / DSH / DPSH evaluation code): the
  precision at each relevant rank within the top k, averaged over the relevant items
  *retrieved in the top k* (0 when none is); ``mAP@k`` = ``mAP`` once k covers the database.
* ``mP@k``: the fraction of relevant items in the top k (NaN for a query whose list is
  shorter than k; averaged over the others).

Everything is vectorized over blocks of queries, so a (1,000 x 28,000) evaluation
never holds more than a few tens of MB of ranking state at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# rows x database items held per block (order int64 + cumsum + precision float64: ~25 bytes each)
_BLOCK_ELEMENTS = 2_000_000


def similarity(queries: np.ndarray, db: np.ndarray, encoding: str = "float") -> np.ndarray:
    """(Q, D) x (N, D) -> (Q, N): inner product, or minus the Hamming distance for ±1 binary codes."""
    q, d = np.asarray(queries, np.float32), np.asarray(db, np.float32)
    if encoding == "binary":
        return -(q.shape[1] - q @ d.T) / 2  # = -Hamming for ±1 vectors
    return q @ d.T


def average_precision(relevant: np.ndarray) -> float:
    """AP of one ranked list given its boolean relevance (all relevant items are in the list)."""
    hits = np.flatnonzero(relevant)
    if hits.size == 0:
        return 0.0
    return float(np.mean(np.arange(1, hits.size + 1) / (hits + 1)))


def _block_stats(
    sim: np.ndarray,
    q_groups: np.ndarray,
    db_groups: np.ndarray,
    self_index: np.ndarray,
    ks: Sequence[int],
    map_at: Sequence[int],
    ns: bool,
) -> dict[str, np.ndarray]:
    """Per-query metrics of one block of rows of the similarity matrix."""
    n_q, n_db = sim.shape
    rows = np.flatnonzero(self_index >= 0)
    cols = self_index[rows]
    masked = np.array(sim, dtype=np.float64)
    # the query's own database entry goes last (-inf), and is then marked not relevant: the ranked list
    # of the others is exactly the list with that entry removed (ties keep their database order)
    masked[rows, cols] = -np.inf
    order = np.argsort(-masked, axis=1, kind="stable")
    rel = db_groups[order] == np.asarray(q_groups)[:, None]
    rel[rows, n_db - 1] = False
    length = np.full(n_q, n_db)
    length[rows] = n_db - 1
    cum = np.cumsum(rel, axis=1)
    prec_at_hit = np.where(rel, cum / np.arange(1, n_db + 1), 0.0)
    out = {"mAP": prec_at_hit.sum(axis=1) / np.maximum(cum[:, -1], 1)}
    for k in map_at:
        kk = min(int(k), n_db)
        out[f"mAP@{k}"] = prec_at_hit[:, :kk].sum(axis=1) / np.maximum(cum[:, kk - 1], 1)
    for k in ks:
        kk = min(int(k), n_db)
        out[f"mP@{k}"] = np.where(k <= length, cum[:, kk - 1] / k, np.nan)
    if ns:
        # UKBench N-S: the top 4 *with* the query's own entry; where that entry ranked in the top 4 of the
        # unmasked list (stable order), it takes one of the 4 places
        top4 = cum[:, min(4, n_db) - 1].astype(np.float64)
        if rows.size:
            s = np.asarray(sim, np.float64)[rows]
            own = s[np.arange(rows.size), cols]
            rank = (s > own[:, None]).sum(axis=1) + (
                (s == own[:, None]) & (np.arange(n_db) < cols[:, None])
            ).sum(axis=1)
            inside = rank < 4
            top3 = cum[rows, min(3, n_db) - 1]
            own_hit = db_groups[cols] == np.asarray(q_groups)[rows]
            top4[rows[inside]] = top3[inside] + own_hit[inside]
        out["N-S"] = top4
    return out


def _finish(parts: list[dict[str, np.ndarray]]) -> dict[str, float]:
    out = {}
    for key in parts[0]:
        v = np.concatenate([p[key] for p in parts])
        if key.startswith("mP@"):  # NaN where a list is shorter than k: averaged over the others
            out[key] = float(np.nanmean(v)) if not np.isnan(v).all() else float("nan")
        else:
            out[key] = float(np.mean(v))
    return out


def _block_rows(n_db: int, chunk: int | None) -> int:
    return max(1, chunk or _BLOCK_ELEMENTS // max(n_db, 1))


def evaluate(
    sim: np.ndarray,
    q_groups: np.ndarray,
    db_groups: np.ndarray,
    self_index: np.ndarray,
    ks: Sequence[int] = (1, 4, 10),
    map_at: Sequence[int] = (),
    ns: bool = True,
    chunk: int | None = None,
) -> dict[str, float]:
    """mAP, mAP@k, mP@k and N-S for a similarity matrix; ``self_index[i]`` = db index of query i or -1."""
    sim, q_groups, self_index = np.asarray(sim), np.asarray(q_groups), np.asarray(self_index)
    db_groups = np.asarray(db_groups)
    step = _block_rows(sim.shape[1], chunk)
    parts = [
        _block_stats(
            sim[i : i + step], q_groups[i : i + step], db_groups, self_index[i : i + step], ks, map_at, ns
        )
        for i in range(0, sim.shape[0], step)
    ]
    return _finish(parts)


def evaluate_descriptors(
    queries: np.ndarray,
    db: np.ndarray,
    q_groups: np.ndarray,
    db_groups: np.ndarray,
    self_index: np.ndarray,
    encoding: str = "float",
    ks: Sequence[int] = (1, 4, 10),
    map_at: Sequence[int] = (),
    ns: bool = True,
    chunk: int | None = None,
) -> dict[str, float]:
    """As :func:`evaluate`, computing the similarity block by block (never the whole Q x N matrix)."""
    q_groups, db_groups, self_index = np.asarray(q_groups), np.asarray(db_groups), np.asarray(self_index)
    step = _block_rows(len(db), chunk)
    parts = []
    for i in range(0, len(queries), step):
        sim = similarity(queries[i : i + step], db, encoding)
        parts.append(
            _block_stats(sim, q_groups[i : i + step], db_groups, self_index[i : i + step], ks, map_at, ns)
        )
    return _finish(parts)
