"""The staged training flow with per-epoch checkpoints and exact resume.

    plan = [Stage("float", 8, 2e-3), Stage("qweight", 3, 1e-3), Stage("calib", batches=20),
            Stage("qact", 4, 5e-4), Stage("fused", 2, 2e-4)]
    train(model, train_data, test_data, TrainConfig(plan, out_dir="runs/x"))

Each stage is fine-tuned from the previous one (methods.md section 1).  After every
epoch the model, optimizer, scheduler and history go to ``out_dir/ckpt.pt``; calling
``train`` again with the same arguments resumes where it stopped, and gives the same
result as an uninterrupted run (the shuffling and augmentation of every epoch are
seeded by (seed, stage, epoch)).  Optional distillation from a teacher (a torch
module mapping the same uint8 batch to logits, e.g. the float stage's model).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .data import ArrayData, batches, cutmix, generator
from .layers import stage_index
from .model import QNet
from .steps import save_checkpoint

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional

    def tqdm(it, **_):
        return it


@dataclass
class Stage:
    name: str
    epochs: int = 0
    lr: float = 1e-3
    batches: int = 0  # calibration batches (stage "calib")


@dataclass
class TrainConfig:
    stages: list[Stage]
    out_dir: str = "runs/train"
    batch_size: int = 128
    seed: int = 0
    weight_decay: float = 1e-4
    augment: bool = False
    aug_pad: int = 4  # random-crop padding (pixels)
    aug_flip: bool = True  # random horizontal flips (off for digits)
    distill: float = 0.0  # weight of the distillation loss (0: off)
    temperature: float = 4.0
    cutmix: float = 0.0  # probability that a training batch is CutMix-ed (data.cutmix)
    freeze_bn: bool = False  # batch norm normalizes with its running statistics while training
    dampen: float = 0.0  # weight of the oscillation-dampening penalty in the qweight/qact stages (0: off)
    teacher_stage: str = "float"  # distil from the model as it ended this stage
    max_batches: int = 0  # cap batches per epoch (tests, smoke runs)
    eval_batch: int = 500
    progress: bool = True
    log: Optional[Callable[[str], None]] = print
    history: list = field(default_factory=list)


def evaluate(model: QNet, data: ArrayData, batch_size: int = 500) -> float:
    """Top-1 accuracy of the torch model (eval mode, no gradients)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches(data, batch_size):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / max(1, len(data))


def calibrate(model: QNet, data: ArrayData, n_batches: int, batch_size: int, seed: int) -> None:
    """Cap calibration: the 99th percentile of every ReLU output per batch, max over batches."""
    model.set_stage("calib")
    model.eval()
    with torch.no_grad():
        for x, _ in batches(data, batch_size, generator(seed, 99), limit=n_batches):
            model(x)
    model.finish_calibration()


