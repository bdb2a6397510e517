"""Run descriptor methods over an evaluation set and score them (``edge-sdk retrieval-eval``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Callable, Optional

import numpy as np

from .encoding import decode, encode, encoded_size
from .evalset import EvalSet
from .metrics import evaluate_descriptors

Method = Callable[[np.ndarray], np.ndarray]


def describe_all(
    evalset: EvalSet, method: Method, progress: bool = True, label: str = ""
) -> tuple[np.ndarray, float]:
    """Descriptors of every image of the set, and the median seconds per image."""
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are a nicety

        def tqdm(it, **_):
            return it

    descs, times = [], []
    for i in tqdm(range(len(evalset)), desc=label or "describe", disable=not progress, leave=False):
        img = evalset.load(i)
        t0 = time.perf_counter()
        descs.append(method(img))
        times.append(time.perf_counter() - t0)
    return np.stack(descs).astype(np.float32), float(np.median(times))


def _self_index(q_idx: np.ndarray, db_idx: np.ndarray) -> np.ndarray:
    """For each query, its position in the database (-1 when it is not a database item)."""
    position = {int(d): n for n, d in enumerate(db_idx)}
    return np.array([position.get(int(q), -1) for q in q_idx])


def score(
    evalset: EvalSet, descs: np.ndarray, encodings: Sequence[str] = ("float", "float16", "int8", "binary")
) -> dict[str, dict]:
    """Metrics of one descriptor matrix under each wire encoding (decoded as the server would).

    The metrics are the evaluation set's (``ks``, ``map_at``, ``ns``), computed over blocks of queries.
    """
    q_idx, db_idx = evalset.query_idx, evalset.db_idx
    self_index = _self_index(q_idx, db_idx)
    dim = descs.shape[1]
    # Sign bits of non-negative features carry nothing: binary codes are taken after centering on the database
    # mean (what PCA-whitening stored in the firmware does on the device).
    centered = descs - descs[db_idx].mean(axis=0)
    out = {}
    for enc in encodings:
        src = centered if enc == "binary" else descs
        coded = descs if enc == "float" else np.stack([decode(encode(d, enc), enc, dim) for d in src])
        metrics = evaluate_descriptors(
            coded[q_idx],
            coded[db_idx],
            evalset.groups[q_idx],
            evalset.groups[db_idx],
            self_index,
            "binary" if enc == "binary" else "float",
            ks=evalset.ks,
            map_at=evalset.map_at,
            ns=evalset.ns,
        )
        metrics["bytes"] = 4 * dim if enc == "float" else encoded_size(enc, dim)
        out[enc] = metrics
    return out


def map_by_kind(evalset: EvalSet, descs: np.ndarray) -> dict[str, float]:
    """mAP (float descriptors) over each query kind of the set's ``kind`` column: which change of the
    image a descriptor copes with worst.  Empty when the set names no kinds."""
    q_idx, db_idx = evalset.query_idx, evalset.db_idx
    out = {}
    for kind, rows in evalset.query_kinds().items():
        q = q_idx[rows]
        metrics = evaluate_descriptors(
            descs[q],
            descs[db_idx],
            evalset.groups[q],
            evalset.groups[db_idx],
            _self_index(q, db_idx),
            ks=(1,),
            ns=False,
        )
        out[kind] = metrics["mAP"]
    return out


def run_eval(
    evalset: EvalSet, methods: dict[str, Method], progress: bool = True, keep: Optional[dict] = None
) -> dict[str, dict]:
    """Describe every image with every method and score it; ``keep``: receives each method's descriptors."""
    results = {}
    for name, method in methods.items():
        descs, seconds = describe_all(evalset, method, progress, name)
        if keep is not None:
            keep[name] = descs
        results[name] = {
            "dim": int(descs.shape[1]),
            "seconds_per_image": seconds,
            "encodings": score(evalset, descs),
        }
        by_kind = map_by_kind(evalset, descs)
        if by_kind:
            results[name]["map_by_kind"] = by_kind
    return results


def format_table(results: dict[str, dict]) -> str:
    """One row per method and encoding; the metric columns are those of the results (mAP first)."""
    first = next(iter(results.values()), None)
    metrics = [k for k in next(iter(first["encodings"].values())) if k != "bytes"] if first else []
    lines = [
        f"{'method':22s} {'enc':8s} {'bytes':>6s} "
        + " ".join(f"{k:>8s}" for k in metrics)
        + f" {'s/img':>7s}"
    ]
    for name, r in results.items():
        for enc, m in r["encodings"].items():
            cells = " ".join(f"{m[k]:8.4f}" for k in metrics)
            lines.append(f"{name:22s} {enc:8s} {m['bytes']:6d} {cells} {r['seconds_per_image']:7.3f}")
    return "\n".join(lines + _kind_lines(results))


def _kind_lines(results: dict[str, dict]) -> list[str]:
    """The mAP-per-query-kind table (float descriptors), when the set names kinds."""
    kinds = sorted({k for r in results.values() for k in r.get("map_by_kind", {})})
    if not kinds:
        return []
    lines = ["", "mAP by query kind (float)", f"{'method':22s} " + " ".join(f"{k:>9s}" for k in kinds)]
    for name, r in results.items():
        by_kind = r.get("map_by_kind", {})
        cells = " ".join(f"{by_kind[k]:9.4f}" if k in by_kind else f"{'-':>9s}" for k in kinds)
        lines.append(f"{name:22s} {cells}")
    return lines


def save_topk_png(
    evalset: EvalSet,
    descs: np.ndarray,
    path: str,
    k: int = 4,
    n_queries: int = 6,
    thumb: int = 96,
    seed: Optional[int] = 0,
) -> None:
    """A PNG grid: each row a query (left) and its top-k results (green border = correct)."""
    from PIL import Image, ImageOps

    q_idx, db_idx = evalset.query_idx, evalset.db_idx
    rng = np.random.default_rng(seed)
    chosen = rng.choice(q_idx, size=min(n_queries, q_idx.size), replace=False)
    canvas = Image.new("RGB", ((k + 1) * (thumb + 8), len(chosen) * (thumb + 8)), "white")
    for row, q in enumerate(chosen):
        sims = descs[db_idx] @ descs[q]
        ranked = [int(d) for d in db_idx[np.argsort(-sims, kind="stable")] if d != q][:k]
        for col, i in enumerate([int(q)] + ranked):
            im = Image.fromarray(evalset.load(i)).resize((thumb, thumb))
            colour = "blue" if col == 0 else ("green" if evalset.groups[i] == evalset.groups[q] else "red")
            canvas.paste(ImageOps.expand(im, border=4, fill=colour), (col * (thumb + 8), row * (thumb + 8)))
    canvas.save(path)
