"""The staged training flow with per-epoch checkpoints and exact resume.

    plan = [Stage("float", 8, 2e-3), Stage("qweight", 3, 1e-3), Stage("calib", batches=20),
            Stage("qact", 4, 5e-4), Stage("fused", 2, 2e-4)]
    train(model, train_data, test_data, TrainConfig(plan, out_dir="runs/x"))

Each stage is fine-tuned from the previous one (methods.md section 1).  After every
epoch the model, optimizer, scheduler and history go to ``out_dir/ckpt.pt``; calling
``train`` again with the same arguments resumes where it stopped, and gives the same
result as an uninterrupted run (the shuffling and augmentation of every epoch are
seeded by (seed, stage, epoch)).  Optional distillation from a teacher (a torch
module mapping the same uint8 batch to logits, e.g. the float stage's model), and
optional weight averaging over the fused stage's last epochs (``Stage.average_last``,
:mod:`edge_sdk.train.averaging`).
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

from .averaging import ParamAverage, check_average_stage
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
    average_last: int = 0  # end the stage with the mean weights of its last epochs (averaging.py)


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
    average_every: int = 10  # steps between weight snapshots in a stage's averaging window
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
        check_average_stage(stage.name, stage.average_last, stage.epochs)
        if stage.name == "calib":
            if not (si == start_stage and start_epoch > 0):
                calibrate(model, train_data, stage.batches or 10, cfg.batch_size, cfg.seed)
            save_checkpoint(
                ckpt_path, {"stage": si + 1, "epoch": 0, "model": model.state_dict(), "history": history}
            )
            say(f"[calib] caps {[round(float(n.cap), 3) for n in model.nodes]}")
            continue
        resumed = state if si == start_stage and start_epoch > 0 else None
        run = _StageRun(model, train_data, val_data, cfg, si, steps, ckpt_path, history, say)
        run.start(resumed, _teacher(out, model, cfg, teacher))
        run.epochs(start_epoch if resumed else 0)
        save_checkpoint(out / f"{stage.name}.pt", {"model": model.state_dict(), "history": history})
    cfg.history = history
    return history


class _StageRun:
    """One training stage: its optimizer and schedule, its epochs with checkpoints, and the
    weight average over its last ``average_last`` epochs (applied when the stage ends)."""

    def __init__(self, model, train_data, val_data, cfg, si, steps, ckpt_path, history, say) -> None:
        self.model, self.train_data, self.val_data, self.cfg = model, train_data, val_data, cfg
        self.si, self.stage, self.steps = si, cfg.stages[si], steps
        self.ckpt_path, self.history, self.say = ckpt_path, history, say
        self.average = ParamAverage()

    def start(self, resumed: Optional[dict], teacher) -> None:
        self.model.set_stage(self.stage.name)
        self.opt, self.sched = _optimizer(self.model, self.stage, self.steps * self.stage.epochs, self.cfg)
        self.teacher = teacher
        if resumed is not None:
            self.opt.load_state_dict(resumed["opt"])
            self.sched.load_state_dict(resumed["sched"])
            if "average" in resumed:
                self.average.load_state_dict(resumed["average"])

    def epochs(self, epoch0: int) -> None:
        """Epochs ``epoch0..`` with a checkpoint after each; then the average, if the stage has one.

        An averaging stage checkpoints its last epoch as (stage, epochs): a run stopped before the
        average is written resumes by computing it, never by skipping it."""
        stage = self.stage
        averages = stage.average_last > 0
        for epoch in range(epoch0, stage.epochs):
            window = epoch >= stage.epochs - stage.average_last
            self.history.append(self._epoch(epoch, self.average if window else None))
            self.say(json.dumps(self.history[-1]))
            last = epoch + 1 == stage.epochs
            self._save((self.si + 1, 0) if last and not averages else (self.si, epoch + 1))
        if averages:
            self._finish_average()

    def _finish_average(self) -> None:
        t0 = time.time()
        self.average.apply(self.model)
        acc = evaluate(self.model, self.val_data, self.cfg.eval_batch) if self.val_data is not None else None
        n = self.stage.average_last
        self.history.append(
            {
                "stage": self.stage.name,
                "epoch": f"mean of last {n}",
                "averaged_epochs": n,
                "snapshots": self.average.count,
                "loss": None,
                "val_acc": None if acc is None else round(acc, 4),
                "seconds": round(time.time() - t0, 1),
            }
        )
        self.say(json.dumps(self.history[-1]))
        self._save((self.si + 1, 0))  # the averaged model is the stage's result from here on

    def _save(self, nxt: tuple[int, int]) -> None:
        state = {
            "stage": nxt[0],
            "epoch": nxt[1],
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "history": self.history,
            "config": _config(self.cfg),
        }
        if self.stage.average_last > 0:
            state["average"] = self.average.state_dict()
        save_checkpoint(self.ckpt_path, state)

    def _step(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> float:
        """One optimizer step on a batch (CutMix-ed with probability ``cfg.cutmix``); its loss."""
        mix = None
        if self.cfg.cutmix > 0 and float(torch.rand((), generator=gen)) < self.cfg.cutmix:
            x, y_pasted, lam = cutmix(x, y, gen)
            mix = (y_pasted, lam)
        loss = _loss(self.model, x, y, self.teacher, self.cfg, mix)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return float(loss.detach())

    def _epoch(self, epoch: int, average: Optional[ParamAverage]) -> dict:
        model, cfg, stage = self.model, self.cfg, self.stage
        model.set_stage(stage.name)
        model.train()
        if cfg.freeze_bn:  # fine-tuning a pretrained model: keep the statistics it was set up with
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        gen = generator(cfg.seed, self.si, epoch)
        t0, total, n = time.time(), 0.0, 0
        it = batches(
            self.train_data,
            cfg.batch_size,
            gen,
            aug=cfg.augment,
            limit=cfg.max_batches,
            pad=cfg.aug_pad,
            flip=cfg.aug_flip,
        )
        bar = tqdm(
            it,
            total=self.steps,
            desc=f"{stage.name} {epoch + 1}/{stage.epochs}",
            leave=False,
            disable=not cfg.progress,
            mininterval=10,
        )
        for i, (x, y) in enumerate(bar):
            total += self._step(x, y, gen) * len(y)
            n += len(y)
            if average is not None and (i + 1) % cfg.average_every == 0:
                average.add(model)
        acc = evaluate(model, self.val_data, cfg.eval_batch) if self.val_data is not None else None
        return {
            "stage": stage.name,
            "epoch": epoch + 1,
            "loss": round(total / max(n, 1), 4),
            "val_acc": None if acc is None else round(acc, 4),
            "seconds": round(time.time() - t0, 1),
        }