def _loss(model: QNet, x: torch.Tensor, y: torch.Tensor, teacher, cfg: TrainConfig, mix=None) -> torch.Tensor:
    """Cross-entropy (label-mixed under CutMix: ``mix`` = (pasted labels, lam)) plus distillation
    from the teacher's logits on the same (mixed) images."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    if mix is not None:
        loss = mix[1] * loss + (1 - mix[1]) * F.cross_entropy(logits, mix[0])
    if teacher is not None and cfg.distill > 0:
        with torch.no_grad():
            t = teacher(x)
        kd = (
            F.kl_div(
                F.log_softmax(logits / cfg.temperature, 1),
                F.softmax(t / cfg.temperature, 1),
                reduction="batchmean",
            )
            * cfg.temperature**2
        )
        loss = (1 - cfg.distill) * loss + cfg.distill * kd
    if cfg.dampen > 0 and model.stage in ("qweight", "qact"):
        convs = [n for n in model.nodes if n.op == "conv"]
        loss = loss + cfg.dampen * sum(n.quant_distance() for n in convs) / len(convs)
    return loss


def _optimizer(model: QNet, stage: Stage, steps: int, cfg: TrainConfig):
    opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=stage.lr, total_steps=max(1, steps), pct_start=0.15 if stage.name == "float" else 0.05
    )
    return opt, sched


def _config(cfg: TrainConfig) -> dict:
    """The plain-data part of the config (for the record in the checkpoint)."""
    return {k: v for k, v in asdict(replace(cfg, log=None, history=[])).items()}


def _teacher(out: Path, model: QNet, cfg: TrainConfig, given=None):
    if cfg.distill > 0 and given is not None:
        return given.eval()
    path = out / f"{cfg.teacher_stage}.pt"
    if cfg.distill <= 0 or not path.is_file():
        return None
    teacher = copy.deepcopy(model)
    teacher.load_state_dict(torch.load(path, weights_only=True)["model"])
    teacher.set_stage(cfg.teacher_stage)
    return teacher.eval()


def train(
    model: QNet,
    train_data: ArrayData,
    val_data: Optional[ArrayData],
    cfg: TrainConfig,
    resume: bool = True,
    teacher=None,
) -> list[dict]:
    """Run (or resume) the staged plan; returns the per-epoch history.

    ``teacher``: a callable uint8 NHWC batch -> logits (a torch module or a
    ``teacher.TFLiteTeacher``); without one, ``cfg.distill > 0`` distils from the
    model as it ended ``cfg.teacher_stage``.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    state = torch.load(ckpt_path, weights_only=False) if resume and ckpt_path.is_file() else None
    start_stage, start_epoch, history = 0, 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        start_stage, start_epoch, history = state["stage"], state["epoch"], state["history"]
    say = cfg.log or (lambda _: None)
    steps = (len(train_data) + cfg.batch_size - 1) // cfg.batch_size
    steps = min(steps, cfg.max_batches) if cfg.max_batches else steps
    for si in range(start_stage, len(cfg.stages)):
        stage = cfg.stages[si]
        stage_index(stage.name)
        if stage.name == "calib":
            if not (si == start_stage and start_epoch > 0):
                calibrate(model, train_data, stage.batches or 10, cfg.batch_size, cfg.seed)
            save_checkpoint(
                ckpt_path, {"stage": si + 1, "epoch": 0, "model": model.state_dict(), "history": history}
            )
            say(f"[calib] caps {[round(float(n.cap), 3) for n in model.nodes]}")
            continue
        model.set_stage(stage.name)
        opt, sched = _optimizer(model, stage, steps * stage.epochs, cfg)
        epoch0 = start_epoch if si == start_stage else 0
        if state is not None and si == start_stage and epoch0 > 0:
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
        stage_teacher = _teacher(out, model, cfg, teacher)
        for epoch in range(epoch0, stage.epochs):
            history.append(
                _epoch(model, train_data, val_data, cfg, stage, si, epoch, steps, opt, sched, stage_teacher)
            )
            say(json.dumps(history[-1]))
            nxt = (si, epoch + 1) if epoch + 1 < stage.epochs else (si + 1, 0)
            save_checkpoint(
                ckpt_path,
                {
                    "stage": nxt[0],
                    "epoch": nxt[1],
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "history": history,
                    "config": _config(cfg),
                },
            )
        save_checkpoint(out / f"{stage.name}.pt", {"model": model.state_dict(), "history": history})
    cfg.history = history
    return history


def _epoch(model, train_data, val_data, cfg, stage, si, epoch, steps, opt, sched, teacher) -> dict:
    model.set_stage(stage.name)
    model.train()
    if cfg.freeze_bn:  # fine-tuning a pretrained model: keep the statistics it was set up with
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    gen = generator(cfg.seed, si, epoch)
    t0, total, n = time.time(), 0.0, 0
    it = batches(
        train_data,
        cfg.batch_size,
        gen,
        aug=cfg.augment,
        limit=cfg.max_batches,
        pad=cfg.aug_pad,
        flip=cfg.aug_flip,
    )
    bar = tqdm(
        it,
        total=steps,
        desc=f"{stage.name} {epoch + 1}/{stage.epochs}",
        leave=False,
        disable=not cfg.progress,
        mininterval=10,
    )
    for x, y in bar:
        mix = None
        if cfg.cutmix > 0 and float(torch.rand((), generator=gen)) < cfg.cutmix:
            x, y_pasted, lam = cutmix(x, y, gen)
            mix = (y_pasted, lam)
        loss = _loss(model, x, y, teacher, cfg, mix)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += float(loss.detach()) * len(y)
        n += len(y)
    acc = evaluate(model, val_data, cfg.eval_batch) if val_data is not None else None
    return {
        "stage": stage.name,
        "epoch": epoch + 1,
        "loss": round(total / max(n, 1), 4),
        "val_acc": None if acc is None else round(acc, 4),
        "seconds": round(time.time() - t0, 1),
    }
