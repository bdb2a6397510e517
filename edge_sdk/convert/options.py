"""Conversion options: one validated, JSON-serializable record (it is stored in the image's provenance)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Optional, Union

from ..errors import ConversionError

BitsSpec = Union[int, str, dict, None]


@dataclass(frozen=True)
class ConvertOptions:
    """Every knob of the converter (docs/converter.md explains each)."""

    bits: BitsSpec = None  # int for every layer, {"conv3": 2, "default": 5}, or "conv3=2,default=5"
    budget_bits: Optional[int] = (
        None  # weight memory budget (codes + scalars + biases), bits; picks bits per layer
    )
    calib_method: str = "percentile"  # percentile | max | mse
    percentile: float = 99.9
    calib_batch: int = 50
    per_channel_caps: bool = False  # per-kernel profiles: one cap per channel (scalars absorb the scales)
    act_pieces: int = 1  # 2: each ReLU map as two code maps (lower and upper range) where consumers allow
    piece_split: float = 0.5  # the lower piece covers [0, piece_split * cap)
    input_dither: int = 1  # 2: the host repeats pixels 2x2 with offsets; a first layer averages (7-bit input)
    weight_method: str = "paper"  # paper (methods.md) | lloyd (k-means on the level grid)
    residual: str = "auto"  # auto | fold | add: how residual adds reach the chip
    relu6_cap: Optional[float] = 6.0  # None: calibrate ReLU6 caps like ReLU caps
    reconstruct: bool = True  # layer-wise least-squares refit to the chip's inputs (needs calibration images)
    recon_images: int = 256
    recon_ridge: float = 1e-4
    recon_rows: int = 60000
    prune: float = 0.0  # structured pruning: fraction of output channels removed per prunable conv
    input_scale: Any = None  # float models: real input = pixel * input_scale + input_offset
    input_offset: Any = None
    name: Optional[str] = None
    labels: Optional[list] = None
    output_meaning: Optional[str] = None
    color: str = "RGB"
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.calib_method in ("percentile", "max", "mse"), f"calib_method {self.calib_method!r}"),
            (0 < self.percentile <= 100, f"percentile {self.percentile}"),
            (self.weight_method in ("paper", "lloyd"), f"weight_method {self.weight_method!r}"),
            (self.residual in ("auto", "fold", "add"), f"residual {self.residual!r}"),
            (0 <= self.prune < 1, f"prune {self.prune} (a fraction 0..1)"),
            (
                1 <= self.act_pieces <= 4 and 0 < self.piece_split < 1,
                "act_pieces must be 1..4, piece_split in (0, 1)",
            ),
            (self.input_dither in (1, 2), f"input_dither {self.input_dither} (1 or 2)"),
            (self.calib_batch >= 1 and self.recon_images >= 1, "calib_batch and recon_images must be >= 1"),
            (self.budget_bits is None or self.budget_bits > 0, "budget_bits must be positive"),
        ]
        for ok, what in checks:
            if not ok:
                raise ConversionError(f"invalid conversion option: {what}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ConvertOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ConversionError(f"unknown conversion option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (what provenance records)."""
        out = {}
        for key, value in asdict(self).items():
            if hasattr(value, "tolist"):
                value = value.tolist()
            out[key] = value
        return out


def parse_bits(spec: BitsSpec, layer_names: list[str], default: int) -> dict[str, int]:
    """Per-layer bit widths from an int, a mapping or 'name=bits,...' (``default`` covers the rest)."""
    if spec is None:
        return {n: default for n in layer_names}
    if isinstance(spec, int):
        return {n: int(spec) for n in layer_names}
    if isinstance(spec, str):
        spec = spec.strip()
        if spec.isdigit():
            return {n: int(spec) for n in layer_names}
        mapping = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            if "=" not in item:
                raise ConversionError(f"bits item {item!r} must be NAME=BITS")
            key, value = item.split("=", 1)
            mapping[key.strip()] = int(value)
        spec = mapping
    if not isinstance(spec, dict):
        raise ConversionError(f"bits must be an int, a mapping or a string, found {type(spec).__name__}")
    unknown = sorted(set(spec) - set(layer_names) - {"default"})
    if unknown:
        raise ConversionError(f"bits given for unknown layer(s) {unknown}; chip conv layers: {layer_names}")
    base = int(spec.get("default", default))
    return {n: int(spec.get(n, base)) for n in layer_names}
