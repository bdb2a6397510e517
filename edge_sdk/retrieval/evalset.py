"""Retrieval evaluation sets: a folder of images plus a ground-truth CSV, or images held in memory.

CSV columns: ``filename,group_id[,role[,kind]]`` with role ``query``, ``db`` or ``both``
(default both); ``kind`` optionally names what a query is (e.g. ``crop0.5``, ``rot``,
``colour``), and the evaluation then also reports mAP per kind.  The UKBench layout in
../shared/data/retrieval is the first instance.

:func:`load_cifar10` builds the CIFAR-10 class-retrieval set of the deep-hashing
protocol in memory (no files written): the 1,000 pixel-exact test images are the
queries, training images the database, relevance = same class (docs/retrieval.md).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DatasetError

ROLES = ("query", "db", "both")


@dataclass
class EvalSet:
    """Images (files under ``root``, or the rows of ``images``), their groups and roles, and the metrics to report.

    ``ks``: the k of mP@k; ``map_at``: the k of mAP@k; ``ns``: report the UKBench N-S score.
    """

    root: Path
    files: list[str]
    groups: np.ndarray
    roles: list[str]
    images: Optional[np.ndarray] = None  # (N, H, W, C) uint8 held in memory; then ``files`` are only names
    ks: tuple[int, ...] = (1, 4, 10)
    map_at: tuple[int, ...] = ()
    ns: bool = True
    name: str = ""
    kinds: Optional[list[str]] = None  # per image: what the query is ("" for none); None: no kind column

    def query_kinds(self) -> dict[str, np.ndarray]:
        """Positions in ``query_idx`` of each named query kind (empty when the set has no kinds)."""
        if not self.kinds:
            return {}
        labels = np.array([self.kinds[int(i)] for i in self.query_idx])
        return {k: np.flatnonzero(labels == k) for k in sorted(set(labels.tolist()) - {""})}

    def __len__(self) -> int:
        return len(self.files)

    @property
    def query_idx(self) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.roles) if r in ("query", "both")])

    @property
    def db_idx(self) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.roles) if r in ("db", "both")])

    def load(self, i: int) -> np.ndarray:
        if self.images is not None:
            return self.images[i]
        from PIL import Image

        with Image.open(self.root / self.files[i]) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_evalset(images: str | Path, gt_csv: str | Path) -> EvalSet:
    root, gt = Path(images), Path(gt_csv)
    if not gt.is_file():
        raise DatasetError(f"ground-truth CSV not found: {gt}")
    files, groups, roles, kinds = [], [], [], []
    with gt.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for n, row in enumerate(reader, start=2):
            try:
                name, group = row["filename"], int(row["group_id"])
            except (KeyError, ValueError, TypeError) as exc:
                raise DatasetError(f"{gt}:{n}: need filename,group_id[,role], found {row} ({exc})") from exc
            role = (row.get("role") or "both").strip()
            if role not in ROLES:
                raise DatasetError(f"{gt}:{n}: role must be one of {ROLES}, found {role!r}")
            if not (root / name).is_file():
                raise DatasetError(f"{gt}:{n}: image not found: {root / name}")
            files.append(name)
            groups.append(group)
            roles.append(role)
            kinds.append((row.get("kind") or "").strip())
        has_kinds = "kind" in (reader.fieldnames or [])
    if not files:
        raise DatasetError(f"{gt}: no rows")
    return EvalSet(root, files, np.array(groups), roles, name=gt.name, kinds=kinds if has_kinds else None)


CIFAR10_FILES = ("cifar10_test.npz", "cifar10_train_20k.npz")
CIFAR10_DATABASES = ("exact", "jpeg", "all")
CIFAR10_KS = (1, 10, 100, 1000)


def _limit(n: int, limit: Optional[int], what: str) -> int:
    if limit is None:
        return n
    if limit < 1:
        raise DatasetError(f"{what} must be >= 1, found {limit}")
    return min(n, limit)


def _cifar10_database(train, db: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Images, labels, training-set indices and sources of the ``db`` database (see load_cifar10)."""
    if db == "exact":
        return train["x_exact"], train["y_exact"], train["idx_exact"], ["train"] * len(train["idx_exact"])
    d_x, d_y = train["x_jpeg"], train["y"]
    d_idx = np.arange(len(d_y))
    if db == "jpeg":
        return d_x, d_y, d_idx, ["train-jpeg"] * len(d_idx)
    # "all": the exact copy replaces its JPEG copy; exact images beyond the JPEG range are appended
    e_x, e_y, e_idx = train["x_exact"], train["y_exact"], train["idx_exact"]
    inside = e_idx < len(d_y)
    d_x, d_y = d_x.copy(), d_y.copy()
    d_x[e_idx[inside]], d_y[e_idx[inside]] = e_x[inside], e_y[inside]
    exact = set(e_idx[inside].tolist())
    d_src = ["train" if i in exact else "train-jpeg" for i in range(len(d_y))]
    d_src += ["train"] * int((~inside).sum())
    return (
        np.concatenate([d_x, e_x[~inside]]),
        np.concatenate([d_y, e_y[~inside]]),
        np.concatenate([d_idx, e_idx[~inside]]),
        d_src,
    )


