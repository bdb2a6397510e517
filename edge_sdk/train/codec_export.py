"""Export the trained learned codec: encoder firmware, numpy decoder weights, checks, model card.

``export_codec`` writes the encoder (chip layers only, raw latent output) as a firmware image and
the decoder as ``DecoderWeights`` (docs/codec.md), then checks and measures what it wrote:

* the encoder firmware on the Device gives the same latent bits as the fused torch model, bit for
  bit, on CIFAR-10 *test* patches (never used in training);
* the numpy decoder matches the torch decoder (max |difference| on the same latents);
* Kodak (the test set, never trained on): bpp from the actual bitstream bytes, PSNR, MS-SSIM and
  the seam ratio of the full-frame and patch-independent decoders at every rate, and JPEG / WebP
  at matched bpp (``edge_sdk.codec.evaluate``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..codec import learned
from ..codec.evaluate import Method, format_table, load_images, run_eval
from ..firmware import load_firmware, write_firmware
from .codec_model import PatchCodecNet
from .export import to_network, weight_memory_bits


def decoder_weights(model: PatchCodecNet) -> learned.DecoderWeights:
    layers = {
        name: (conv.weight.detach().float().numpy().copy(), conv.bias.detach().float().numpy().copy())
        for name, conv in model.decoder.layers()
    }
    meta = {
        "format": learned.DECODER_FORMAT,
        "latent_channels": model.latent_channels,
        "patch": 32,
        "rates_channels": list(learned.RATES),
        "layers": list(learned.DECODER_LAYERS),
    }
    return learned.DecoderWeights(layers, meta)


def check_encoder(model: PatchCodecNet, blob: bytes, patches: np.ndarray) -> dict:
    """Latent bits of the firmware (Device) vs the fused torch model on the same patches."""
    enc = learned.ChipPatchEncoder(load_firmware(blob), model.latent_channels)
    chip = enc.encode_patches(patches)
    model.eval()
    with torch.no_grad():
        feats, _ = model.encoder.features(torch.from_numpy(patches))
    torch_bits = (feats.permute(0, 2, 3, 1).numpy() > 0).astype(np.uint8)
    return {
        "patches": len(patches),
        "bit_mismatches": int((chip != torch_bits).sum()),
        "bits": int(chip.size),
    }


def check_decoder(model: PatchCodecNet, weights: learned.DecoderWeights, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    z = np.where(rng.random((8, 12, model.latent_channels)) < 0.5, -1.0, 1.0).astype(np.float32)
    with torch.no_grad():
        ref = model.decoder(torch.from_numpy(z).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    return float(np.abs(learned.decode_latent_image(weights, z) - ref).max())


def kodak_eval(folder: Path, kodak: Path, target: float = 0.26) -> dict:
    """Every rate of both decoders, and JPEG / WebP matched to ``target`` bpp, on ``kodak``."""
    fixed = [
        Method(f"ours-nqe-{dec}[L={ch}]", learned.learned_codec(ch, dec, folder=folder))
        for ch in learned.RATES
        for dec in ("full", "patch")
    ]
    from ..codec.pillow_codecs import jpeg_family, webp_family

    matched = [Method("jpeg", jpeg_family()), Method("webp", webp_family())]
    return run_eval(load_images(kodak), fixed + matched, (target,))


def export_codec(
    model: PatchCodecNet,
    run_dir: Path,
    firmware_path: Path,
    decoder_path: Path,
    data_dir: Path,
    command: str,
) -> dict:
    model.set_stage("fused")
    model.eval()
    meta = {
        "model_name": "codec_nqe_encoder",
        "codec": {
            "latent": "sign(acc + b)",
            "rates_channels": list(learned.RATES),
            "decoder": decoder_path.name,
        },
    }
    net = to_network(model.encoder, meta, head=False)
    blob = write_firmware(net)
    firmware_path.parent.mkdir(parents=True, exist_ok=True)
    firmware_path.write_bytes(blob)
    weights = decoder_weights(model)
    decoder_path.parent.mkdir(parents=True, exist_ok=True)
    weights.save(decoder_path)
    with np.load(data_dir / "cifar10" / "cifar10_test.npz") as d:
        patches = d["x_exact"][:200]
    figures = {
        "firmware": firmware_path.name,
        "firmware_bytes": len(blob),
        "weight_memory_bits": weight_memory_bits(net),
        "decoder_bytes": decoder_path.stat().st_size,
        "encoder_check": check_encoder(model, blob, patches),
        "decoder_max_abs_diff": check_decoder(model, weights),
        "command": command,
    }
    t0 = time.time()
    result = kodak_eval(firmware_path.parent, data_dir / "kodak")
    figures["kodak_eval_seconds"] = round(time.time() - t0, 1)
    figures["kodak"] = {
        e["name"]: {k: round(v[0], 4) for k, v in e["results"].items()} for e in result["methods"]
    }
    table = format_table(result)
    print(table)
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    (run_dir / "kodak_eval.json").write_text(json.dumps(result, indent=2))
    history = torch.load(run_dir / "ckpt.pt", weights_only=False).get("history", [])
    firmware_path.with_suffix(".md").write_text(model_card(net, figures, table, history))
    print(json.dumps({k: v for k, v in figures.items() if k != "kodak"}, indent=2))
    return figures


def model_card(net, f: dict, table: str, history: list) -> str:
    rows = [h for h in history if h["step"] % 500 == 0 or h is history[-1]]
    return "\n".join(
        [
            "# codec_nqe_encoder (nqe-1mb): learned patch codec",
            "",
            f"Encoder firmware `{f['firmware']}` ({f['firmware_bytes']:,} bytes) + decoder weights "
            f"`codec_nqe_decoder.npz` ({f['decoder_bytes']:,} bytes), trained with `tools/train_codec.py` "
            "(edge_sdk.train QAT flow: float -> qweight -> calib -> qact -> fused).",
            "",
            "## What it is",
            "",
            "- Encoder on the chip: 32x32 RGB patch -> 4 conv layers (3/2/2/2-bit weights, 2-bit activations, "
            "bit-shift normalization, stride 2 x3) -> 4x4x64 raw accumulators; latent bit = `acc + b > 0`.",
            "- Rates: the first L = 8/16/32/64 latent channels (0.125/0.25/0.5/1 bpp before entropy coding).",
            f"- Chip weights and constants (bits x count): {f['weight_memory_bits']:,} bits (of 1,048,576).",
            "- Decoder (server, numpy, no torch): full-frame, 7 convs with three x2 sub-pixel upsamplings; "
            "the patch-independent variant runs the same weights on one patch at a time.",
            f"- Encoder firmware vs fused torch model: {f['encoder_check']['bit_mismatches']} mismatching bits of "
            f"{f['encoder_check']['bits']:,} ({f['encoder_check']['patches']} CIFAR-10 test patches). Numpy vs torch "
            f"decoder: max |diff| {f['decoder_max_abs_diff']:.2e}.",
            "",
            "## Data",
            "",
            "Training: 64x64 crops of the high-resolution photos (`hires/`, downscaled by 0.2-0.6) and CIFAR-10 "
            "training images (x_jpeg + x_exact) upscaled x2, random flips. Kodak is the test set and is never "
            "used for training.",
            "",
            "## Kodak (24 images), target 0.26 bpp for the matched methods",
            "",
            "```",
            table,
            "```",
            "",
            "## Reproduce",
            "",
            "```",
            f["command"],
            "edge-sdk codec-eval --images ../shared/data/kodak --methods jpeg,webp,ours-nqe-full,ours-nqe-patch "
            "--bpp 0.26 --json kodak.json --png kodak.png",
            "```",
            "",
            "## Training history (every 500 steps)",
            "",
            "| stage | step | train MSE | train PSNR dB | seconds (last 100 steps) |",
            "|---|---|---|---|---|",
            *[
                f"| {h['stage']} | {h['step']} | {h['mse']} | {h['psnr_train']} | {h['seconds']} |"
                for h in rows
            ],
            "",
        ]
    )
