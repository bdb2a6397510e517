"""Train a 1-bit-weight MNIST classifier for the lightspeeur-2803 profile and write its firmware.

    nice -n 19 python tools/train_mnist.py              # resumes from out/train/mnist_1bit/ckpt.pt

All chip convolutions use 1-bit weights (sign x one 12-bit scalar per 3x3 kernel)
and 5-bit activations; the host head is GAP + dense.  Trained on the 60,000 MNIST
training images (random shifts of up to 2 pixels), measured on the 10,000 test
images by running the exported firmware on the chip emulator / reference backend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPEC = [
    {"out": 32, "bits": 1},
    {"op": "pool"},
    {"out": 64, "bits": 1},
    {"out": 64, "bits": 1},
    {"op": "pool"},
    {"out": 128, "bits": 1},
    {"out": 128, "bits": 1, "k": 1, "raw": True},
]


def main(argv=None) -> int:
    from edge_sdk.train.toolargs import add_run_args, full_plan

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist" / "mnist.npz"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "mnist_1bit"))
    ap.add_argument("--firmware", default=str(REPO / "firmware_images" / "mnist_lightspeeur_1bit.edgefw"))
    add_run_args(ap, threads=1, lr=3e-3, epochs={"float": 3, "qweight": 1, "qact": 1, "fused": 1})
    args = ap.parse_args(argv)

    import torch

    from edge_sdk.train import QNet, TrainConfig, load_mnist, train

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_data, test_data = load_mnist(args.data)
    model = QNet("lightspeeur-2803", (28, 28, 1), SPEC, classes=10)
    cfg = TrainConfig(
        full_plan(args),
        out_dir=args.out,
        batch_size=args.batch_size,
        seed=args.seed,
        weight_decay=1e-4,
        augment=True,
        aug_pad=2,
        aug_flip=False,
        distill=args.distill,
    )
    if not args.export_only:
        train(model, train_data, test_data, cfg, resume=not args.no_resume)
    else:
        model.load_state_dict(torch.load(Path(args.out) / "ckpt.pt", weights_only=False)["model"])
    from edge_sdk.train.publish import publish

    publish(
        model,
        Path(args.out),
        Path(args.firmware),
        test_data,
        name="mnist_lightspeeur_1bit",
        data_desc="MNIST (shared/data/mnist/mnist.npz, pixel-exact): 60,000 training images with random shifts "
        "of up to 2 pixels (zero padding); test: the 10,000 test images.",
        command="nice -n 19 python tools/train_mnist.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
