"""`edge-sdk inspect`: the table, the JSON, the totals and the error path."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.firmware.cli import main, register_cli
from edge_sdk.firmware.samples import golden_network
from edge_sdk.tiling import weight_bits


@pytest.fixture()
def image_path(tmp_path):
    path = tmp_path / "golden.edgefw"
    path.write_bytes(write_firmware(golden_network("lightspeeur-2803")))
    return path


def _expected_totals(net):
    chip = net.chip_layers
    bits = sum(weight_bits(net, layer, layer.out_shape[2]) for layer in chip)
    host = sum(layer.dense_w.size + layer.dense_b.size for layer in net.layers if layer.op == "dense")
    tiles = sum(
        math.ceil(net.layers[ls.layer].out_shape[0] / ls.band_rows)
        * math.ceil(net.layers[ls.layer].out_shape[2] / ls.group_channels)
        for ls in net.schedule.layers
    )
    return bits, host, tiles


def test_json_output_has_the_right_totals(image_path, capsys):
    assert main(["inspect", str(image_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    net = golden_network("lightspeeur-2803")
    bits, host, tiles = _expected_totals(net)
    t = d["totals"]
    assert (t["layers"], t["chip_layers"], t["host_layers"]) == (10, 7, 3)
    assert t["chip_weight_bits"] == bits and t["chip_weight_bytes"] == math.ceil(bits / 8)
    assert t["weights"] == sum(layer.codes.size for layer in net.chip_layers if layer.codes is not None)
    assert t["host_params"] == host and t["host_param_bytes"] == 4 * host
    assert t["tiles"] == tiles
    assert d["sha256"] == load_firmware(image_path).sha256
    assert d["profile"]["id"] == "lightspeeur-2803"
    stem = d["layers"][0]
    assert stem["weight_memory"]["code_bits"] == 8 * 3 * 9 * 5
    assert stem["weight_memory"]["scalar_bits"] == 8 * 3 * 12 and stem["weight_memory"]["bias_bits"] == 8 * 20
    assert d["layers"][-1]["target"] == "host"
    assert d["metadata"]["blob"] == {"hex": "0001feff"}


def test_table_output(image_path, capsys):
    assert main(["inspect", str(image_path)]) == 0
    out = capsys.readouterr().out
    bits, host, tiles = _expected_totals(golden_network("lightspeeur-2803"))
    assert "lightspeeur-2803" in out and "sha256" in out
    assert f"{bits} bits" in out and f"{tiles} tiles" in out and f"{host} parameters" in out
    assert "10 layers: 7 chip, 3 host" in out
    assert "stem" in out and "8x8x3 -> 8x8x8" in out and "host" in out
    assert 'labels: ["cat", "dog", "bird"]' in out


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, None])
def test_bad_image_gives_one_line_and_exit_2(tmp_path, image_path, capsys, content):
    bad = tmp_path / "bad.edgefw"
    if content is None:
        content = image_path.read_bytes()[:-16]
    bad.write_bytes(content)
    assert main(["inspect", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("edge-sdk inspect:") and "\n" not in err and "Traceback" not in err


def test_register_cli_wires_a_subcommand(image_path, capsys):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["inspect", str(image_path), "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["format_version"] == "1.0"
