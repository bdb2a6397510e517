"""The backend contract: what a chip driver must implement for the Device to drive it.

Four verbs, called by :class:`edge_sdk.runtime.device.Device` in this order for every
tile of the schedule::

    backend.load(network)                 # once: weights and constants into the chip
    backend.write_tile(0, band)           # input band (halo included) into activation SRAM
    backend.write_tile(1, band2)          # second operand (add only)
    backend.run(layer_index, tile)        # execute one tile on the chip
    out = backend.read_tile()             # output block back to the host

Bands are HWC uint8 activation codes.  ``read_tile`` returns uint8 codes for "act"
layers and int32 for "raw" layers.  A backend checks each tile's working set against
the profile's SRAM and raises :class:`~edge_sdk.errors.SRAMOverflowError` when the
schedule is violated.  A real hardware driver slots in by implementing these four
methods; the emulator (Cython) and the reference (numpy) backends are the two here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import BackendError, SRAMOverflowError
from ..network import Network
from ..tiling import Tile, tile_act_bits, weight_bits


class Backend(ABC):
    name = "abstract"

    def __init__(self) -> None:
        self.network: Network | None = None
        self._slots: dict[int, np.ndarray] = {}

    @abstractmethod
    def load(self, network: Network) -> None:
        """Take the network's weights and constants into device memory."""

    @abstractmethod
    def write_tile(self, slot: int, data: np.ndarray) -> None:
        """Host -> activation SRAM: slot 0 is the first operand, slot 1 the second (add)."""

    @abstractmethod
    def run(self, layer_index: int, tile: Tile) -> None:
        """Execute one tile of one chip layer from the SRAM slots to the output buffer."""

    @abstractmethod
    def read_tile(self) -> np.ndarray:
        """Activation SRAM -> host: the output block of the last run tile (HWC)."""

    # Shared checks, so every backend enforces the same contract.
    def _require_loaded(self) -> Network:
        if self.network is None:
            raise BackendError(f"{self.name} backend: load(network) must come before tiles are run")
        return self.network

    def check_tile(self, layer_index: int, tile: Tile, resident: bool) -> None:
        """Raise SRAMOverflowError if this tile's working set exceeds the SRAM."""
        net = self._require_loaded()
        layer = net.layers[layer_index]
        act = tile_act_bits(net, layer_index, tile)
        limit = net.profile.activation_sram_bytes * 8
        if act > limit:
            raise SRAMOverflowError(
                f"layer {layer_index} ({layer.name!r}) tile rows {tile.out_row0}+{tile.out_rows} "
                f"channels {tile.ch0}+{tile.chn} needs {act} activation bits, SRAM has {limit}"
            )
        wts = weight_bits(net, layer, layer.out_shape[2] if resident else tile.chn)
        wlimit = net.profile.weight_sram_bytes * 8
        if wts > wlimit:
            raise SRAMOverflowError(
                f"layer {layer_index} ({layer.name!r}) needs {wts} weight bits in SRAM, SRAM has {wlimit}"
            )

    def check_band(self, slot: int, data: np.ndarray) -> None:
        if slot not in (0, 1):
            raise BackendError(f"activation slot must be 0 or 1, found {slot}")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3:
            found = f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}"
            raise BackendError(f"a tile band must be uint8 (rows, W, C), found {found}")
