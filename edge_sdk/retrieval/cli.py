"""`edge-sdk retrieval-eval`: score descriptor methods on a folder of images + ground-truth CSV."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

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
        for m in wanted:
            if m.startswith("chip"):
                out[m] = Describer(m, chip, m.split("-")[1], cfg)
    return out


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evalset import load_evalset
    from .evaluate import format_table, run_eval

    evalset = load_evalset(args.images, args.gt)
    results = run_eval(evalset, _methods(args), progress=not args.quiet)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("retrieval-eval", help="mAP / mP@k / N-S of descriptor methods on an image set")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--gt", required=True, help="CSV: filename,group_id[,role]")
    p.add_argument("--methods", default="teacher-whole,teacher-rnip", help=f"comma list of {METHODS}")
    p.add_argument("--firmware", help="descriptor firmware image for the chip methods")
    p.add_argument("--layer", help="chip layer whose output is the feature map (default: last chip layer)")
    p.add_argument("--teacher", help=f"float teacher .tflite (default: $EDGE_SDK_DATA/{DEFAULT_TEACHER})")
    p.add_argument(
        "--teacher-tensor", default=DEFAULT_TEACHER_TENSOR, help="teacher feature-map tensor (substring)"
    )
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--overlap", type=float, default=0.4)
    p.add_argument("--rotations", type=int, nargs="+", default=[0])
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_eval)
