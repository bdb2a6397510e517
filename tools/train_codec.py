"""Train the learned patch codec (nqe-1mb chip encoder + full-frame decoder) and export it.

    nice -n 19 python tools/train_codec.py                 # resumes from out/train/codec/ckpt.pt
    nice -n 19 python tools/train_codec.py --export-only   # re-export the last checkpoint

Data (never Kodak, the test set): 64x64 crops of the high-resolution photos (hires/, downscaled
by 0.2 .. 0.6 so their detail is at Kodak's scale; grey photos as grey RGB) and CIFAR-10 training
images (x_jpeg + x_exact) upscaled x2; random flips.  Each crop is 2x2 patches, so the decoder
learns across patch borders.  The latent width is sampled per batch (8/16/32/64 channels:
0.125/0.25/0.5/1 bpp) so one encoder serves every rate.

Stages (edge_sdk.train QAT flow, per step counts): float -> qweight -> calib -> qact -> fused;
loss = MSE on [0, 1] pixels.  Checkpoints every ``--ckpt-every`` steps and at every stage end;
the batch of step s is a function of (seed, s), so a resumed run sees the same data.

Export: ``firmware_images/codec_nqe_encoder.edgefw`` (the encoder, chip layers only, raw latent
output), ``firmware_images/codec_nqe_decoder.npz`` (decoder weights for the numpy
decoder) and a model card.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RATES = (8, 16, 32, 64)  # latent channels: 0.125 / 0.25 / 0.5 / 1 bpp
RATE_P = (0.2, 0.4, 0.2, 0.2)
CROP = 64


def load_sources(data: Path, scales=(0.2, 0.3, 0.45, 0.6)) -> tuple[list[np.ndarray], np.ndarray]:
    from PIL import Image

    photos = []
    for p in sorted((data / "hires").iterdir()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        with Image.open(p) as im:
            im = im.convert("RGB")
            for s in scales:
                size = (max(CROP, int(im.width * s)), max(CROP, int(im.height * s)))
                photos.append(np.asarray(im.resize(size, Image.LANCZOS)))
    with np.load(data / "cifar10" / "cifar10_train_20k.npz") as d:
        cifar = np.concatenate([d["x_jpeg"], d["x_exact"]])
    return photos, cifar


def make_batch(step: int, seed: int, photos, cifar, n_photo: int, n_cifar: int):
    """(uint8 crops (N, 64, 64, 3), latent channels) for one step: a function of (seed, step)."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng([seed, step])
    crops = []
    weights = np.array([p.shape[0] * p.shape[1] for p in photos], np.float64)
    for k in rng.choice(len(photos), n_photo, p=weights / weights.sum()):
        im = photos[k]
        y, x = rng.integers(0, im.shape[0] - CROP + 1), rng.integers(0, im.shape[1] - CROP + 1)
        crops.append(im[y : y + CROP, x : x + CROP])
    small = torch.from_numpy(cifar[rng.integers(0, len(cifar), n_cifar)]).permute(0, 3, 1, 2).float()
    up = F.interpolate(small, scale_factor=2, mode="bilinear", align_corners=False)
    up = up.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    batch = np.concatenate([np.stack(crops), up])
    flip = rng.random(len(batch)) < 0.5
    batch[flip] = batch[flip, :, ::-1]
    channels = int(rng.choice(RATES, p=RATE_P))
    return torch.from_numpy(np.ascontiguousarray(batch)), channels


def stage_plan(args) -> list[tuple[str, int, float]]:
    return [
        ("float", args.float_steps, args.lr),
        ("qweight", args.qweight_steps, args.lr / 2),
        ("calib", 0, 0.0),
        ("qact", args.qact_steps, args.lr / 2),
        ("fused", args.fused_steps, args.lr / 5),
    ]


def _cosine(step: int, total: int, lr: float) -> float:
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))


def _record(stage: str, step: int, run: list[dict], seconds: float) -> dict:
    mse = float(np.mean([r["total"] for r in run]))
    return {
        "stage": stage,
        "step": step,
        "mse": round(mse, 6),
        "psnr_train": round(10 * math.log10(1 / max(mse, 1e-12)), 2),
        "seconds": round(seconds, 1),
    }


def train(args, model, photos, cifar) -> list[dict]:
    import torch

    from edge_sdk.train.steps import run_steps

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "ckpt.pt"
    state = torch.load(ckpt, weights_only=False) if ckpt.is_file() and not args.no_resume else None
    plan = stage_plan(args)
    if state and args.reopen_fused and state["stage"] >= len(plan):
        # continue a finished run's fused stage from where it ended, with a longer --fused-steps
        state = dict(state, stage=len(plan) - 1, step=int(state["args"]["fused_steps"]), opt=None)

    def calibrate() -> None:
        model.set_stage("calib")
        model.eval()
        with torch.no_grad():
            for s in range(20):
                model(make_batch(10_000_000 + s, args.seed, photos, cifar, args.n_photo, args.n_cifar)[0])
        model.encoder.finish_calibration()

    def loss(si: int, step: int) -> dict:
        x, ch = make_batch(si * 1_000_000 + step, args.seed, photos, cifar, args.n_photo, args.n_cifar)
        target = x.permute(0, 3, 1, 2).float() / 255.0
        return {"total": torch.nn.functional.mse_loss(model(x, ch), target)}

    return run_steps(
        model,
        plan,
        ckpt,
        loss=loss,
        calibrate=calibrate,
        lr_at=_cosine,
        ckpt_every=args.ckpt_every,
        record=_record,
        state=state,
        extra={"args": vars(args)},
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "codec"))
    ap.add_argument("--firmware", default=str(REPO / "firmware_images" / "codec_nqe_encoder.edgefw"))
    ap.add_argument("--decoder", default=str(REPO / "firmware_images" / "codec_nqe_decoder.npz"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--n-photo", type=int, default=20)
    ap.add_argument("--n-cifar", type=int, default=12)
    ap.add_argument("--float-steps", type=int, default=3000)
    ap.add_argument("--qweight-steps", type=int, default=800)
    ap.add_argument("--qact-steps", type=int, default=1500)
    ap.add_argument("--fused-steps", type=int, default=500)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument(
        "--reopen-fused",
        action="store_true",
        help="the checkpoint's run is finished: continue its fused stage up to --fused-steps",
    )
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from edge_sdk.train.codec_model import PatchCodecNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = PatchCodecNet()
    if args.export_only:
        model.load_state_dict(torch.load(Path(args.out) / "ckpt.pt", weights_only=False)["model"])
    else:
        photos, cifar = load_sources(Path(args.data))
        train(args, model, photos, cifar)
    from edge_sdk.train.codec_export import export_codec  # late: training may run while it is edited

    export_codec(
        model,
        Path(args.out),
        Path(args.firmware),
        Path(args.decoder),
        Path(args.data),
        command="nice -n 19 python tools/train_codec.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
