"""Distil the 2-bit lightspeeur retrieval descriptor network from the Coral MobileNet-V1 embedding extractor.

    nice -n 10 python tools/train_descriptor.py prepare --part 0/2 &   # teacher targets, two processes
    nice -n 10 python tools/train_descriptor.py prepare --part 1/2
    nice -n 10 python tools/train_descriptor.py train                  # resumes from out/train/descriptor/ckpt.pt
    nice -n 10 python tools/train_descriptor.py export                 # firmware + bit-exactness check + card

Data: CIFAR-10 training images only (x_jpeg + x_exact), as k x k mosaics (k = 1..4,
``edge_sdk.train.descriptor``); never the retrieval evaluation images (UKBench, Kodak, hires).
``prepare`` runs the float teacher (LiteRT) on every sample at 224x224 and stores its
7x7x1024 ``Conv2d_13_pointwise/Relu6`` map as uint8 codes, in chunks (resumable).
``train`` runs the QAT stages (float -> qweight -> calib -> qact -> fused) on the 112x112 student
inputs with the distillation loss; a checkpoint every ``--ckpt-every`` steps; the batch of step s
is a function of (seed, stage, s), so a resumed run sees the same data.  ``export`` writes
``firmware_images/descriptor_lightspeeur_2bit.edgefw``, checks it bit for bit against the fused
torch model and writes the model card's training part (retrieval figures: ``edge-sdk retrieval-eval``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEACHER = "models/coral/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
TEACHER_TENSOR = "Conv2d_13_pointwise/Relu6"
CHUNK = 1000
NAME = "descriptor_lightspeeur_2bit"
RECIPE = """# teacher targets: 48 chunks of 1,000 mosaics (about 5 min with two processes)
nice -n 10 python tools/train_descriptor.py prepare --part 0/2 &
nice -n 10 python tools/train_descriptor.py prepare --part 1/2; wait
# float 2,500 -> qweight 2,000 -> calib -> qact 1,000 -> fused 200 steps of 24 (about 50 min, 1 thread)
nice -n 10 python tools/train_descriptor.py train
nice -n 10 python tools/train_descriptor.py export"""


def cifar_images(data: Path) -> np.ndarray:
    with np.load(data / "cifar10" / "cifar10_train_20k.npz") as d:
        return np.concatenate([d["x_jpeg"], d["x_exact"]])


# ---------------------------------------------------------------- prepare: teacher targets
def prepare(args) -> None:
    from edge_sdk.train.descriptor import mosaic_samples
    from edge_sdk.train.descriptor_export import TeacherMaps
    from edge_sdk.train.synthetic import leaves_samples

    if args.invariant and args.source != "mosaics":
        raise SystemExit("--invariant applies to --source mosaics")
    make_samples = {"mosaics": mosaic_samples, "leaves": leaves_samples}[args.source]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = cifar_images(Path(args.data))
    teacher = TeacherMaps(str(Path(args.data) / TEACHER), TEACHER_TENSOR)
    (out / "teacher.json").write_text(json.dumps({"scale": teacher.scale}))
    k, n_parts = (int(v) for v in args.part.split("/"))
    for c in range(k, args.samples // CHUNK, n_parts):
        path = out / f"chunk{c:03d}.npz"
        if path.is_file():
            continue
        t0 = time.time()
        big, small = make_samples(
            images,
            c * CHUNK,
            (c + 1) * CHUNK,
            args.seed,
            jitter=args.jitter or args.invariant,
            invariant=args.invariant,
        )
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x=small, t=teacher(big))
        tmp.replace(path)
        print(f"chunk {c}: {time.time() - t0:.0f} s", flush=True)


def load_chunks(out: Path, samples: int, extra: str = "") -> tuple[np.ndarray, np.ndarray, float]:
    """The first ``samples`` prepared samples of ``out``, plus every chunk in ``extra`` (folders,
    comma-separated)."""
    paths = [out / f"chunk{c:03d}.npz" for c in range(samples // CHUNK)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{out}: {len(missing)} of {len(paths)} prepared chunks missing (first {missing[0]}); "
            "run `prepare` with this --out, or point --chunks at the folder that has them"
        )
    scale = json.loads((out / "teacher.json").read_text())["scale"]
    for folder in (Path(f) for f in extra.split(",") if f):  # checked before any chunk is read
        found = sorted(folder.glob("chunk*.npz"))
        if not found:
            raise FileNotFoundError(f"--extra-chunks {folder}: no prepared chunk*.npz there")
        if json.loads((folder / "teacher.json").read_text())["scale"] != scale:
            raise ValueError(f"{folder} was prepared with another teacher scale than {out}")
        paths += found
    xs, ts = [], []
    for path in paths:
        with np.load(path) as d:
            xs.append(d["x"])
            ts.append(d["t"])
    return np.concatenate(xs), np.concatenate(ts), scale


# ---------------------------------------------------------------- train
def stage_plan(args) -> list[tuple[str, int, float]]:
    return [
        ("float", args.float_steps, args.lr),
        ("qweight", args.qweight_steps, args.lr / 2),
        ("calib", 0, 0.0),
        ("qact", args.qact_steps, args.lr / 4),
        ("fused", args.fused_steps, args.lr / 10),
    ]


def _lr(step: int, total: int, lr: float) -> float:
    warm = min(1.0, (step + 1) / 100)
    return warm * lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))


def _batch(x, t, scale, seed, si, step, size):
    import torch

    idx = np.random.default_rng([seed, si, step]).integers(0, len(x), size)
    teacher = torch.from_numpy(t[idx].astype(np.float32) * scale).permute(0, 3, 1, 2)
    return torch.from_numpy(x[idx]), teacher


def _calibrate(model, x, args) -> None:
    import torch

    model.set_stage("calib")
    model.eval()
    with torch.no_grad():
        for s in range(20):
            idx = np.random.default_rng([args.seed, 99, s]).integers(0, len(x), args.batch)
            model.features(torch.from_numpy(x[idx]))
    model.finish_calibration()


def train(args, model) -> list[dict]:
    import torch

    from edge_sdk.train.descriptor import distill_loss
    from edge_sdk.train.steps import run_steps

    out = Path(args.out)
    x, t, scale = load_chunks(Path(args.chunks or out), args.samples, args.extra_chunks)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "ckpt.pt"
    state = torch.load(ckpt, weights_only=False) if ckpt.is_file() else None
    if state is None and args.init:  # fine-tune: start from another run's weights (and caps)
        model.load_state_dict(torch.load(args.init, weights_only=False)["model"])

    def loss(si: int, step: int) -> dict:
        xb, tb = _batch(x, t, scale, args.seed, si, step, args.batch)
        return distill_loss(model.features(xb)[0], tb)

    return run_steps(
        model,
        stage_plan(args),
        ckpt,
        loss=loss,
        calibrate=(lambda: None) if args.keep_caps else (lambda: _calibrate(model, x, args)),
        lr_at=_lr,
        optimizer=lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-5),
        ckpt_every=args.ckpt_every,
        state=state,
        extra={"args": vars(args)},
    )


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, found {text!r}") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("prepare", "train", "export"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "descriptor"))
    ap.add_argument("--firmware", default=str(REPO / "firmware_images" / f"{NAME}.edgefw"))
    ap.add_argument("--part", default="0/1", help="prepare: K/N, this process makes chunks K, K+N, ...")
    ap.add_argument("--samples", type=int, default=48_000)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--widths", type=_ints, help="train/export: the 5 stage widths (default 32,64,128,256,256)"
    )
    ap.add_argument("--depths", type=_ints, help="train/export: 3x3 convs per stage (default 1,1,1,1,1)")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--float-steps", type=int, default=2500)
    ap.add_argument("--qweight-steps", type=int, default=2000)
    ap.add_argument("--qact-steps", type=int, default=1000)
    ap.add_argument("--fused-steps", type=int, default=200)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--jitter", action="store_true", help="prepare: colour-jittered samples (both sides)")
    ap.add_argument(
        "--invariant",
        action="store_true",
        help="prepare: jitter only the student's side (the teacher sees the original): colour invariance",
    )
    ap.add_argument(
        "--source",
        choices=("mosaics", "leaves"),
        default="mosaics",
        help="prepare: CIFAR mosaics, or dead-leaves canvases textured from CIFAR (edge_sdk.train.synthetic)",
    )
    ap.add_argument("--chunks", default="", help="train: read the prepared chunks from here (default --out)")
    ap.add_argument(
        "--extra-chunks", default="", help="train: also every chunk in these folders (comma-separated)"
    )
    ap.add_argument("--init", default="", help="train: fine-tune from this checkpoint's weights")
    ap.add_argument("--keep-caps", action="store_true", help="train: skip cap calibration (with --init)")
    ap.add_argument(
        "--whitening-frames", type=int, default=2000, help="export: training mosaics for the PCA fit"
    )
    args = ap.parse_args(argv)
    if args.command == "prepare":
        prepare(args)
        return 0

    import torch

    from edge_sdk.train.descriptor import descriptor_qnet

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    arch = {k: v for k, v in (("widths", args.widths), ("depths", args.depths)) if v is not None}
    model = descriptor_qnet(**arch)
    if args.command == "train":
        train(args, model)
        return 0
    from edge_sdk.train.descriptor_export import export_descriptor

    x, _, _ = load_chunks(Path(args.chunks or args.out), CHUNK * 2)
    with np.load(Path(args.data) / "cifar10" / "cifar10_test.npz") as d:
        test_images = d["x_exact"]
    export_descriptor(
        model,
        Path(args.out),
        Path(args.firmware),
        x[: args.whitening_frames],
        test_images,
        teacher=str(Path(args.data) / TEACHER),
        teacher_tensor=TEACHER_TENSOR,
        command=RECIPE
        + "\n# this export:\nnice -n 10 python tools/train_descriptor.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
