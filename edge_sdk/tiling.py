"""Buffer tiling: cut every chip layer into tiles whose working set fits the SRAM.

A tile is a band of output rows (its input band carries the conv halo) times a
group of output channels.  Per layer the schedule stores the band height, the
channel-group size and whether the layer's weights stay resident in weight SRAM;
the tiles themselves follow deterministically (:func:`layer_tiles`).  Memory is
counted in bits: activations at their code width, weights at their mode's width,
scalars and biases at the profile's widths (docs/datasheet.md section 6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import TilingError
from .network import Layer, Network


@dataclass(frozen=True)
class Tile:
    out_row0: int
    out_rows: int
    ch0: int
    chn: int
    in_row0: int  # first real input row loaded
    in_rows: int  # real input rows loaded (the halo included)
    pad_top: int  # virtual zero rows above the loaded band
    pad_bottom: int  # virtual zero rows below it
    in_ch0: int
    in_chn: int


@dataclass(frozen=True)
class LayerSchedule:
    layer: int
    band_rows: int
    group_channels: int
    weights_resident: bool
    act_bits: int  # peak activation SRAM of any tile, bits
    weight_bits: int  # weight SRAM in use (whole layer if resident, else one group), bits

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Schedule:
    layers: tuple[LayerSchedule, ...]
    activation_sram_bits: int
    weight_sram_bits: int

    def for_layer(self, index: int) -> LayerSchedule:
        return self.layers[index]


def _in_channels(net: Network, layer: Layer, ch0: int, chn: int) -> tuple[int, int]:
    c = layer.in_shape[2]
    if layer.op != "conv":
        return ch0, chn
    if layer.groups == 1:
        return 0, c
    go, gi = layer.out_shape[2] // layer.groups, c // layer.groups
    first, last = ch0 // go, (ch0 + chn - 1) // go
    return first * gi, (last - first + 1) * gi


def make_tile(net: Network, layer: Layer, r0: int, rows: int, ch0: int, chn: int) -> Tile:
    h = layer.in_shape[0]
    if layer.op == "conv":
        lo = r0 * layer.stride - layer.pad[0]
        hi = (r0 + rows - 1) * layer.stride - layer.pad[0] + layer.kernel
    elif layer.op == "maxpool":
        lo, hi = 2 * r0, 2 * (r0 + rows)
    else:
        lo, hi = r0, r0 + rows
    in0, in1 = max(lo, 0), min(hi, h)
    ic0, icn = _in_channels(net, layer, ch0, chn)
    return Tile(r0, rows, ch0, chn, in0, in1 - in0, in0 - lo, hi - in1, ic0, icn)


def _source_bits(net: Network, src: int) -> int:
    if src >= 0:
        return net.layers[src].act_bits
    return net.profile.activation_bits if net.profile.input_conversion == "round_shift" else 8


def tile_act_bits(net: Network, index: int, tile: Tile) -> int:
    """Activation SRAM a tile needs: its input band(s) plus its output block, in bits."""
    layer = net.layers[index]
    per_code = sum(_source_bits(net, s) for s in layer.inputs)  # each operand at its own code width
    need_in = tile.in_rows * layer.in_shape[1] * tile.in_chn * per_code
    need_out = tile.out_rows * layer.out_shape[1] * tile.chn * layer.act_bits
    return need_in + need_out


def weight_bits(net: Network, layer: Layer, chn: int) -> int:
    """Weight SRAM for ``chn`` output channels: codes, per-kernel scalars and biases."""
    if layer.op != "conv":
        return 0
    p = net.profile
    per_out = (layer.in_shape[2] // layer.groups) * layer.kernel * layer.kernel
    codes = chn * per_out * layer.weight_bits
    scalars = (
        chn * (layer.in_shape[2] // layer.groups) * p.scalar_bits if p.weight_scale == "per_kernel" else 0
    )
    return codes + scalars + chn * p.bias_bits


def layer_tiles(net: Network, index: int, band_rows: int, group_channels: int) -> list[Tile]:
    layer = net.layers[index]
    ho, _, co = layer.out_shape
    return [
        make_tile(net, layer, r0, min(band_rows, ho - r0), c0, min(group_channels, co - c0))
        for c0 in range(0, co, group_channels)
        for r0 in range(0, ho, band_rows)
    ]


def _group_sizes(layer: Layer) -> list[int]:
    """Candidate channel-group sizes, largest first: divisors of C_out whole in conv groups."""
    co = layer.out_shape[2]
    step = co // layer.groups if layer.op == "conv" and layer.groups > 1 else 1
    divisors = set()
    for d in range(1, int(co**0.5) + 1):  # O(sqrt C): crafted images may claim huge channel counts
        if co % d == 0:
            divisors.update((d, co // d))
    return sorted((g for g in divisors if g % step == 0), reverse=True)


def _peak_act(net: Network, index: int, rows: int, chn: int) -> int:
    return max(tile_act_bits(net, index, t) for t in layer_tiles(net, index, rows, chn))


def _best_rows(net: Network, index: int, chn: int, limit: int) -> int:
    """Largest band height whose every tile fits ``limit`` bits (0 if none)."""
    lo, hi = 0, net.layers[index].out_shape[0]
    while lo < hi:  # the footprint grows with the band height
        mid = (lo + hi + 1) // 2
        if _peak_act(net, index, mid, chn) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def schedule_layer(net: Network, index: int) -> LayerSchedule:
    layer = net.layers[index]
    act_limit = net.profile.activation_sram_bytes * 8
    w_limit = net.profile.weight_sram_bytes * 8
    resident = weight_bits(net, layer, layer.out_shape[2]) <= w_limit
    best = None
    for chn in _group_sizes(layer):
        w_need = weight_bits(net, layer, layer.out_shape[2] if resident else chn)
        if w_need > w_limit:
            continue
        rows = _best_rows(net, index, chn, act_limit)
        if rows == 0:
            continue
        n_tiles = -(-layer.out_shape[0] // rows) * (layer.out_shape[2] // chn)
        if best is None or n_tiles < best[0]:
            best = (n_tiles, rows, chn, w_need)
    if best is None:
        smallest = _group_sizes(layer)[-1]
        need_act = _peak_act(net, index, 1, smallest)
        need_w = weight_bits(net, layer, smallest)
        raise TilingError(
            f"layer {index} ({layer.name!r}, {layer.op} {layer.in_shape}->{layer.out_shape}) does not fit: "
            f"smallest tile needs {need_act} activation bits (limit {act_limit}) and {need_w} weight bits "
            f"(limit {w_limit})"
        )
    _, rows, chn, w_need = best
    return LayerSchedule(index, rows, chn, resident, _peak_act(net, index, rows, chn), w_need)


def compute_schedule(net: Network) -> Schedule:
    """The tiling schedule of every chip layer (raises TilingError naming the layer that cannot fit)."""
    layers = tuple(schedule_layer(net, i) for i, layer in enumerate(net.layers) if layer.on_chip)
    return Schedule(layers, net.profile.activation_sram_bytes * 8, net.profile.weight_sram_bytes * 8)


def check_schedule(net: Network, schedule: Schedule) -> list[str]:
    """Problems with a stored schedule (empty list if it is a valid contract for ``net``)."""
    problems = []
    if len(schedule.layers) != net.n_chip:
        return [f"schedule has {len(schedule.layers)} layers, network has {net.n_chip} chip layers"]
    for i, ls in enumerate(schedule.layers):
        layer = net.layers[i]
        ho, co = layer.out_shape[0], layer.out_shape[2]
        if ls.layer != i or not 1 <= ls.band_rows <= ho or ls.group_channels not in _group_sizes(layer):
            problems.append(
                f"layer {i}: band {ls.band_rows} / group {ls.group_channels} invalid for {layer.out_shape}"
            )
            continue
        act = _peak_act(net, i, ls.band_rows, ls.group_channels)
        wts = weight_bits(net, layer, co if ls.weights_resident else ls.group_channels)
        if act > schedule.activation_sram_bits or act != ls.act_bits:
            problems.append(
                f"layer {i}: tiles need {act} activation bits, recorded {ls.act_bits}, "
                f"limit {schedule.activation_sram_bits}"
            )
        if wts > schedule.weight_sram_bits or wts != ls.weight_bits:
            problems.append(
                f"layer {i}: weights need {wts} bits, recorded {ls.weight_bits}, "
                f"limit {schedule.weight_sram_bits}"
            )
    return problems
