"""The reference backend: plain numpy, the executable specification of the chip.

Every function here is written for clarity, not speed: int64 everywhere, one
obvious expression per formula of docs/datasheet.md.  The Cython emulator must
match it bit for bit (tests/emulator).  :func:`run_reference` runs a whole
network untiled; :class:`ReferenceBackend` runs it tile by tile through the
backend contract, so tiled == untiled can be checked on the spec itself.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..arith import convert_input, integer_weights, requantize
from ..network import Layer, Network
from ..tiling import Tile
from .backend import Backend
from .host import dequantize, run_host_layer


def conv_acc(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: int, pad: tuple[int, int, int, int], groups: int
) -> np.ndarray:
    """acc[y, x, o] = bias[o] + sum over (i, ky, kx) of xpad[y*s+ky, x*s+kx, i] * w[o, i, ky, kx].

    x: (H, W, C) codes; w: (O, C/groups, k, k) integer weights; zero padding
    ``pad`` = (top, left, bottom, right).  Returns int64 (Ho, Wo, O).
    """
    t, left, b, r = pad
    xp = np.pad(x.astype(np.int64), ((t, b), (left, r), (0, 0)))
    k = w.shape[-1]
    win = sliding_window_view(xp, (k, k), axis=(0, 1))[::stride, ::stride]  # (Ho, Wo, C, k, k)
    ho, wo, c = win.shape[:3]
    o = w.shape[0]
    gi, go = c // groups, o // groups
    win = win.reshape(ho, wo, groups, gi, k, k)
    wg = w.astype(np.int64).reshape(groups, go, gi, k, k)
    acc = np.einsum("hwgikl,goikl->hwgo", win, wg).reshape(ho, wo, o)
    return acc + bias.astype(np.int64)


def maxpool_codes(x: np.ndarray) -> np.ndarray:
    """2x2/2 max-pool of activation codes; an odd last row or column is dropped."""
    h, w, c = x.shape
    x = x[: h // 2 * 2, : w // 2 * 2]
    return x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))


def add_acc(a: np.ndarray, b: np.ndarray, mults: tuple[int, int]) -> np.ndarray:
    """acc = a * m_a + b * m_b (int64), then requantized like a conv."""
    return a.astype(np.int64) * mults[0] + b.astype(np.int64) * mults[1]


def layer_weights(net: Network, layer: Layer) -> np.ndarray:
    return integer_weights(layer.codes, layer.scalars, net.profile.mode(layer.weight_bits))


def chip_layer(
    net: Network, index: int, a: np.ndarray, b: np.ndarray | None = None, weights: np.ndarray | None = None
) -> np.ndarray:
    """Run one chip layer untiled on its input code map(s)."""
    layer = net.layers[index]
    if layer.op == "maxpool":
        return maxpool_codes(a)
    if layer.op == "add":
        acc = add_acc(a, b, layer.mults)
    else:
        w = layer_weights(net, layer) if weights is None else weights
        acc = conv_acc(a, w, layer.bias, layer.stride, layer.pad, layer.groups)
    return requantize(acc, layer.shift, net.profile, layer.output)


def run_reference(net: Network, frame: np.ndarray) -> list[np.ndarray]:
    """Untiled run of the whole network on one uint8 HWC frame: every layer's output.

    Chip layers give uint8 codes ("act") or int32 ("raw"); host layers float32.
    """
    x = convert_input(frame, net.profile)
    outs: list[np.ndarray] = []
    for i, layer in enumerate(net.layers):
        srcs = [x if s < 0 else outs[s] for s in layer.inputs]
        if layer.on_chip:
            outs.append(chip_layer(net, i, *srcs))
        else:
            src = (
                srcs[0]
                if layer.inputs[0] < 0 or not net.layers[layer.inputs[0]].on_chip
                else dequantize(srcs[0], net.layers[layer.inputs[0]])
            )
            outs.append(run_host_layer(layer, src))
    return outs


class ReferenceBackend(Backend):
    """The numpy spec behind the backend contract (select with backend="reference")."""

    name = "reference"

    def load(self, network: Network) -> None:
        self.network = network
        self._weights = {
            i: layer_weights(network, layer) for i, layer in enumerate(network.layers) if layer.op == "conv"
        }
        self._resident = {ls.layer: ls.weights_resident for ls in network.schedule.layers}
        self._slots = {}
        self._out = None

    def write_tile(self, slot: int, data: np.ndarray) -> None:
        self._require_loaded()
        self.check_band(slot, data)
        self._slots[slot] = np.array(data, copy=True)

    def run(self, layer_index: int, tile: Tile) -> None:
        net = self._require_loaded()
        self.check_tile(layer_index, tile, self._resident[layer_index])
        layer = net.layers[layer_index]
        a = self._slots[0]
        if layer.op == "conv":
            self._out = requantize(
                self._conv_tile(layer_index, tile, a), layer.shift, net.profile, layer.output
            )
        elif layer.op == "maxpool":
            self._out = maxpool_codes(a)
        else:
            self._out = requantize(
                add_acc(a, self._slots[1], layer.mults), layer.shift, net.profile, layer.output
            )
        self._slots = {}

    def _conv_tile(self, index: int, tile: Tile, band: np.ndarray) -> np.ndarray:
        """Accumulators of one conv tile: every conv group the tile touches, then its channels."""
        layer = self.network.layers[index]
        pad = (tile.pad_top, layer.pad[1], tile.pad_bottom, layer.pad[3])
        if layer.groups == 1:
            lo, groups = tile.ch0, 1
        else:
            go, gi = layer.out_shape[2] // layer.groups, layer.in_shape[2] // layer.groups
            lo, groups = tile.ch0 // go * go, tile.in_chn // gi
        hi = lo + (tile.chn if layer.groups == 1 else groups * go)
        acc = conv_acc(band, self._weights[index][lo:hi], layer.bias[lo:hi], layer.stride, pad, groups)
        return acc[:, :, tile.ch0 - lo : tile.ch0 - lo + tile.chn]

    def read_tile(self) -> np.ndarray:
        out, self._out = self._out, None
        return out
