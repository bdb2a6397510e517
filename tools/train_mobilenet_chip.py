"""Coral MobileNet-V1 0.25/128 on lightspeeur-2803 (5-bit weights, 5-bit activations), fine-tuned by distillation.

    nice -n 19 python tools/train_mobilenet_chip.py          # resumes from out/train/mobilenet_chip/ckpt.pt

The post-training conversion (``edge-sdk convert`` with the options of
tests/data/test_convert_models.py, issue 3d) keeps the ``.tflite``'s top-1 on 40 % of the
held-out photos below (4 of Coral's 5 test photos): 5-bit activations through 27 layers of a
0.25-width network leave little margin between 1,001 classes.  This tool fine-tunes the same network
quantization-aware (``edge_sdk.train``) against the ``.tflite`` itself:

* start: the ``.tflite`` weights (``edge_sdk.train.tflite_init.load_chain``), channels
  equalized so one cap per layer fits every channel, batch norm corrected for 5-bit weights;
* stages: qweight -> cap calibration -> qact -> fused (exported as is);
* loss: distillation only (KL at temperature T) from the ``.tflite``'s logits (the uint8
  tensor before its softmax), run by LiteRT on the same images; no labels are used;
* input: the host pads each 128 x 128 frame at the bottom and right with pixel 128 (real 0),
  the first conv runs unpadded: exact, as the converter does (docs/converter.md).

Images (no ImageNet here; none of them is a Coral test photo or a UKBench photo):
``--cifar`` CIFAR-10 training images upscaled to 128 x 128, and ``--crops`` random square
crops (scale, position, flip) from each Kodak image and each high-resolution photo except
``coral_cat_1080p.jpg`` (the Coral test photo cat.bmp).  Held out (the validation figure,
never trained on): the 56 UKBench photos whole plus 4 random crops of each (seed 456),
labelled with the ``.tflite``'s own top-1, so "accuracy" there is agreement with the ``.tflite``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TFLITE = "models/coral/mobilenet_v1_0.25_128_quant.tflite"
LOGITS = "MobilenetV1/Logits/SpatialSqueeze1"
NAME = "mobilenet_v1_025_128_lightspeeur_5bit"
SHAPE = (128, 128, 3)
# the host pads bottom/right (TensorFlow "same" for the stride-2 stem on 128 x 128) with pixel 128:
# MobileNet's real input is pixel / 128 - 1, so pixel 128 is real 0
HOST_PAD = dict(pad=(0, 0, 1, 1), value=(128, 128, 128), shape=(129, 129, 3))
LEAKED = ("coral_cat_1080p.jpg",)  # the same photo as Coral's test image cat.bmp


def square_crops(path: Path, n: int, rng, lo: float, hi: float, flip: bool) -> list[np.ndarray]:
    from PIL import Image

    out = []
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        for _ in range(n):
            s = int(rng.integers(int(min(w, h) * lo), int(min(w, h) * hi) + 1))
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            c = np.asarray(im.crop((x0, y0, x0 + s, y0 + s)).resize(SHAPE[:2], Image.BILINEAR))
            out.append(c[:, ::-1] if flip and rng.random() < 0.5 else c)
    return out


def training_images(data: Path, n_cifar: int, crops: int, seed: int) -> np.ndarray:
    """Unlabeled 128 x 128 training frames (module docstring)."""
    import torch

    rng = np.random.default_rng(seed)
    photos = sorted((data / "kodak").glob("*.png"))
    photos += [
        p for p in sorted((data / "hires").iterdir()) if p.suffix in (".png", ".jpg") and p.name not in LEAKED
    ]
    out = []
    for p in photos:
        out += square_crops(p, crops, rng, 0.15, 1.0, flip=True)
    with np.load(data / "cifar10" / "cifar10_train_20k.npz") as d:
        x = np.concatenate([d["x_exact"], d["x_jpeg"]])
    x = x[rng.permutation(len(x))[:n_cifar]]
    up = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=SHAPE[:2], mode="bilinear", align_corners=False
    )
    up = up.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.concatenate([np.stack(out), up])


def heldout_images(data: Path) -> np.ndarray:
    """The 56 UKBench photos whole plus 4 random crops of each (seed 456)."""
    from edge_sdk.convert.data import load_image

    paths = sorted((data / "retrieval" / "ukbench_first14").glob("*.jpg"))
    rng = np.random.default_rng(456)
    out = [load_image(p, SHAPE) for p in paths]
    for p in paths:
        out += square_crops(p, 4, rng, 0.4, 0.9, flip=False)
    return np.stack(out)


def host_pad(x: np.ndarray) -> np.ndarray:
    from edge_sdk.runtime.inputprep import HostPad, pad_frames

    return pad_frames(x, HostPad(**HOST_PAD))


def teacher_top1(teacher, x: np.ndarray, batch: int = 250) -> np.ndarray:
    import torch

    return np.concatenate(
        [teacher(torch.from_numpy(x[i : i + batch])).argmax(1).numpy() for i in range(0, len(x), batch)]
    )


def datasets(data: Path, out: Path, args, teacher):
    """(train, held-out) ArrayData of host-padded frames labelled with the teacher's top-1; cached."""
    from edge_sdk.train.data import from_numpy

    cache = out / "data.npz"
    if not cache.is_file():
        x = host_pad(training_images(data, args.cifar, args.crops, args.seed))
        v = host_pad(heldout_images(data))
        out.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x, y=teacher_top1(teacher, x), xv=v, yv=teacher_top1(teacher, v))
    with np.load(cache) as d:
        return from_numpy(d["x"], d["y"]), from_numpy(d["xv"], d["yv"])


