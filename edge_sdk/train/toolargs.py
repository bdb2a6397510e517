"""Command-line options and the stage plan shared by the training scripts in ``tools/``.

Every staged training script takes the same run options (threads, seed, batch size,
learning rate, epochs per stage, resume / export-only), so they are declared once here;
each script keeps only its own defaults and extra options.
"""

from __future__ import annotations

import argparse


def add_run_args(
    ap: argparse.ArgumentParser,
    *,
    threads: int,
    lr: float,
    epochs: dict[str, int],
    batch_size: int = 128,
    distill: float = 0.0,
    distill_help: str = "weight of distillation from the float stage",
) -> None:
    """``--threads --seed --batch-size --lr``, ``--<stage>-epochs`` for each stage in
    ``epochs`` (name -> default), ``--fused-average`` (with a fused stage), ``--distill``,
    ``--no-resume`` and ``--export-only``."""
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=batch_size)
    ap.add_argument("--lr", type=float, default=lr)
    for stage, default in epochs.items():
        ap.add_argument(f"--{stage}-epochs", type=int, default=default)
    if "fused" in epochs:
        ap.add_argument(
            "--fused-average",
            type=int,
            default=0,
            metavar="N",
            help="end the fused stage with the mean weights of its last N epochs (snapshots every "
            "10 steps; docs/training.md); 0: its last weights",
        )
    ap.add_argument("--distill", type=float, default=distill, help=distill_help)
    ap.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming from the checkpoint"
    )
    ap.add_argument("--export-only", action="store_true", help="skip training; export the last checkpoint")


def full_plan(args: argparse.Namespace) -> list:
    """float -> qweight -> calib (20 batches) -> qact -> fused, each stage at a lower rate."""
    from . import Stage

    return [
        Stage("float", args.float_epochs, args.lr),
        Stage("qweight", args.qweight_epochs, args.lr / 3),
        Stage("calib", batches=20),
        Stage("qact", args.qact_epochs, args.lr / 3),
        Stage("fused", args.fused_epochs, args.lr / 10, average_last=getattr(args, "fused_average", 0)),
    ]
