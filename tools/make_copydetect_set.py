"""Build the large-image copy-detection set for retrieval-eval (seeded, documented in docs/retrieval.md).

    python tools/make_copydetect_set.py --out /tmp/copydetect [--data ../shared/data] [--seed 0]

Originals: the high-resolution photos and the Kodak images (``role=db``).  For each original,
queries (``role=query``, same group) are: crops at several scales and positions, 90/180/270
rotations of a crop, JPEG re-encodes (quality 30..60) and colour shifts (gain, gamma, hue
swap).  Distractors (``role=db``, groups of their own) are crops of the UKBench photos.
Writes JPEG/PNG files plus ``gt.csv`` (filename,group_id,role,kind; kind names the query's
transformation, so ``retrieval-eval`` also reports mAP per kind).  Never used for training.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image


def _originals(data: Path) -> list[Path]:
    hires = sorted(p for p in (data / "hires").glob("*") if p.suffix.lower() in (".png", ".jpg"))
    return hires + sorted((data / "kodak").glob("kodim*.png"))


def _crop(img: Image.Image, rng: np.random.Generator, scale: float) -> Image.Image:
    w, h = img.size
    cw, ch = max(64, int(w * scale)), max(64, int(h * scale))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def _colour_shift(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    a = np.asarray(img, np.float32) / 255
    a = np.clip(a * rng.uniform(0.7, 1.3, 3), 0, 1) ** rng.uniform(0.7, 1.4)
    return Image.fromarray((a * 255).round().astype(np.uint8))


def variants(img: Image.Image, rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    """The query transformations of one original (name suffix, image)."""
    out = [(f"crop{s}", _crop(img, rng, s)) for s in (0.5, 0.3, 0.2)]
    out.append(("rot", _crop(img, rng, 0.4).rotate(int(rng.choice([90, 180, 270])), expand=True)))
    out.append(("jpeg", img))  # re-encoded at low quality when saved
    out.append(("colour", _colour_shift(_crop(img, rng, 0.4), rng)))
    return out


def build(data: Path, out: Path, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    originals = _originals(data)
    for group, path in enumerate(originals):
        img = Image.open(path).convert("RGB")
        name = f"orig_{group:03d}.png"
        img.save(out / name)
        rows.append((name, group, "db", ""))
        for suffix, q in variants(img, rng):
            qname = f"q_{group:03d}_{suffix}.jpg"
            q.save(out / qname, quality=int(rng.integers(30, 61)) if suffix == "jpeg" else 90)
            rows.append((qname, group, "query", suffix))
    distractors = sorted((data / "retrieval" / "ukbench_first14").glob("*.jpg"))
    for n, path in enumerate(distractors):
        d = _crop(Image.open(path).convert("RGB"), rng, 0.8)
        dname = f"distractor_{n:03d}.jpg"
        d.save(out / dname, quality=90)
        rows.append((dname, len(originals) + n, "db", ""))
    with open(out / "gt.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "group_id", "role", "kind"])
        writer.writerows(rows)
    return len(rows)


def main(argv=None) -> int:
    default = Path(os.environ.get("EDGE_SDK_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = build(args.data, args.out, args.seed)
    print(f"wrote {n} images and {args.out / 'gt.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
