"""Train the CIFAR-10 classifier for the nqe-1mb profile and write its firmware image.

    nice -n 19 python tools/train_cifar10_nqe.py            # resumes from out/train/cifar10_nqe/ckpt.pt

Mixed 3b/2b/1b weights (quinary/ternary/binary), 2-bit activations, bit-shift
normalization, under 1 Mb of chip weights and biases.  Trains on the 20,000
JPEG-degraded CIFAR-10 training images plus the 7,897 pixel-exact ones (crop + flip
augmentation); the accuracy is measured on the 1,000 pixel-exact test images by
running the exported firmware on the chip emulator / reference backend.

The default epochs (3 float, 1 + 1 quantized) are a short smoke run of about 60 %; the default widths, bits
and BSN policy are the shipped image's.  The shipped image (82.9 % on the chip, 32-64-128-256 channels,
3/3/3/3/3/2/1-bit weights, 1,018 kbit) is one run:
``--float-epochs 60 --qweight-epochs 6 --qact-epochs 20 --fused-epochs 3 --distill 0.5
--teacher ../shared/data/models/mlperf_tiny/pretrainedResnet.tflite``; the model card
(firmware_images/cifar10_nqe_1mb.md) has the exact command and the history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIDTHS = (32, 64, 128, 256)  # the shipped image: 1,018 kbit of weights and biases, within the 1 Mb
BITS = (3, 3, 3, 3, 3, 2, 1)  # weight bits of the seven convs (nqe: 3 quinary, 2 ternary, 1 binary)


def spec(widths=WIDTHS, bits=BITS) -> list[dict]:
    """VGG-style: two 3x3 convs per resolution (by default the first at 3 bits, then 2 bits), 2x2
    max-pools, and a raw 3x3 conv (1-bit by default) before the host's GAP + dense."""
    a, b, c, d = widths
    layers = []
    for i, (w, k) in enumerate(zip((a, a, b, b, c, c, d), bits)):
        layers.append({"out": w, "bits": k})
        if i in (1, 3, 5):  # after each pair of convs
            layers.append({"op": "pool"})
    layers[-1]["raw"] = True
    return layers


def main(argv=None) -> int:
    from edge_sdk.train.toolargs import add_run_args, full_plan

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "cifar10_nqe"))
    ap.add_argument("--firmware", default=str(REPO / "firmware_images" / "cifar10_nqe_1mb.edgefw"))
    add_run_args(ap, threads=2, lr=3e-3, epochs={"float": 3, "qweight": 1, "qact": 1, "fused": 1})
    ap.add_argument(
        "--teacher",
        default="",
        help=".tflite teacher for distillation (e.g. the MLPerf-Tiny ResNet-8 "
        "../shared/data/models/mlperf_tiny/pretrainedResnet.tflite); needs --distill > 0",
    )
    ap.add_argument(
        "--init", default="", help="warm start: a checkpoint (.pt) whose model weights start this run"
    )
    ap.add_argument(
        "--widths",
        default=",".join(map(str, WIDTHS)),
        help="channels of the four stages (32,64,128,256 with the default bits: 1,018 kbit of weights and 16-bit biases, within the 1 Mb)",
    )
    ap.add_argument(
        "--bits",
        default=",".join(map(str, BITS)),
        help="weight bits of the seven convs, each 1, 2 or 3 (binary, ternary, quinary)",
    )
    ap.add_argument(
        "--bsn-shift",
        choices=("track", "calibrated"),
        default="calibrated",
        help="when the bit-shift normalization exponents may change: 'calibrated' (fixed from cap calibration on, "
        "the shipped image) or 'track' (until the fused stage; docs/training.md)",
    )
    args = ap.parse_args(argv)
    widths = tuple(int(v) for v in args.widths.split(","))
    if len(widths) != 4:
        ap.error(f"--widths needs 4 channel counts, found {args.widths!r}")
    bits = tuple(int(v) for v in args.bits.split(","))
    if len(bits) != 7 or not set(bits) <= {1, 2, 3}:
        ap.error(f"--bits needs 7 widths, each 1, 2 or 3; found {args.bits!r}")

    import torch

    from edge_sdk.train import QNet, TrainConfig, load_cifar10, train

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_data, test_data = load_cifar10(args.data)
    model = QNet("nqe-1mb", (32, 32, 3), spec(widths, bits), classes=10, bsn_shift=args.bsn_shift)
    cfg = TrainConfig(
        full_plan(args),
        out_dir=args.out,
        batch_size=args.batch_size,
        seed=args.seed,
        weight_decay=1e-2,
        augment=True,
        distill=args.distill,
    )
    if args.init and not (Path(args.out) / "ckpt.pt").is_file():
        model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
    if not args.export_only:
        teacher = None
        if args.teacher:
            from edge_sdk.train.teacher import TFLiteTeacher

            teacher = TFLiteTeacher(args.teacher)
        train(model, train_data, test_data, cfg, resume=not args.no_resume, teacher=teacher)
    else:
        model.load_state_dict(torch.load(Path(args.out) / "ckpt.pt", weights_only=False)["model"])
        model.set_stage("fused")
    import numpy as np

    from edge_sdk.train.publish import publish  # imported late: training may run while it is edited

    with np.load(Path(args.data) / "cifar10_test.npz") as d:
        labels = [str(c) for c in d["class_names"]]
    publish(
        model,
        Path(args.out),
        Path(args.firmware),
        test_data,
        name="cifar10_nqe_1mb",
        labels=labels,
        data_desc="CIFAR-10: 20,000 JPEG-degraded training images (x_jpeg) + 7,897 pixel-exact (x_exact) "
        "with random crop (pad 4) and horizontal flip; test: the 1,000 pixel-exact test images",
        command="nice -n 19 python tools/train_cifar10_nqe.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
