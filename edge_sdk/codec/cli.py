"""``edge-sdk codec-eval``: rate-distortion comparison of image codecs on a folder of images."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from ..errors import InputError

DEFAULT_METHODS = "jpeg,webp,ours-baseline-full,ours-baseline-patch"


def _builtin_methods(patch: int, backend) -> dict:
    """name -> (factory, description) of the methods the harness knows without plugins."""
    from .baseline import BaselineFamily
    from .pillow_codecs import jpeg_family, webp_family

    base = f"non-learned baseline: per-{patch}x{patch}-patch YCbCr box-downsample + quantize, bit-planes, arithmetic coder"
    return {
        "jpeg": (jpeg_family, "JPEG (Pillow/libjpeg, 4:2:0), quality searched per image"),
        "webp": (webp_family, "WebP lossy (Pillow/libwebp, method 4), quality searched per image"),
        "ours-baseline-full": (
            lambda: BaselineFamily("full", "patch", patch, backend),
            base + "; full-frame bilinear decoder, per-patch records",
        ),
        "ours-baseline-patch": (
            lambda: BaselineFamily("patch", "patch", patch, backend),
            base + "; patch-independent bilinear decoder, per-patch records",
        ),
        "ours-nqe-full": (
            lambda: _learned_family("full"),
            "learned: nqe-1mb chip encoder (binary latents, 8/16/32/64 channels), full-frame numpy decoder",
        ),
        "ours-nqe-patch": (
            lambda: _learned_family("patch"),
            "learned: same encoder and weights, each patch decoded alone (patch-independent)",
        ),
        "ours-baseline-full-framecoded": (
            lambda: BaselineFamily("full", "frame", patch, backend),
            base + "; full-frame decoder, one record per frame",
        ),
    }


def _learned_family(decoder: str):
    from .learned import LearnedFamily

    return LearnedFamily(decoder)


def _plugin_methods(specs: list) -> list:
    """``module:callable`` -> Method(s): the callable returns a Codec / CodecFamily or a list of them."""
    from .evaluate import Method

    out = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not attr:
            raise InputError(f"--codec expects module:callable, found {spec!r}")
        made = getattr(importlib.import_module(module_name), attr)()
        for codec in made if isinstance(made, (list, tuple)) else [made]:
            out.append(Method(codec.name, codec, getattr(codec, "description", spec)))
    return out


def _methods(args: argparse.Namespace) -> list:
    from .evaluate import Method

    known = _builtin_methods(args.patch, args.backend)
    wanted = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise InputError(f"unknown methods {unknown}; choose from {sorted(known)}")
    return [Method(name, known[name][0](), known[name][1]) for name in wanted] + _plugin_methods(args.codec)


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import format_table, load_images, run_eval
    from .plot import rd_plot

    images = load_images(args.images, args.limit)
    methods = _methods(args)

    def progress(method, image, row):
        if not args.quiet:
            print(
                f"  {method:28s} {image:14s} bpp {row['bpp']:.3f} PSNR {row['psnr-rgb']:.2f}", file=sys.stderr
            )

    result = run_eval(images, methods, tuple(args.bpp), args.patch, progress)
    result["dataset"]["folder"] = str(args.images)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    if args.png:
        rd_plot(result, args.png)
        print(f"wrote {args.png}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``codec-eval`` to the ``edge-sdk`` command line."""
    p = subparsers.add_parser(
        "codec-eval", help="rate-distortion of JPEG, WebP and our patch codecs on images"
    )
    p.add_argument("--images", required=True, help="folder of images (e.g. Kodak)")
    p.add_argument("--json", help="write the results (CompressAI-style entries per method) here")
    p.add_argument("--png", help="write the RD plot (PNG) here")
    p.add_argument("--bpp", type=float, nargs="+", default=[0.25], help="target bit rates (default 0.25)")
    p.add_argument("--methods", default=DEFAULT_METHODS, help="comma list of built-in methods")
    p.add_argument(
        "--codec",
        action="append",
        default=[],
        metavar="MODULE:CALLABLE",
        help="add a codec (or codec family) made by this callable, e.g. a learned codec",
    )
    p.add_argument("--patch", type=int, default=32, help="patch size (baseline and seam metric)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--backend", choices=["auto", "cython", "reference"], help="arithmetic coder backend")
    p.add_argument("--quiet", action="store_true", help="no per-image progress")
    p.set_defaults(func=_cmd_eval)
