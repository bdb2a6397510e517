"""Layer-wise reconstruction: refit each conv's real weights to the chip's actual inputs (post-training).

A calibration-only step (no labels, no gradient training): layer by layer, in
order, the inputs are what the already-quantized chip layers produce on the
calibration images (integer simulation, dequantized), and the targets are the
float model's pre-activations of the same layer.  Each channel group's weights
and bias are refit by ridge regression toward the original weights,

    min_theta |A theta - t|^2 + lam |theta - theta0|^2,   lam = ridge * mean(diag(A^T A)),

over the group's structural support (the source channels and kernel taps its
terms use).  This compensates, in expectation, the input conversion (5-bit
codes of the 8-bit image), earlier layers' activation and weight quantization,
and caps; the refit weights are then quantized as usual.  Copies (one-hot
passthrough groups) keep their exact weights.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..arith import convert_input
from ..chips import ChipProfile
from ..network import Layer, Network
from .float_exec import _windows, conv2d, pixels_to_real, run_graph
from .graph import Graph
from .intsim import _chip
from .lower_conv import SourceMap, assemble
from .plan_types import Group, Plan, PlannedLayer


class Reconstructor:
    """Holds the calibration subset's float tensors and the chip's codes as layers get lowered."""

    def __init__(
        self,
        graph: Graph,
        plan: Plan,
        frames: np.ndarray,
        profile: ChipProfile,
        *,
        ridge: float = 1e-4,
        max_rows: int = 60000,
        seed: int = 0,
        prep=None,
    ) -> None:
        needed = {t.tensor for pl in plan.layers for g in pl.groups for t in g.terms}
        needed |= {h.tensor_out for h in plan.host if h.op == "dense"}
        needed |= {t for pl in plan.layers for g in pl.groups if g.target_from_ref for t in g.ref.tensors}
        self.env = run_graph(graph, pixels_to_real(graph, frames), keep=needed)
        frames = prep.apply(frames) if prep is not None else frames
        self.codes: dict[int, np.ndarray] = {-1: convert_input(frames, profile)}
        self.ridge = ridge
        self.max_rows = max_rows
        self.rng = np.random.default_rng(seed)
        self.weights_cache: dict = {}

    def record(self, net: Network, index: int, layer: Layer) -> None:
        """Run a freshly lowered chip layer on the calibration codes (for the layers after it)."""
        srcs = [self.codes[s] for s in layer.inputs]
        self.codes[index] = _chip(net, layer, srcs, self.weights_cache)

    def fit(self, pl: PlannedLayer, src: SourceMap, in_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """Refit real weights (O, C/groups, k, k) and bias (O,) of a planned conv."""
        w0, b0 = assemble(pl, src.groups, in_channels)
        w, b = w0.copy(), b0.copy()
        cols = self._columns(pl, src)
        rows = self._rows(cols.shape[0] * cols.shape[1] * cols.shape[2])
        flat = cols.reshape(-1, cols.shape[3], cols.shape[4])[rows]  # (R, k*k, C)
        for grp in pl.groups:
            if (
                grp.copy_of is not None
                or not grp.terms
                or any(t.exact for t in grp.terms)
                and len(grp.terms) == 1
            ):
                continue
            target = self._target(pl, grp).reshape(-1, grp.channels)[rows]
            if pl.conv_groups > 1:
                self._fit_depthwise(pl, grp, flat, target, w, b)
            else:
                self._fit_dense(pl, grp, src, flat, target, w, b)
        return w, b

    def fit_host_dense(
        self, plan: Plan, chip_index: int, out_scale: float
    ) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Refit the first host dense layer (after an optional gap) to the chip's dequantized output."""
        ops = [h.op for h in plan.host]
        if "dense" not in ops or any(op != "gap" for op in ops[: ops.index("dense")]):
            return None
        dense = plan.host[ops.index("dense")]
        x = self.codes[chip_index].astype(np.float64) * out_scale
        if ops.index("dense") == 1:
            x = x.mean(axis=(1, 2))
        a = np.concatenate([x.reshape(len(x), -1), np.ones((len(x), 1))], axis=1)
        target = self.env[dense.tensor_out].reshape(len(x), -1).astype(np.float64)
        theta0 = np.concatenate([dense.w.T, dense.b[None]], axis=0).astype(np.float64)
        theta = self._solve(a, target, theta0)
        return theta[:-1].T.astype(np.float32), theta[-1].astype(np.float32)

    # ------------------------------------------------------------------ data
    def _columns(self, pl: PlannedLayer, src: SourceMap) -> np.ndarray:
        """Im2col of the source's real values, padding with code 0 as the chip does."""
        codes = self.codes[pl.src[0]].astype(np.float32)
        t, left, bot, r = pl.pad
        padded = np.pad(codes, ((0, 0), (t, bot), (left, r), (0, 0)))
        real = padded * src.scale.astype(np.float32) + src.offset.astype(np.float32)
        n, h, w, _ = codes.shape
        ho = (h + t + bot - pl.kernel) // pl.stride + 1
        wo = (w + left + r - pl.kernel) // pl.stride + 1
        return _windows(real, (pl.kernel, pl.kernel), (pl.stride, pl.stride), (1, 1), (ho, wo))

    def _rows(self, total: int) -> np.ndarray:
        if total <= self.max_rows:
            return np.arange(total)
        return np.sort(self.rng.choice(total, self.max_rows, replace=False))

    def _target(self, pl: PlannedLayer, grp: Group) -> np.ndarray:
        """The float pre-activation of the group: sign * (sum of its terms on float inputs + bias)."""
        if grp.target_from_ref:
            pre = sum(coef * self.env[t] for coef, t, _ in grp.ref.terms)
            return grp.sign * pre - grp.shift
        total: Optional[np.ndarray] = None
        for term in grp.terms:
            y = conv2d(
                self.env[term.tensor],
                term.w.astype(np.float32),
                np.zeros(grp.channels, np.float32),
                (pl.stride, pl.stride),
                pl.host_pad or pl.pad,
                pl.conv_groups,
            )
            total = y if total is None else total + y
        bias = grp.bias if grp.bias is not None else 0.0
        return grp.sign * (total + bias) - grp.shift

    # ------------------------------------------------------------------ solvers
    def _solve(self, a: np.ndarray, t: np.ndarray, theta0: np.ndarray) -> np.ndarray:
        ata = a.T @ a
        lam = self.ridge * float(np.mean(np.diag(ata))) + 1e-12
        return np.linalg.solve(ata + lam * np.eye(len(ata)), a.T @ t + lam * theta0)

    def _fit_dense(
        self,
        pl: PlannedLayer,
        grp: Group,
        src: SourceMap,
        flat: np.ndarray,
        target: np.ndarray,
        w: np.ndarray,
        b: np.ndarray,
    ) -> None:
        k2 = pl.kernel * pl.kernel
        mask = np.zeros((k2, flat.shape[2]), bool)  # (tap, source channel) support of the group
        for term in grp.terms:
            taps = np.abs(term.w).reshape(term.w.shape[0], term.w.shape[1], k2).sum(axis=(0, 1)) > 0
            for part in src.groups:
                if part.tensor == term.tensor and (term.part is None or part.key == term.part):
                    mask[np.ix_(taps, np.arange(part.offset, part.offset + part.channels))] = True
        feats = flat[:, mask].astype(np.float64)
        a = np.concatenate([feats, np.ones((len(feats), 1))], axis=1)
        wg = w[grp.slice].reshape(grp.channels, flat.shape[2], k2).transpose(0, 2, 1)  # (O, tap, C)
        theta0 = np.concatenate([wg[:, mask].T, b[grp.slice][None]], axis=0)
        theta = self._solve(a, target.astype(np.float64), theta0)
        wg = np.zeros_like(wg)
        wg[:, mask] = theta[:-1].T
        w[grp.slice] = wg.transpose(0, 2, 1).reshape(w[grp.slice].shape)
        b[grp.slice] = theta[-1]

    def _fit_depthwise(
        self, pl: PlannedLayer, grp: Group, flat: np.ndarray, target: np.ndarray, w: np.ndarray, b: np.ndarray
    ) -> None:
        k2 = pl.kernel * pl.kernel
        for o in range(grp.offset, grp.offset + grp.channels):
            c = o * pl.conv_groups // w.shape[0]  # the input channel of output o
            a = np.concatenate([flat[:, :, c].astype(np.float64), np.ones((len(flat), 1))], axis=1)
            theta0 = np.concatenate([w[o, 0].reshape(k2), [b[o]]])
            theta = self._solve(a, target[:, o - grp.offset].astype(np.float64), theta0)
            w[o, 0] = theta[:-1].reshape(pl.kernel, pl.kernel)
            b[o] = theta[-1]
