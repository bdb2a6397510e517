"""The converter's entry points: ``convert`` (image bytes), ``convert_network`` and ``convert_detailed``.

    net = convert_network("pretrainedResnet.tflite", profile="lightspeeur-2803", calib=x_train, bits=5)
    data = convert("pretrainedResnet.tflite", profile="lightspeeur-2803", calib=x_train, bits=5)

Pure: the same model, profile, calibration images and options give the same
bytes (no clocks, no unseeded randomness, no paths in the image).  The steps and
their options are documented in docs/converter.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from ..chips import ChipProfile, load_profile
from ..errors import ConversionError
from ..network import Network
from ..tiling import compute_schedule
from .bits import allocate, layer_costs
from .calibrate import calibrate, model_caps
from .data import images_sha256, load_images
from .importer import ImportedModel, import_tflite
from .inputpad import InputPrep, host_padding
from .lower import host_layers, lower_chip, quant_metadata
from .options import ConvertOptions, parse_bits
from .partition import Placement, partition
from .plan import make_plan
from .plan_types import Plan
from .prune import prune_graph
from .recon import Reconstructor
from .report import ConversionReport, build_report, placement_rows
from .sqnr import layer_sqnr

ModelSource = Union[str, Path, bytes, ImportedModel]
SQNR_IMAGES = 64


@dataclass
class ConversionResult:
    network: Network
    report: ConversionReport
    imported: ImportedModel
    plan: Plan
    placements: list[Placement]


def _progress(enabled: bool) -> Optional[Callable]:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return lambda it, **kw: tqdm(it, leave=False, **kw)


def _import(model: ModelSource, opts: ConvertOptions) -> ImportedModel:
    if isinstance(model, ImportedModel):
        return model
    return import_tflite(model, name=opts.name, input_scale=opts.input_scale, input_offset=opts.input_offset)


def _bits(plan: Plan, g, caps: dict, p: ChipProfile, opts: ConvertOptions) -> dict[str, int]:
    names = [pl.name for pl in plan.layers if pl.op == "conv"]
    if opts.budget_bits is not None:
        if opts.bits is not None:
            raise ConversionError("give either bits or budget_bits, not both")
        return allocate(layer_costs(g, plan, caps, p, opts.weight_method), opts.budget_bits)
    bits = parse_bits(opts.bits, names, max(p.weight_modes))
    for pl in plan.layers:
        if pl.op != "conv":
            continue
        b = bits[pl.name]
        p.mode(b)  # ProfileError names the modes the profile has
        if b < pl.min_bits:
            raise ConversionError(
                f"layer {pl.name} carries one-hot copy kernels and needs >= {pl.min_bits} bits "
                f"(binary codes have no zero); asked for {b}"
            )
    return bits


def _labels(opts: ConvertOptions) -> Optional[list[str]]:
    if opts.labels is None:
        return None
    if isinstance(opts.labels, (str, Path)):
        return [line.rstrip("\n") for line in Path(opts.labels).read_text().splitlines()]
    return [str(v) for v in opts.labels]


def _output_meaning(imported: ImportedModel, opts: ConvertOptions) -> str:
    if opts.output_meaning:
        return opts.output_meaning
    last = imported.graph.producer(imported.graph.output)
    return {"softmax": "class probabilities (softmax)", "dense": "class logits"}.get(
        last.op if last else "", "feature map"
    )


def metadata(
    imported: ImportedModel,
    net: Network,
    plan: Plan,
    placements: list[Placement],
    opts: ConvertOptions,
    calib_info: dict,
    prep: Optional[InputPrep] = None,
) -> dict[str, Any]:
    from .. import __version__

    g = imported.graph
    labels = _labels(opts)
    opt_dict = opts.to_dict()
    opt_dict["labels"] = None if opts.labels is None else f"{len(labels)} labels"
    return {
        "model_name": imported.name,
        "input": {
            "shape": list(net.input_shape),
            "model_shape": list(g.shape(g.input)),
            "dtype": "uint8",
            "layout": "HWC",
            "color": opts.color,
            "resize": "bilinear to model_shape",
            **(prep or InputPrep()).to_dict(),
            "normalization": {
                "scale": np.asarray(g.input_scale).tolist(),
                "offset": np.asarray(g.input_offset).tolist(),
                "meaning": "the model's real input = pixel * scale + offset",
            },
            "chip_conversion": net.profile.input_conversion,
        },
        "output": {
            "meaning": _output_meaning(imported, opts),
            "shape": list(g.shape(g.output)),
            "labels": labels,
        },
        "provenance": {
            "source_model": imported.name,
            "source_sha256": imported.sha256,
            "converter": "edge_sdk.convert",
            "converter_version": __version__,
            "options": opt_dict,
            "calibration": calib_info,
        },
        "partition": placement_rows(placements, plan),
        "quant": quant_metadata(plan, g),
    }


def _prepared(imported: ImportedModel, opts: ConvertOptions) -> ImportedModel:
    """The imported model with its graph pruned, or copied where the planner will add to it."""
    g = imported.graph
    if opts.prune > 0:
        g = prune_graph(g, opts.prune)
    elif opts.input_dither > 1:
        g = g.copy()  # the planner adds the dithered frame tensor
    else:
        return imported
    return ImportedModel(g, imported.raw_graph, imported.raw, imported.source, imported.name)


def _caps(g, plan, x, p: ChipProfile, opts: ConvertOptions, prog) -> tuple:
    """Activation caps: calibrated on ``x``, or the model's own ranges when there are no images."""
    if x is None:
        return model_caps(g, plan), {"images": 0, "method": "model ranges"}
    caps = calibrate(
        g,
        plan,
        x,
        levels=p.act_max,
        method=opts.calib_method,
        percentile=opts.percentile,
        batch=opts.calib_batch,
        per_channel=opts.per_channel_caps and p.weight_scale == "per_kernel",
        progress=prog,
    )
    info = {
        "images": int(len(x)),
        "sha256": images_sha256(x),
        "method": opts.calib_method,
        "percentile": opts.percentile,
    }
    return caps, info


