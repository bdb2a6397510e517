"""Tail weight averaging: the mean of a model's parameters over the last epochs of a stage.

QAT accuracy swings from epoch to epoch (about +-1.5 points on CIFAR-10 at 2-bit activations),
so the last epoch is a noisy pick.  Averaging the latent weights over the stage's tail (Polyak /
stochastic weight averaging, Izmailov et al. 2018) lands nearer the middle of the region the
optimizer wanders in.  It is only sound where the normalization statistics are frozen, i.e. the
fused stage: there the averaged weights are quantized with the same frozen steps and biases are
derived from the same frozen statistics, so the average is again an exact chip model.
"""

from __future__ import annotations

import torch

AVERAGE_STAGES = ("fused",)


class ParamAverage:
    """Running float64 sum of every parameter; ``apply`` writes the mean into the model."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    @torch.no_grad()
    def add(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            v = p.detach().to(torch.float64)
            self.sums[name] = self.sums[name] + v if name in self.sums else v.clone()
        self.count += 1

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        if self.count == 0:
            raise ValueError("no snapshots to average: the averaging window saw no training steps")
        params = dict(model.named_parameters())
        if params.keys() != self.sums.keys():
            raise ValueError(
                f"the averaged parameters {sorted(self.sums)[:3]}... do not match the model's "
                f"{sorted(params)[:3]}..."
            )
        for name, p in params.items():
            p.copy_((self.sums[name] / self.count).to(p.dtype))

    def state_dict(self) -> dict:
        return {"sums": self.sums, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.count = dict(state["sums"]), int(state["count"])


def check_average_stage(name: str, average_last: int, epochs: int) -> None:
    """Averaging needs frozen normalization statistics and a window within the stage."""
    if average_last <= 0:
        return
    if name not in AVERAGE_STAGES:
        raise ValueError(
            f"weight averaging (average_last={average_last}) needs frozen normalization statistics: "
            f"stage {name!r} updates them; use it in one of {AVERAGE_STAGES}"
        )
    if average_last > epochs:
        raise ValueError(f"average_last={average_last} is longer than the {name!r} stage's {epochs} epochs")


__all__ = ["AVERAGE_STAGES", "ParamAverage", "check_average_stage"]
