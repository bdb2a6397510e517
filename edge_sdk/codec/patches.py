"""Frames <-> patch grids (device side) and latent-map assembly (server side).

Grid convention (shared with ``edge_sdk.server.decoders.FrameGeometry``): a frame of
``H x W`` pixels is cut into ``ceil(H/p) x ceil(W/p)`` patches of ``p x p`` pixels,
indexed row-major (``index = row * cols + col``).  Patches on the right and bottom
border are padded to ``p x p`` by edge replication (the last real row/column is
repeated: no artificial black edge for the encoder to spend bits on); the grid
carries the true frame size so the decoder crops the padding away.

On the server each patch's latent ``(lh, lw, lc)`` arrives on its own, in any order.
:class:`LatentAssembler` tiles them into one latent map ``(rows*lh, cols*lw, lc)`` (what
a full-frame decoder consumes).  A missing or corrupt patch is *concealed*, not fatal:

* ``"neighbours"`` (default): the element-wise mean of the latents of its received
  4-neighbours (left, right, up, down), rounded half up to the latent's integer
  dtype (for binary latents: a majority vote, ties to 1).  Filling runs in passes;
  each pass fills every missing patch that has a known neighbour at the start of the
  pass (so the result does not depend on arrival order), and later passes may use
  patches concealed earlier.  Patches with no received patch anywhere get zeros.
* ``"zeros"``: every missing patch's latent is all zero.

The report names every missing, duplicate, rejected and concealed patch.  A learned
full-frame decoder that inpaints from context can still use ``report.concealed`` to
know which latents are guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

DEFAULT_PATCH = 32
CONCEALMENT = ("neighbours", "zeros")


@dataclass(frozen=True)
class PatchGrid:
    """The patch grid of one frame: true size, patch size, rows x cols."""

    height: int
    width: int
    patch: int = DEFAULT_PATCH

    def __post_init__(self) -> None:
        for name in ("height", "width", "patch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive int, found {value!r}")

    @property
    def rows(self) -> int:
        return -(-self.height // self.patch)

    @property
    def cols(self) -> int:
        return -(-self.width // self.patch)

    @property
    def n_patches(self) -> int:
        return self.rows * self.cols

    @property
    def padded_shape(self) -> tuple:
        """(height, width) after padding to whole patches."""
        return self.rows * self.patch, self.cols * self.patch

    def box(self, index: int) -> tuple:
        """Pixel box ``(y0, x0, y1, x1)`` of patch ``index``, clipped to the true frame."""
        if not 0 <= index < self.n_patches:
            raise InputError(f"patch index must be 0..{self.n_patches - 1}, found {index}")
        r, c = divmod(index, self.cols)
        y0, x0 = r * self.patch, c * self.patch
        return y0, x0, min(y0 + self.patch, self.height), min(x0 + self.patch, self.width)

    def neighbours(self, index: int) -> list:
        """Indices of the 4-neighbours of patch ``index`` inside the grid."""
        r, c = divmod(index, self.cols)
        out = []
        for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < self.rows and 0 <= cc < self.cols:
                out.append(rr * self.cols + cc)
        return out


def check_frame(frame) -> np.ndarray:
    """A uint8 (H, W) or (H, W, C) numpy frame (InputError otherwise)."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array, found {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or min(frame.shape[:2]) < 1:
        raise InputError(f"frame must be uint8 (H, W) or (H, W, C), found {frame.dtype} {frame.shape}")
    if frame.ndim == 3 and not 1 <= frame.shape[2] <= 4:
        raise InputError(f"frame must have 1..4 channels, found {frame.shape[2]}")
    return frame


def split(frame: np.ndarray, patch: int = DEFAULT_PATCH) -> tuple:
    """Frame -> (patches ``(N, p, p[, C])``, :class:`PatchGrid`), borders padded by edge replication."""
    frame = check_frame(frame)
    grid = PatchGrid(frame.shape[0], frame.shape[1], patch)
    ph, pw = grid.padded_shape
    pad = [(0, ph - grid.height), (0, pw - grid.width)] + [(0, 0)] * (frame.ndim - 2)
    padded = np.pad(frame, pad, mode="edge")
    tail = frame.shape[2:]
    tiles = padded.reshape(grid.rows, patch, grid.cols, patch, *tail).swapaxes(1, 2)
    return np.ascontiguousarray(tiles.reshape(grid.n_patches, patch, patch, *tail)), grid


