"""Retrieval evaluation sets: a folder of images plus a ground-truth CSV.

CSV columns: ``filename,group_id[,role]`` with role ``query``, ``db`` or ``both``
(default both).  The UKBench layout in ../shared/data/retrieval is the first instance.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

ROLES = ("query", "db", "both")


@dataclass
class EvalSet:
    root: Path
    files: list[str]
    groups: np.ndarray
    roles: list[str]

    @property
    def query_idx(self) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.roles) if r in ("query", "both")])

    @property
    def db_idx(self) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.roles) if r in ("db", "both")])

    def load(self, i: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.root / self.files[i]) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_evalset(images: str | Path, gt_csv: str | Path) -> EvalSet:
    root, gt = Path(images), Path(gt_csv)
    if not gt.is_file():
        raise DatasetError(f"ground-truth CSV not found: {gt}")
    files, groups, roles = [], [], []
    with gt.open(newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
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
    if not files:
        raise DatasetError(f"{gt}: no rows")
    return EvalSet(root, files, np.array(groups), roles)
