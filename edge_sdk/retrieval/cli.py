"""`edge-sdk retrieval-eval`: score descriptor methods on a folder of images + ground-truth CSV,
or on CIFAR-10 class retrieval (``--cifar10``, the deep-hashing protocol; docs/retrieval.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rnip import Whitening

DEFAULT_TEACHER = "models/coral/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
DEFAULT_TEACHER_TENSOR = "Conv2d_13_pointwise/Relu6"
METHODS = ("teacher-whole", "teacher-rnip", "chip-whole", "chip-nip", "chip-rnip")


def _data_root() -> Path:
    return Path(
        os.environ.get("EDGE_SDK_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
    )


def _methods(args: argparse.Namespace) -> dict:
    from .extractors import ChipExtractor, TFLiteExtractor
    from .rnip import Describer, RNIPConfig

    cfg = RNIPConfig(scales=tuple(args.scales), overlap=args.overlap, rotations=tuple(args.rotations))
    wanted = args.methods.split(",")
    unknown = sorted(set(wanted) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {METHODS}")
    out = {}
    if any(m.startswith("teacher") for m in wanted):
        teacher = TFLiteExtractor(
            str(args.teacher or _data_root() / DEFAULT_TEACHER), tensor=args.teacher_tensor
        )
        for m in wanted:
            if m.startswith("teacher"):
                out[m] = Describer(m, teacher, m.split("-")[1], cfg)
    if any(m.startswith("chip") for m in wanted):
        if not args.firmware:
            raise SystemExit("chip methods need --firmware IMAGE")
        chip = ChipExtractor(args.firmware, layer=args.layer)
        whitening = _stored_whitening(chip.image) if args.whiten else None
        for m in wanted:
            if m.startswith("chip"):
                out[m] = Describer(m, chip, m.split("-")[1], cfg, whitening)
    return out


def _stored_whitening(image) -> Whitening:
    """The PCA-whitening stored in a descriptor firmware image (metadata ``retrieval.whitening``)."""
    from .rnip import Whitening

    stored = (image.network.metadata.get("retrieval") or {}).get("whitening")
    if stored is None:
        raise SystemExit(
            "--whiten: the firmware image stores no PCA-whitening (metadata retrieval.whitening)"
        )
    return Whitening.from_metadata(stored)


def _load(args: argparse.Namespace, parser_error) -> object:
    from .evalset import load_cifar10, load_evalset

    if args.cifar10 is not None:
        if args.images or args.gt:
            parser_error("--cifar10 replaces --images/--gt: give one or the other")
        directory = args.cifar10 or _data_root() / "cifar10"
        return load_cifar10(directory, args.cifar10_db, args.query_limit, args.db_limit)
    if not (args.images and args.gt):
        parser_error("give --images DIR --gt CSV, or --cifar10 [DIR]")
    if args.query_limit is not None or args.db_limit is not None or args.cifar10_db != "exact":
        parser_error("--query-limit, --db-limit and --cifar10-db apply to --cifar10 only")
    return load_evalset(args.images, args.gt)


def small_image_notes(evalset, methods: dict) -> list[str]:
    """What the methods do with images smaller than their extractor's input (CIFAR-10: 32x32)."""
    if evalset.images is None:
        return []
    h, w = evalset.images.shape[1:3]
    notes = []
    for name, m in methods.items():
        h_in, w_in = m.extractor.input_shape[:2]
        if (h, w) != (h_in, w_in):
            notes.append(
                f"{name}: {h}x{w} images are resized (bilinear) to the extractor input {h_in}x{w_in}"
            )
        if m.method == "rnip":
            from .crops import crop_grid

            grid = crop_grid(h, w, m.config.scales, m.config.overlap)
            sides = sorted({(c.scale, c.side) for c in grid}, reverse=True)
            per_scale = ", ".join(
                f"scale {s}: {sum(c.scale == s for c in grid)} crop(s) of {d}x{d} px" for s, d in sides
            )
            notes.append(
                f"{name}: RNIP on {h}x{w} images degenerates: scale 1.0 is the whole image (= whole-image "
                f"pooling), smaller scales cut crops of a few pixels ({per_scale}); with --scales 1 it is "
                f"exactly the -whole method"
            )
    return notes


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import format_table, run_eval, save_topk_png

    evalset = _load(args, args.parser_error)
    methods = _methods(args)
    if evalset.name:
        print(f"evaluation set: {evalset.name}", flush=True)
    for note in small_image_notes(evalset, methods):
        print(f"note: {note}", file=sys.stderr, flush=True)
    descriptors: dict = {}
    results = run_eval(evalset, methods, progress=not args.quiet, keep=descriptors)
    print(format_table(results))
    if args.png:
        for name, descs in descriptors.items():
            path = _png_path(args.png, name, len(descriptors))
            save_topk_png(evalset, descs, path)
            print(f"wrote {path} (queries and their top-4, {name})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


def _png_path(png: str, method: str, n_methods: int) -> str:
    """One PNG per method: ``OUT.png`` for a single method, else ``OUT-<method>.png``."""
    if n_methods == 1:
        return png
    p = Path(png)
    return str(p.with_name(f"{p.stem}-{method}{p.suffix or '.png'}"))


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("retrieval-eval", help="mAP / mP@k / N-S of descriptor methods on an image set")
    p.add_argument("--images", help="folder of images")
    p.add_argument("--gt", help="CSV: filename,group_id[,role]")
    p.add_argument(
        "--cifar10",
        nargs="?",
        const="",
        metavar="DIR",
        help="CIFAR-10 class retrieval instead of --images/--gt: the 1,000 pixel-exact test images query the "
        "training images; DIR holds cifar10_test.npz and cifar10_train_20k.npz "
        "(default $EDGE_SDK_DATA/cifar10)",
    )
    p.add_argument(
        "--cifar10-db",
        choices=("exact", "jpeg", "all"),
        default="exact",
        help="CIFAR-10 database: the 7,897 pixel-exact training images (default), the 20,000 JPEG copies, "
        "or all 22,965 distinct ones (exact where available)",
    )
    p.add_argument("--query-limit", type=int, help="CIFAR-10: only the first N queries")
    p.add_argument("--db-limit", type=int, help="CIFAR-10: only the first N database images")
    p.add_argument("--methods", default="teacher-whole,teacher-rnip", help=f"comma list of {METHODS}")
    p.add_argument("--firmware", help="descriptor firmware image for the chip methods")
    p.add_argument("--layer", help="chip layer whose output is the feature map (default: last chip layer)")
    p.add_argument(
        "--whiten",
        action="store_true",
        help="chip methods: apply the PCA-whitening stored in the firmware image (metadata retrieval.whitening)",
    )
    p.add_argument("--teacher", help=f"float teacher .tflite (default: $EDGE_SDK_DATA/{DEFAULT_TEACHER})")
    p.add_argument(
        "--teacher-tensor", default=DEFAULT_TEACHER_TENSOR, help="teacher feature-map tensor (substring)"
    )
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--overlap", type=float, default=0.4)
    p.add_argument("--rotations", type=int, nargs="+", default=[0])
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument(
        "--png", help="write a PNG of queries and their top-4 results here (one per method: OUT-<method>.png)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_eval, parser_error=p.error)