def convert_detailed(
    model: ModelSource,
    *,
    profile: Union[str, ChipProfile] = "lightspeeur-2803",
    calib: Any = None,
    calib_limit: Optional[int] = None,
    sqnr: bool = True,
    progress: bool = False,
    **options: Any,
) -> ConversionResult:
    """Convert and keep everything: the network, the report, the imported model and the plan."""
    opts = ConvertOptions.from_kwargs(**options)
    p = load_profile(profile)
    prog = _progress(progress)
    imported = _prepared(_import(model, opts), opts)
    g = imported.graph
    placements = partition(g, p)
    plan = make_plan(
        g,
        placements,
        p,
        residual=opts.residual,
        relu6_cap=opts.relu6_cap,
        act_pieces=opts.act_pieces,
        piece_split=opts.piece_split,
        input_dither=opts.input_dither,
    )
    hp = host_padding(g, plan, p)
    prep = InputPrep(hp, opts.input_dither)
    x = None if calib is None else load_images(calib, g.shape(g.input), limit=calib_limit)
    caps, calib_info = _caps(g, plan, x, p, opts, prog)
    bits = _bits(plan, g, caps, p, opts)
    recon = None
    if opts.reconstruct and x is not None:
        recon = Reconstructor(
            g,
            plan,
            x[: opts.recon_images],
            p,
            ridge=opts.recon_ridge,
            max_rows=opts.recon_rows,
            seed=opts.seed,
            prep=prep,
        )
    shape = prep.apply(np.zeros((1,) + tuple(g.shape(g.input)), np.uint8)).shape[1:]
    lowered = lower_chip(g, plan, caps, bits, p, opts.weight_method, recon, shape, progress=prog)
    net = lowered.network
    net.layers += host_layers(plan, lowered, recon)
    net.validate()
    net.schedule = compute_schedule(net)
    net.metadata = metadata(imported, net, plan, placements, opts, calib_info, prep)
    sq = (
        layer_sqnr(g, plan, net, x[:SQNR_IMAGES], progress=prog, prep=prep)
        if (sqnr and x is not None)
        else {}
    )
    report = build_report(
        net, plan, placements, sq, imported.name, plan.notes + lowered.notes, calib_info, opts.to_dict()
    )
    return ConversionResult(net, report, imported, plan, placements)


def convert_network(
    model: ModelSource,
    *,
    profile: Union[str, ChipProfile] = "lightspeeur-2803",
    calib: Any = None,
    **options: Any,
) -> Network:
    """The validated, scheduled integer Network with its metadata."""
    return convert_detailed(model, profile=profile, calib=calib, sqnr=False, **options).network


def convert(
    model: ModelSource,
    *,
    profile: Union[str, ChipProfile] = "lightspeeur-2803",
    calib: Any = None,
    **options: Any,
) -> bytes:
    """Firmware image bytes: ``write_firmware(convert_network(...))``."""
    from ..firmware import write_firmware

    return write_firmware(convert_network(model, profile=profile, calib=calib, **options))