def load_cifar10(
    directory: str | Path,
    db: str = "exact",
    query_limit: Optional[int] = None,
    db_limit: Optional[int] = None,
) -> EvalSet:
    """CIFAR-10 class retrieval (deep-hashing protocol), in memory.

    Queries: the 1,000 pixel-exact test images (``cifar10_test.npz: x_exact``, labels
    ``y[idx_exact]``).  Database (``cifar10_train_20k.npz``), by ``db``:

    * ``exact`` (default): the 7,897 pixel-exact training images (``x_exact``, ``y_exact``):
      the same pixel domain as the queries, no JPEG artefacts;
    * ``jpeg``: training images 0..19,999 as quality-75 JPEG copies (``x_jpeg``, ``y``);
    * ``all``: the 22,965 distinct training images available: pixel-exact where there is
      an exact copy, the JPEG copy otherwise (each image once).

    ``query_limit`` / ``db_limit`` keep the first N of each (CIFAR-10's order is random,
    so the first N are a fair sample; the database is in training-set order).
    Metrics: mAP, mAP@1000, mP@{1,10,100,1000} (k <= database size); no N-S.
    """
    root = Path(directory)
    paths = [root / f for f in CIFAR10_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 files not found: {missing} (need {CIFAR10_FILES} in {root})")
    if db not in CIFAR10_DATABASES:
        raise DatasetError(f"CIFAR-10 database must be one of {CIFAR10_DATABASES}, found {db!r}")
    try:
        with np.load(paths[0]) as test:
            q_x, q_y = test["x_exact"], test["y"][test["idx_exact"]]
        with np.load(paths[1]) as train:
            d_x, d_y, d_idx, d_src = _cifar10_database(train, db)
    except (KeyError, ValueError, OSError) as exc:
        raise DatasetError(f"malformed CIFAR-10 files in {root}: {exc}") from exc
    nq, nd = _limit(len(q_y), query_limit, "query limit"), _limit(len(d_y), db_limit, "database limit")
    files = [f"test/{i:05d}" for i in range(nq)] + [
        f"{s}/{int(i):05d}" for s, i in zip(d_src[:nd], d_idx[:nd])
    ]
    return EvalSet(
        root,
        files,
        np.concatenate([q_y[:nq], d_y[:nd]]).astype(np.int64),
        ["query"] * nq + ["db"] * nd,
        images=np.concatenate([q_x[:nq], d_x[:nd]]),
        ks=tuple(k for k in CIFAR10_KS if k <= nd),
        map_at=(1000,),
        ns=False,
        name=f"cifar10 ({nq} queries x {nd} {db} database images)",
    )