def metadata(data: Path) -> dict:
    from edge_sdk.runtime.inputprep import HostPad

    labels = (data / "models" / "coral" / "imagenet_labels.txt").read_text().splitlines()
    padded = list(HOST_PAD["shape"])
    return {
        "model_name": NAME,
        "classes": 1001,
        "labels": labels,
        "input": {
            "shape": padded,
            "model_shape": list(SHAPE),
            "dtype": "uint8",
            "layout": "HWC",
            "resize": "bilinear to model_shape",
            "host_pad": HostPad(**HOST_PAD).to_dict(),
            "dither": None,
            "normalization": {
                "scale": [1 / 128],
                "offset": [-1.0],
                "meaning": "real input = pixel * scale + offset",
            },
        },
        "teacher": f"shared/data/{TFLITE}",
    }


def plan(args):
    from edge_sdk.train import Stage

    stages = [
        Stage("qweight", args.qweight_epochs, args.lr),
        Stage("calib", batches=20),
        Stage("qact", args.qact_epochs, args.lr),
        Stage("fused", args.fused_epochs, args.lr / 3),
    ]
    # --init keeps its caps; --relu6-caps sets them to 6
    return [s for s in stages if not ((args.init or args.relu6_caps) and s.name == "calib")]


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(REPO / "out" / "train" / "mobilenet_chip"))
    ap.add_argument("--firmware", default=str(REPO / "firmware_images" / f"{NAME}.edgefw"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cifar", type=int, default=4000, help="upscaled CIFAR-10 training images")
    ap.add_argument("--crops", type=int, default=400, help="random crops per Kodak / hires photo")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--qweight-epochs", type=int, default=0)
    ap.add_argument("--qact-epochs", type=int, default=6)
    ap.add_argument(
        "--fused-epochs",
        type=int,
        default=2,
        help="epochs in the chip's integer arithmetic (closes the qact -> fused gap of 5-bit scalars)",
    )
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--cutmix", type=float, default=0.5)
    ap.add_argument(
        "--equalize", type=float, default=1.0, help="channel equalization strength at the start (0: off)"
    )
    ap.add_argument("--max-ratio", type=float, default=4.0, help="largest channel range ratio equalized")
    ap.add_argument(
        "--relu6-caps",
        action="store_true",
        help="caps = 6 (clip where ReLU6 clips); scale up only channels below 6 (tflite_init.load_chain)",
    )
    ap.add_argument(
        "--train-bn",
        action="store_true",
        help="batch statistics while training (default: frozen running stats)",
    )
    ap.add_argument(
        "--init",
        default="",
        help="continue from an earlier run's stage checkpoint (e.g. .../qact.pt), caps kept",
    )
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from edge_sdk.convert.importer import import_tflite
    from edge_sdk.train import QNet, TrainConfig, train
    from edge_sdk.train.teacher import TFLiteTeacher
    from edge_sdk.train.tflite_init import chain_spec, load_chain

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, out = Path(args.data), Path(args.out)
    teacher = TFLiteTeacher(
        data / TFLITE, scale=1 / 128, offset=-1.0, tensor=LOGITS, input_crop=SHAPE[:2]
    )  # uint8 input: real = pixel / 128 - 1, i.e. the pixel itself
    train_data, val = datasets(data, out, args, teacher)
    imported = import_tflite(data / TFLITE)
    graph = imported.graph
    padded = tuple(int(v) for v in train_data.x.shape[1:])
    model = QNet("lightspeeur-2803", padded, chain_spec(graph, 5, (0, 0, 0, 0)), classes=1001)
    cfg = TrainConfig(
        plan(args),
        out_dir=str(out),
        batch_size=args.batch_size,
        seed=args.seed,
        distill=1.0,
        temperature=args.temperature,
        cutmix=args.cutmix,
        eval_batch=100,
        freeze_bn=not args.train_bn,
    )
    if args.export_only:
        model.load_state_dict(torch.load(out / "ckpt.pt", weights_only=False)["model"])
    else:
        fresh = args.no_resume or not (out / "ckpt.pt").is_file()
        if fresh and args.init:
            model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
        elif fresh:
            load_chain(
                model,
                graph,
                train_data.x[:: max(1, len(train_data) // 512)].numpy(),
                equalize=args.equalize,
                relu6_caps=args.relu6_caps,
                max_ratio=args.max_ratio,
            )
        train(model, train_data, val, cfg, resume=not args.no_resume, teacher=teacher)
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--export-only"]
    command = " ".join(["nice -n 19 python tools/train_mobilenet_chip.py", *given])
    figures = export(model, out, Path(args.firmware), val, data, imported, command)
    print(json.dumps(figures, indent=2))
    return 0


def coral_photos(data: Path) -> tuple[list[str], np.ndarray]:
    from edge_sdk.convert.data import load_image

    paths = sorted((data / "models" / "coral" / "test_images").iterdir())
    return [p.name for p in paths], np.stack([load_image(p, SHAPE) for p in paths])


def export(model, out: Path, firmware: Path, val, data: Path, imported, command: str) -> dict:
    """Fused model -> firmware image; measured on the chip emulator: Coral's photos, held-out agreement."""
    import torch

    from edge_sdk.convert.importer import run_litert
    from edge_sdk.firmware import load_firmware, write_firmware
    from edge_sdk.runtime import Device
    from edge_sdk.train.export import to_network, weight_memory_bits
    from edge_sdk.train.publish import chip_accuracy

    model.set_stage("fused")
    model.eval()
    net = to_network(model, metadata(data))
    firmware.parent.mkdir(parents=True, exist_ok=True)
    firmware.write_bytes(write_firmware(net))
    image = load_firmware(firmware)
    agree, _ = chip_accuracy(image, val)
    names, photos = coral_photos(data)
    ours = Device().load(image).run(photos).output.reshape(len(photos), -1).argmax(1)
    theirs = run_litert(imported, photos).argmax(1)
    with torch.no_grad():
        fused = model(torch.from_numpy(host_pad(photos))).argmax(1).numpy()
    ckpt = out / "ckpt.pt"  # absent when every stage had 0 epochs (an export of an --init checkpoint)
    history = torch.load(ckpt, weights_only=False).get("history", []) if ckpt.is_file() else []
    figures = {
        "name": NAME,
        "firmware_bytes": firmware.stat().st_size,
        "coral_photos_same_top1": f"{int((ours == theirs).sum())}/{len(photos)}",
        "coral_photos": {n: [int(a), int(b)] for n, a, b in zip(names, ours, theirs)},
        "heldout_agreement": round(agree, 4),
        "heldout_images": len(val),
        "torch_fused_equals_chip_on_photos": bool((fused == ours).all()),
        "weight_memory_bits": weight_memory_bits(net),
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "command": command,
    }
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    firmware.with_suffix(".md").write_text(model_card(net, figures, history))
    return figures


def model_card(net, f: dict, history: list[dict]) -> str:
    from edge_sdk.train.publish import layer_table

    names = net.metadata["labels"]
    photos = "\n".join(
        f"| {n} | {a} {names[a]} | {b} {names[b]} |" for n, (a, b) in f["coral_photos"].items()
    )
    rows = "\n".join(
        f"| {h['stage']} | {h['epoch']} | {h['loss']} | {h['val_acc']} | {h['seconds']} |" for h in history
    )
    return CARD.format(f=f, photos=photos, layers="\n".join(layer_table(net)), history=rows, doc=__doc__)


CARD = """# {f[name]} (lightspeeur-2803)

Firmware image `{f[name]}.edgefw` ({f[firmware_bytes]:,} bytes): the Coral MobileNet-V1 0.25/128 `.tflite`
at 5-bit weights and 5-bit activations, fine-tuned quantization-aware by distillation from the `.tflite`.

## Figures (the firmware image run on the chip emulator, Device)

- **Coral's test photos: the same top-1 class as the `.tflite` on {f[coral_photos_same_top1]}.**
- Held-out agreement with the `.tflite`'s top-1: **{f[heldout_agreement]:.3f}** on {f[heldout_images]} UKBench photos and crops
  (the post-training conversion of issue 3d: 0.400 on the same images, and 4/5 photos with sunflower.bmp
  missed; `python -m pytest tests/data/test_convert_models.py -k mobilenet` for the photos).
- Chip weights and constants (bits x count): {f[weight_memory_bits]:,} bits.
- torch fused model equals the chip on the photos: {f[torch_fused_equals_chip_on_photos]}.
- Training time: {f[train_seconds]:.0f} s on a shared 2-core CPU (one thread).

| photo | chip top-1 | .tflite top-1 |
|---|---|---|
{photos}

## Method and data
{doc}
## Reproduce

```
{f[command]}
```

## Layers

{layers}

## Training history (val = held-out agreement, torch model)

| stage | epoch | loss | val | seconds |
|---|---|---|---|---|
{history}
"""


if __name__ == "__main__":
    raise SystemExit(main())
