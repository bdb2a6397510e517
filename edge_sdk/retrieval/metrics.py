"""Retrieval metrics: mAP, mP@k and the UKBench N-S score.

Rankings are by similarity (higher = closer).  For mAP and mP@k the query itself is
removed from the database when it is also a database item (role "both"); the N-S
score keeps it, as the UKBench protocol does (max 4.0 with groups of 4).
"""

from __future__ import annotations

import numpy as np


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


def evaluate(
    sim: np.ndarray, q_groups: np.ndarray, db_groups: np.ndarray, self_index: np.ndarray, ks=(1, 4, 10)
) -> dict[str, float]:
    """mAP, mP@k and N-S for a similarity matrix; ``self_index[i]`` = db index of query i or -1."""
    aps, precisions, ns = [], {k: [] for k in ks}, []
    # stable tie-break by index, so equal scores never favour the right answer
    order = np.argsort(-sim, axis=1, kind="stable")
    for i in range(sim.shape[0]):
        ranked = order[i]
        ns.append(float(np.sum(db_groups[ranked[:4]] == q_groups[i])))
        if self_index[i] >= 0:
            ranked = ranked[ranked != self_index[i]]
        rel = db_groups[ranked] == q_groups[i]
        aps.append(average_precision(rel))
        for k in ks:
            precisions[k].append(float(rel[:k].mean()) if k <= rel.size else float("nan"))
    out = {"mAP": float(np.mean(aps)), "N-S": float(np.mean(ns))}
    out.update({f"mP@{k}": float(np.nanmean(v)) for k, v in precisions.items()})
    return out
