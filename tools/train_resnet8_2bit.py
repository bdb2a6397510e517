"""ResNet-8 (MLPerf-Tiny, CIFAR-10) at 2-bit weights on lightspeeur-2803: QAT with distillation.

    nice -n 19 python tools/train_resnet8_2bit.py           # resumes from out/train/resnet8_2bit/ckpt.pt

Starts from the float ``pretrainedResnet.tflite`` weights and fine-tunes them quantization-aware
(``edge_sdk.train``) with the float ``.tflite`` (run by LiteRT) as the distillation teacher.

The chip has unsigned activations, so each residual add ``relu(conv_Z(Y) + S)`` is folded into
the convolutions exactly as the converter folds it (``edge_sdk/convert/residual.py``): conv_Y
also emits the shortcut S as extra channels (a one-hot copy of its input, or the 1x1 stride-2
shortcut conv at the centre tap, split into relu(S) and relu(-S)), and conv_Z reads them through
one-hot +1/-1 centre kernels.  A one-tap kernel is exact at any weight width (its per-kernel
scalar carries the value).  The 2-bit kernels use the ternary-weight-network fit
(``edge_sdk.train.quant.kernel_quant(method="twn")``: zero below 0.7 mean|w|, scalar = mean of
the kept |w|), a closer fit than the paper's m/4 rule; the chip stores the same codes + scalar.  Batch norm starts as the identity plus the ``.tflite``
bias (its statistics are measured layer by layer on training images with quantized weights).

Stride-2 convolutions keep TensorFlow's padding (bottom/right; the chip takes any padding), so
the imported kernels line up exactly.

Data: the 20,000 JPEG-degraded + 7,897 pixel-exact CIFAR-10 training images (crop + flip);
accuracy: the 1,000 pixel-exact test images, the written firmware run on the chip emulator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TFLITE = "models/mlperf_tiny/pretrainedResnet.tflite"
TF_S2_PAD = (0, 0, 1, 1)  # TensorFlow "same" at stride 2 on even sizes; the chip takes any padding
INPUT_GAIN = 248.0  # the chip input code c = round(x / 8) is read as c / 31, so x ~ 248 * (c / 31)


def spec(bits: int, wq: str = "twn", stem_bits: int | None = None) -> list[dict]:
    """Folded ResNet-8: no add nodes; shortcut channels ride along (module docstring).

    ``stem_bits`` gives the 3-channel first conv its own width (default: ``bits``)."""
    nodes = [
        {"out": 16, "bits": stem_bits or bits, "name": "stem"},
        {"out": 32, "bits": bits, "name": "b1_y"},  # Y (16) + copy of X (16)
        {"out": 16, "bits": bits, "name": "b1_z"},
        {"out": 96, "bits": bits, "s": 2, "pad": TF_S2_PAD, "name": "b2_y"},  # Y (32) + S+ (32) + S- (32)
        {"out": 32, "bits": bits, "name": "b2_z"},
        {"out": 192, "bits": bits, "s": 2, "pad": TF_S2_PAD, "name": "b3_y"},  # Y (64) + S+ (64) + S- (64)
        {"out": 64, "bits": bits, "name": "b3_z"},
    ]
    return [dict(n, wq=wq) for n in nodes]


def folded_weights(graph) -> list[tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]]:
    """(weight OIHW, bias, one-tap kernels) of every folded conv, from the .tflite graph."""
    convs = [n for n in graph.nodes if n.op == "conv"]
    w = [c.attrs["w"].astype(np.float32) for c in convs]
    b = [c.attrs["b"].astype(np.float32) for c in convs]
    out = [(w[0] * np.float32(INPUT_GAIN), b[0], [])]
    # block 1: X copied (X >= 0 after the stem's ReLU)
    wy = np.zeros((32, 16, 3, 3), np.float32)
    wy[:16] = w[1]
    taps = [(16 + c, c) for c in range(16)]
    for o, i in taps:
        wy[o, i, 1, 1] = 1.0
    out.append((wy, np.concatenate([b[1], np.zeros(16, np.float32)]), taps))
    wz = np.zeros((16, 32, 3, 3), np.float32)
    wz[:, :16] = w[2]
    ztaps = [(c, 16 + c) for c in range(16)]
    for o, i in ztaps:
        wz[o, i, 1, 1] = 1.0
    out.append((wz, b[2], ztaps))
    # blocks 2 and 3: S = conv_S(X) (1x1 stride 2), at the centre tap of the stride-2 conv
    for y_i, z_i, s_i in ((3, 4, 5), (6, 7, 8)):
        c_out, c_in = w[y_i].shape[:2]
        wy = np.zeros((3 * c_out, c_in, 3, 3), np.float32)
        wy[:c_out] = w[y_i]
        # with TF_S2_PAD, the 1x1 shortcut's pixel is the stride-2 window's top-left tap
        wy[c_out : 2 * c_out, :, 0, 0] = w[s_i][:, :, 0, 0]
        wy[2 * c_out :, :, 0, 0] = -w[s_i][:, :, 0, 0]
        taps = [(o, i) for o in range(c_out, 3 * c_out) for i in range(c_in)]
        out.append((wy, np.concatenate([b[y_i], b[s_i], -b[s_i]]), taps))
        wz = np.zeros((c_out, 3 * c_out, 3, 3), np.float32)
        wz[:, :c_out] = w[z_i]
        ztaps = []
        for c in range(c_out):
            wz[c, c_out + c, 1, 1], wz[c, 2 * c_out + c, 1, 1] = 1.0, -1.0
            ztaps += [(c, c_out + c), (c, 2 * c_out + c)]
        out.append((wz, b[z_i], ztaps))
    return out


def model_name(bits: int, stem_bits: int | None) -> str:
    """resnet8_cifar10_lightspeeur_2bit, or ..._2bit_stem5 when the first conv has its own width."""
    base = f"resnet8_cifar10_lightspeeur_{bits}bit"
    return base if stem_bits in (None, bits) else f"{base}_stem{stem_bits}"


def one_tap_gain(bits: int, wq: str = "twn") -> float:
    """Latent value / wanted value of a one-tap kernel: the paper's 1/2/3-bit scalars average
    the 9 taps (x9); the 5-bit step (max|w|) and the 2-bit TWN fit (mean of the kept taps) are exact."""
    return 1.0 if bits == 5 or (bits == 2 and wq in ("twn", "opt")) else 9.0


def initialize(model, graph, x_cal, bits: int, wq: str = "twn") -> None:
    """Load the .tflite weights into the folded QNet, then set every BN so the quantized-weight
    model's conv outputs have the float model's per-channel mean and variance, plus the .tflite
    bias (bias and variance correction), measured layer by layer on training images."""
    import torch

    from edge_sdk.train.tflite_init import bn_pass

    layers = folded_weights(graph)
    convs = list(model.nodes)
    with torch.no_grad():
        for node, (w, _, taps) in zip(convs, layers):
            lat = w.copy()
            for o, i in taps:
                lat[o, i] *= one_tap_gain(bits, wq)
            node.conv.weight.copy_(torch.from_numpy(lat))
        dense = next(n for n in graph.nodes if n.op == "dense")
        model.dense.weight.copy_(torch.from_numpy(dense.attrs["w"].astype(np.float32)))
        model.dense.bias.copy_(torch.from_numpy(dense.attrs["b"].astype(np.float32)))
        xb = torch.from_numpy(x_cal)
        biases = [torch.from_numpy(b).double() for _, b, _ in layers]
        model.set_stage("float")
        float_stats = bn_pass(model, convs, xb, biases)  # pass 1: the float model's statistics
        model.set_stage("qweight")
        bn_pass(model, convs, xb, biases, float_stats)


def plan(args):
    from edge_sdk.train import Stage

    stages = [
        Stage("qweight", args.qweight_epochs, args.lr),
        Stage("calib", batches=20),
        Stage("qact", args.qact_epochs, args.lr / 2),
        Stage("fused", args.fused_epochs, args.lr / 10),
    ]
    # continuing a qact checkpoint (--init .../qact.pt) keeps its trained caps: no new calibration
    return [s for s in stages if not (args.keep_caps and s.name == "calib")]


def main(argv=None) -> int:
    from edge_sdk.train.toolargs import add_run_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "resnet8_2bit"))
    ap.add_argument(
        "--firmware",
        default="",
        help="output image (default firmware_images/<name>.edgefw, name from the bits)",
    )
    ap.add_argument("--bits", type=int, default=2, choices=(1, 2, 3, 5))
    ap.add_argument(
        "--stem-bits",
        type=int,
        default=None,
        choices=(1, 2, 3, 5),
        help="weight bits of the first conv (432 weights; default: --bits)",
    )
    ap.add_argument(
        "--wq",
        default="twn",
        choices=("paper", "twn", "opt"),
        help="2-bit kernel fit (edge_sdk.train.quant.kernel_quant): twn, or opt (exact least squares)",
    )
    add_run_args(
        ap,
        threads=2,
        lr=1e-3,
        epochs={"qweight": 3, "qact": 3, "fused": 1},
        distill=0.7,
        distill_help="weight of distillation from the float .tflite",
    )
    ap.add_argument("--temperature", type=float, default=4.0, help="distillation temperature")
    ap.add_argument(
        "--cutmix",
        type=float,
        default=0.0,
        help="probability that a batch is CutMix-ed (the teacher labels the mixed images)",
    )
    ap.add_argument(
        "--dampen",
        type=float,
        default=0.0,
        help="oscillation dampening: weight of the latent-to-quantized weight distance (TrainConfig.dampen)",
    )
    ap.add_argument(
        "--init",
        default="",
        help="continue from a finished stage of an earlier run (e.g. out/train/resnet8_2bit/qact.pt) "
        "instead of the .tflite weights; use with --qweight-epochs 0",
    )
    ap.add_argument(
        "--keep-caps",
        action="store_true",
        help="skip cap calibration (continuing from a qact checkpoint with --init)",
    )
    args = ap.parse_args(argv)
    name = model_name(args.bits, args.stem_bits)
    args.firmware = args.firmware or str(REPO / "firmware_images" / f"{name}.edgefw")

    import torch

    from edge_sdk.convert.importer import import_tflite
    from edge_sdk.train import QNet, TrainConfig, load_cifar10, train
    from edge_sdk.train.teacher import TFLiteTeacher

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = Path(args.data)
    train_data, test_data = load_cifar10(data / "cifar10")
    model = QNet(
        "lightspeeur-2803", (32, 32, 3), spec(args.bits, args.wq, stem_bits=args.stem_bits), classes=10
    )
    out = Path(args.out)
    cfg = TrainConfig(
        plan(args),
        out_dir=str(out),
        batch_size=args.batch_size,
        seed=args.seed,
        augment=True,
        distill=args.distill,
        temperature=args.temperature,
        cutmix=args.cutmix,
        dampen=args.dampen,
    )
    fresh = args.no_resume or not (out / "ckpt.pt").is_file()
    if args.export_only:
        model.load_state_dict(torch.load(out / "ckpt.pt", weights_only=False)["model"])
    else:
        if fresh and args.init:
            model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
        elif fresh:
            with np.load(data / "cifar10" / "cifar10_train_20k.npz") as d:
                initialize(model, import_tflite(data / TFLITE).graph, d["x_jpeg"][:1000], args.bits, args.wq)
        teacher = TFLiteTeacher(data / TFLITE)
        train(model, train_data, test_data, cfg, resume=not args.no_resume, teacher=teacher)
    from edge_sdk.train.publish import publish

    with np.load(data / "cifar10" / "cifar10_test.npz") as d:
        labels = [str(c) for c in d["class_names"]]
    publish(
        model,
        out,
        Path(args.firmware),
        test_data,
        name=name,
        labels=labels,
        data_desc="CIFAR-10: 20,000 JPEG-degraded training images (x_jpeg) + 7,897 pixel-exact (x_exact) "
        "with random crop (pad 4) and horizontal flip; teacher: the float MLPerf-Tiny ResNet-8 .tflite on "
        "LiteRT; test: the 1,000 pixel-exact test images",
        command="nice -n 19 python tools/train_resnet8_2bit.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
