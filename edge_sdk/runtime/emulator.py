"""The emulator backend: the chip's integer arithmetic in compiled Cython/C kernels.

It implements the backend contract (:mod:`edge_sdk.runtime.backend`) like the numpy
reference and equals it bit for bit (tests/emulator), but runs the convolutions as
int16 x int16 -> int32 GEMMs that the C compiler vectorizes (pmaddwd / vpdpwssd on
x86-64, with AVX2 / AVX-512 / AVX-512 VNNI variants picked at run time; smlal on
aarch64; the x86 variants run an intrinsics GEMM on weights packed at load, see
:func:`pack_gemm_weights` and docs/datasheet.md section 7).  It executes the schedule
tile by tile and enforces the SRAM bounds: every tile is checked against the profile (``SRAMOverflowError``) and against the
tiling geometry of :func:`edge_sdk.tiling.make_tile` before a kernel runs.

The kernels are optional at import time: if ``edge_sdk.runtime._emulator`` was not
compiled, ``AVAILABLE`` is False, ``IMPORT_ERROR`` says why and how to build it,
and ``EmulatorBackend()`` raises :class:`~edge_sdk.errors.BackendError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..arith import integer_weights
from ..errors import BackendError, InputError
from ..network import Network, validate_network
from ..tiling import Tile, compute_schedule, make_tile
from .backend import Backend

BUILD_HINT = (
    "build it with `python3 setup.py build_ext --inplace` in the source tree (or `make build`; "
    "needs Cython>=3, numpy and a C compiler)"
)

try:
    from . import _emulator as _kernels
except Exception as _exc:  # noqa: BLE001 - ImportError, or a build for another numpy/Python ABI
    _kernels = None
    AVAILABLE = False
    IMPORT_ERROR: Optional[str] = (
        f"the compiled fast path edge_sdk.runtime._emulator is missing or broken "
        f"({type(_exc).__name__}: {_exc}); {BUILD_HINT}"
    )
else:
    AVAILABLE = True
    IMPORT_ERROR = None


_PLAN_CACHE_MAX = 100_000  # validated tiles remembered per backend (a schedule has far fewer)


def warn_missing() -> None:
    warnings.warn(
        f"edge_sdk: fast emulator unavailable ({IMPORT_ERROR}); using the numpy reference backend",
        RuntimeWarning,
        stacklevel=3,
    )


def available_isas() -> list[str]:
    """Kernel variants this CPU runs, best last ([] when the extension is not built)."""
    return _kernels.available_isas() if AVAILABLE else []


@dataclass(frozen=True)
class _ConvConsts:
    """A conv layer's constants in the kernels' layout."""

    weights: np.ndarray  # int16 (O, kp) GEMM rows (ky, kx, i), zero-padded; or (k*k, O) for depthwise
    packed: Optional[np.ndarray]  # GEMM weights for the x86 kernels (pack_gemm_weights); None: unused
    bias: np.ndarray  # int32 (O,)
    gi: int  # input channels per group
    go: int  # output channels per group
    code_max: int  # largest input code the layer may read (int32 accumulator bound)


def pack_gemm_weights(weights: np.ndarray) -> np.ndarray:
    """GEMM weights (O, kp) -> the packed layout of the x86 kernels, (ceil(O/B), kp*B) with B = PACK_BLOCK.

    Row b holds output channels b*B .. b*B+B-1 as [kp/2][B][2]: for each pair of consecutive k, the B channels'
    two weights side by side, so one 512-bit load (two 256-bit ones on AVX2) is 16 channels x 2 k (channels
    past O are zero).
    """
    b = _kernels.PACK_BLOCK
    o, kp = weights.shape
    nb = -(-o // b)
    w = np.zeros((nb * b, kp), dtype=np.int16)
    w[:o] = weights
    return np.ascontiguousarray(w.reshape(nb, b, kp // 2, 2).transpose(0, 2, 1, 3).reshape(nb, kp * b))


def conv_constants(net: Network, index: int, packed: bool = False) -> _ConvConsts:
    """Expand a conv layer's codes to integer weights (arith.integer_weights) in the kernel layout."""
    layer = net.layers[index]
    w = integer_weights(layer.codes, layer.scalars, net.profile.mode(layer.weight_bits))
    if w.size and int(np.abs(w).max()) > 32767:
        raise BackendError(f"layer {index} ({layer.name!r}): integer weights exceed int16")
    o, gi, k, _ = w.shape
    go = o // layer.groups
    pk = None
    if gi == 1 and go == 1:
        wk = np.ascontiguousarray(w.reshape(o, k * k).T, dtype=np.int16)
    else:
        kk = k * k * gi
        kp = max(_kernels.KP_ALIGN, -(-kk // _kernels.KP_ALIGN) * _kernels.KP_ALIGN)
        wk = np.zeros((o, kp), dtype=np.int16)
        wk[:, :kk] = w.transpose(0, 2, 3, 1).reshape(o, kk)
        pk = pack_gemm_weights(wk) if packed else None
    bias = np.ascontiguousarray(layer.bias, dtype=np.int32)
    return _ConvConsts(wk, pk, bias, gi, go, net.input_max(index))


class EmulatorBackend(Backend):
    """The bit-exact emulator (select with backend="emulator"); one instance per thread.

    ``isa`` picks the kernel variant: "auto" (the best this CPU runs), or one of
    :func:`available_isas` ("default" is the portable C build).
    """

    name = "emulator"

    def __init__(self, isa: str = "auto") -> None:
        if not AVAILABLE:
            raise BackendError(f"emulator backend unavailable: {IMPORT_ERROR}")
        super().__init__()
        try:
            self._isa = _kernels.isa_index(isa)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        self.isa = _kernels.isa_names()[self._isa]
        self._packed = bool(_kernels.has_packed_gemm(self._isa))
        self._consts: dict[int, _ConvConsts] = {}
        self._resident: dict[int, bool] = {}
        self._out: Optional[np.ndarray] = None
        self._plans: dict[tuple[int, Tile], tuple] = {}

    # -- the contract ----------------------------------------------------------------
    def load(self, network: Network) -> None:
        if not isinstance(network, Network):
            raise BackendError(f"load expects a Network, found {type(network).__name__}")
        validate_network(network)  # the kernels rely on its int16 / int32 bounds
        schedule = network.schedule if network.schedule is not None else compute_schedule(network)
        if len(schedule.layers) != network.n_chip:
            raise BackendError(
                f"schedule has {len(schedule.layers)} layers, network has {network.n_chip} chip layers"
            )
        self.network = None
        self._plans = {}
        self._consts = {
            i: conv_constants(network, i, packed=self._packed)
            for i, layer in enumerate(network.layers)
            if layer.op == "conv"
        }
        self._resident = {ls.layer: bool(ls.weights_resident) for ls in schedule.layers}
        self._slots = {}
        self._out = None
        self._plans = {}
        self.network = network

    def write_tile(self, slot: int, data: np.ndarray) -> None:
        self._require_loaded()
        self.check_band(slot, data)
        self._slots[slot] = np.array(data, dtype=np.uint8, order="C", copy=True)

    def run(self, layer_index: int, tile: Tile) -> None:
        net = self._require_loaded()
        layer_index = self._check_layer_index(net, layer_index)
        if type(tile) is not Tile:
            raise BackendError(f"run expects a Tile, found {type(tile).__name__}")
        try:
            plan = self._plans.get((layer_index, tile))
        except TypeError:  # a Tile with unhashable fields
            raise BackendError(f"tile fields must be ints, found {tile}") from None
        if plan is None:  # first time this tile runs: check its geometry and SRAM (pure, so cached)
            plan = self._plan(net, layer_index, tile)
        slots, self._slots, self._out = self._slots, {}, None
        op, band_shape, args = plan
        bands = []
        for slot in range(2 if op == "add" else 1):
            band = slots.get(slot)
            if band is None:
                raise BackendError(f"layer {layer_index} ({op}): no band written to slot {slot}")
            if band.shape != band_shape:
                raise BackendError(
                    f"layer {layer_index} ({op}): slot {slot} band must be {band_shape} "
                    f"for tile {tile}, found {band.shape}"
                )
            bands.append(band)
        try:
            if op == "conv":
                out = _kernels.conv_tile(bands[0], *args)
            elif op == "maxpool":
                out = _kernels.maxpool(bands[0])
            else:
                out = _kernels.add(bands[0], bands[1], *args)
        except OverflowError as exc:
            raise InputError(f"layer {layer_index} ({net.layers[layer_index].name!r}): {exc}") from None
        except ValueError as exc:  # pragma: no cover - the plan is validated; the kernels re-check anyway
            raise BackendError(f"layer {layer_index} ({net.layers[layer_index].name!r}): {exc}") from None
        self._out = out

    def _plan(self, net: Network, layer_index: int, tile: Tile) -> tuple:
        """Validate a tile (geometry, SRAM) and precompute its kernel arguments."""
        layer = net.layers[layer_index]
        self._check_geometry(net, layer_index, tile)
        self.check_tile(layer_index, tile, self._resident.get(layer_index, True))
        p = net.profile
        floor_mode = p.rounding == "floor"
        raw = layer.output == "raw"
        if layer.op == "conv":
            c = self._consts[layer_index]
            args = (
                tile.pad_top,
                tile.pad_bottom,
                layer.pad[1],
                layer.pad[3],
                layer.kernel,
                layer.stride,
                tile.out_rows,
                layer.out_shape[1],
                tile.ch0,
                tile.chn,
                c.gi,
                c.go,
                tile.in_ch0,
                c.weights,
                c.bias,
                layer.shift,
                floor_mode,
                p.act_max,
                raw,
                c.code_max,
                self._isa,
                _kernels.CHUNK_BYTES,
                c.packed,
            )
        elif layer.op == "maxpool":
            args = ()
        else:
            args = (layer.mults[0], layer.mults[1], layer.shift, floor_mode, p.act_max, raw)
        plan = (layer.op, (tile.in_rows, layer.in_shape[1], tile.in_chn), args)
        if len(self._plans) < _PLAN_CACHE_MAX:
            self._plans[(layer_index, tile)] = plan
        return plan

    def read_tile(self) -> np.ndarray:
        out, self._out = self._out, None
        if out is None:
            raise BackendError("emulator backend: read_tile() without a run tile to read")
        return out

    # -- validation ------------------------------------------------------------------
    @staticmethod
    def _check_layer_index(net: Network, layer_index: int) -> int:
        if isinstance(layer_index, (bool, np.bool_)) or not isinstance(layer_index, (int, np.integer)):
            raise BackendError(f"layer index must be an int, found {type(layer_index).__name__}")
        i = int(layer_index)
        if not 0 <= i < len(net.layers) or not net.layers[i].on_chip:
            raise BackendError(
                f"layer {i} is not a chip layer of this network (chip layers 0..{net.n_chip - 1})"
            )
        return i

    @staticmethod
    def _check_geometry(net: Network, index: int, tile: Tile) -> None:
        """The tile must be one :func:`make_tile` produces for this layer (whole conv groups or not)."""
        layer = net.layers[index]
        ho, _, co = layer.out_shape
        fields = (tile.out_row0, tile.out_rows, tile.ch0, tile.chn)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in fields):
            raise BackendError(f"tile fields must be ints, found {tile}")
        if not (
            0 <= tile.out_row0
            and tile.out_rows >= 1
            and tile.out_row0 + tile.out_rows <= ho
            and 0 <= tile.ch0
            and tile.chn >= 1
            and tile.ch0 + tile.chn <= co
        ):
            raise BackendError(
                f"layer {index} ({layer.name!r}): tile {tile} outside the output {layer.out_shape}"
            )
        expected = make_tile(net, layer, int(tile.out_row0), int(tile.out_rows), int(tile.ch0), int(tile.chn))
        if tile != expected:
            raise BackendError(
                f"layer {index} ({layer.name!r}): tile {tile} inconsistent with the layer geometry "
                f"(expected {expected})"
            )