def merge(patches: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Inverse of :func:`split`: patches ``(N, p, p[, C])`` -> frame cropped to the true size."""
    patches = np.asarray(patches)
    p = grid.patch
    if patches.ndim not in (3, 4) or patches.shape[:3] != (grid.n_patches, p, p):
        raise InputError(f"patches must be ({grid.n_patches}, {p}, {p}[, C]), found {patches.shape}")
    return tile_map(patches, grid)[: grid.height, : grid.width]


def tile_map(tiles: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Per-patch arrays ``(N, th, tw[, C])`` -> one map ``(rows*th, cols*tw[, C])`` in grid order."""
    n, th, tw = tiles.shape[:3]
    if n != grid.n_patches:
        raise InputError(f"expected {grid.n_patches} tiles for a {grid.rows}x{grid.cols} grid, found {n}")
    tail = tiles.shape[3:]
    out = tiles.reshape(grid.rows, grid.cols, th, tw, *tail).swapaxes(1, 2)
    return np.ascontiguousarray(out.reshape(grid.rows * th, grid.cols * tw, *tail))


def untile_map(latent_map: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Inverse of :func:`tile_map`: ``(rows*th, cols*tw[, C])`` -> ``(N, th, tw[, C])``."""
    h, w = latent_map.shape[:2]
    if h % grid.rows or w % grid.cols:
        raise InputError(f"a {h}x{w} map does not divide into a {grid.rows}x{grid.cols} grid")
    th, tw, tail = h // grid.rows, w // grid.cols, latent_map.shape[2:]
    tiles = latent_map.reshape(grid.rows, th, grid.cols, tw, *tail).swapaxes(1, 2)
    return np.ascontiguousarray(tiles.reshape(grid.n_patches, th, tw, *tail))


@dataclass
class AssemblyReport:
    """What the assembler received and what it had to make up."""

    n_patches: int
    received: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    concealed: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # (index, reason)
    concealment: str = "neighbours"

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_json(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "n_patches",
                "received",
                "missing",
                "concealed",
                "duplicates",
                "rejected",
                "concealment",
            )
        }


class LatentAssembler:
    """Collects per-patch latents in any order and builds the frame's latent map."""

    def __init__(self, grid: PatchGrid, latent_shape: tuple, dtype=np.uint8, concealment: str = "neighbours"):
        if concealment not in CONCEALMENT:
            raise InputError(f"concealment must be one of {CONCEALMENT}, found {concealment!r}")
        if len(latent_shape) != 3 or min(latent_shape) < 1:
            raise InputError(f"latent_shape must be (lh, lw, lc) >= 1, found {latent_shape}")
        self.grid = grid
        self.latent_shape = tuple(int(d) for d in latent_shape)
        self.dtype = np.dtype(dtype)
        self.concealment = concealment
        self._latents: dict = {}
        self._duplicates: list = []
        self._rejected: list = []

    def add(self, index, latent) -> bool:
        """Accept one patch's latent; a bad index/shape or a duplicate is recorded, not raised."""
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, np.integer))
            or not (0 <= index < self.grid.n_patches)
        ):
            self._rejected.append((repr(index), f"index outside 0..{self.grid.n_patches - 1}"))
            return False
        arr = np.asarray(latent)
        if arr.shape != self.latent_shape:
            self._rejected.append((int(index), f"shape {arr.shape}, expected {self.latent_shape}"))
            return False
        if int(index) in self._latents:
            self._duplicates.append(int(index))  # first copy wins: a retransmission must be identical
            return False
        self._latents[int(index)] = arr.astype(self.dtype)
        return True

    def reject(self, index, reason: str) -> None:
        """Record a patch that arrived but could not be used (e.g. a corrupt payload)."""
        self._rejected.append((index, reason))

    @property
    def missing(self) -> list:
        return sorted(set(range(self.grid.n_patches)) - set(self._latents))

    def assemble(self) -> tuple:
        """(latent map ``(rows*lh, cols*lw, lc)``, :class:`AssemblyReport`)."""
        tiles = np.zeros((self.grid.n_patches, *self.latent_shape), self.dtype)
        for idx, lat in self._latents.items():
            tiles[idx] = lat
        missing = self.missing
        if missing and self.concealment == "neighbours":
            _conceal_from_neighbours(tiles, self.grid, set(self._latents))
        report = AssemblyReport(
            n_patches=self.grid.n_patches,
            received=sorted(self._latents),
            missing=missing,
            concealed=list(missing),
            duplicates=sorted(self._duplicates),
            rejected=list(self._rejected),
            concealment=self.concealment,
        )
        return tile_map(tiles, self.grid), report


def _conceal_from_neighbours(tiles: np.ndarray, grid: PatchGrid, known: set) -> None:
    """Fill unknown tiles in passes from the mean of known 4-neighbours (module docstring)."""
    known = set(known)
    integer = np.issubdtype(tiles.dtype, np.integer)
    while len(known) < grid.n_patches:
        fills = {}
        for idx in range(grid.n_patches):
            if idx in known:
                continue
            nbrs = [n for n in grid.neighbours(idx) if n in known]
            if nbrs:
                mean = tiles[nbrs].astype(np.float64).mean(axis=0)
                fills[idx] = np.floor(mean + 0.5) if integer else mean
        if not fills:  # nothing known anywhere: the zeros stay
            return
        for idx, value in fills.items():
            tiles[idx] = value.astype(tiles.dtype)
        known.update(fills)
