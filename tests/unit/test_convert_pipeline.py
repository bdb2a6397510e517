"""End to end on small synthetic models: convert, validate, run on the reference backend, compare with LiteRT."""

import json
import warnings

import numpy as np
import pytest

from edge_sdk.convert import convert, convert_detailed, convert_network, intsim
from edge_sdk.convert.importer import run_litert
from edge_sdk.convert.tflite_writer import tiny_cnn, tiny_resnet
from edge_sdk.errors import ConversionError, ProfileError
from edge_sdk.firmware import load_firmware
from edge_sdk.runtime import Device

pytest.importorskip("ai_edge_litert")


def smooth_images(n, seed, size=16):
    """Blocky images plus noise: enough structure for the random models to disagree between classes."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    up = np.repeat(np.repeat(base, size // 4, 1), size // 4, 2)
    return np.clip(up + rng.normal(0, 20, up.shape), 0, 255).astype(np.uint8)


CAL = smooth_images(120, 1)
TEST = smooth_images(60, 2)
FAST = dict(recon_images=64, calib_batch=40)


@pytest.fixture(scope="module")
def cnn():
    return convert_detailed(
        tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=5, labels=list("abcde"), **FAST
    )


@pytest.fixture(scope="module")
def resnet():
    return convert_detailed(tiny_resnet(), profile="lightspeeur-2803", calib=CAL, bits=5, **FAST)


@pytest.mark.parametrize("which,min_agree", [("cnn", 0.95), ("resnet", 0.9)])
def test_top1_agrees_with_litert(which, min_agree, request):
    res = request.getfixturevalue(which)
    ours = intsim.outputs(res.network, TEST).argmax(1)
    theirs = run_litert(res.imported, TEST).argmax(1)
    assert (ours == theirs).mean() >= min_agree


def test_intsim_is_bit_exact_with_the_reference_backend(resnet):
    net = resnet.network
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = Device("reference").load(net)
    run = dev.run(TEST[:4], taps=True)
    sim = intsim.simulate(net, TEST[:4])
    for i, layer in enumerate(net.chip_layers):
        np.testing.assert_array_equal(sim[i], run.taps[layer.name], err_msg=layer.name)
    np.testing.assert_allclose(intsim.outputs(net, TEST[:4]), run.output, atol=1e-6)


def test_fold_copies_shortcut_codes_exactly(resnet):
    """The identity shortcut's copy through conv_Y's one-hot kernels equals the original codes."""
    net, plan = resnet.network, resnet.plan
    sim = intsim.simulate(net, TEST[:8])
    copy = next(g for g in plan.layers[1].groups if g.copy_of is not None)
    np.testing.assert_array_equal(sim[1][..., copy.slice], sim[0])


def test_conversion_is_pure():
    a = convert(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=5, **FAST)
    b = convert(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=5, **FAST)
    assert a == b
    c = convert(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=3, **FAST)
    assert c != a


def test_metadata_and_report(cnn):
    meta = cnn.network.metadata
    assert meta["output"]["labels"] == list("abcde") and "softmax" in meta["output"]["meaning"]
    assert len(meta["provenance"]["source_sha256"]) == 64
    assert meta["provenance"]["options"]["bits"] == 5 and meta["provenance"]["calibration"]["images"] == len(
        CAL
    )
    assert {p["target"] for p in meta["partition"]} == {"chip", "host"}
    report = json.loads(cnn.report.to_json())
    rows = report["layers"]
    assert [r["target"] for r in rows] == ["chip"] * 5 + ["host"] * 3
    conv = rows[0]
    assert conv["weight_bits"] == 5 and conv["code_bytes"] == conv["weight_count"] * 5 / 8
    assert conv["sqnr_db"] > 10 and 0 < conv["act_sram_pct"] < 100
    assert "conv0" in cnn.report.table()
    image = load_firmware(convert(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=5, **FAST))
    assert image.metadata["model_name"] == "model"


def test_per_layer_bits_and_budget():
    net = convert_network(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits="conv1=2,default=3", **FAST)
    assert [layer.weight_bits for layer in net.chip_layers if layer.op == "conv"] == [3, 2, 3, 3]
    full = convert_detailed(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, bits=5, sqnr=False, **FAST)
    budget = int(sum(r.total_bytes for r in full.report.layers if r.target == "chip") * 8 * 0.8)
    small = convert_detailed(
        tiny_cnn(), profile="lightspeeur-2803", calib=CAL, budget_bits=budget, sqnr=False, **FAST
    )
    used = sum(r.total_bytes for r in small.report.layers if r.target == "chip") * 8
    assert used <= budget and any(
        layer.weight_bits < 5 for layer in small.network.chip_layers if layer.op == "conv"
    )
    with pytest.raises(ConversionError, match="cannot be met"):
        convert_network(tiny_cnn(), profile="lightspeeur-2803", calib=CAL, budget_bits=1000, **FAST)


def test_bad_options_fail_clearly():
    with pytest.raises(ConversionError, match="unknown conversion option"):
        convert_network(tiny_cnn(), calib=CAL, bitz=5)
    with pytest.raises(ProfileError, match="4-bit"):
        convert_network(tiny_cnn(), calib=CAL, bits=4, **FAST)
    with pytest.raises(ConversionError, match="unknown layer"):
        convert_network(tiny_cnn(), calib=CAL, bits="conv99=2", **FAST)
    with pytest.raises(ConversionError, match="needs >= 2 bits"):
        convert_network(tiny_resnet(), calib=CAL, bits=1, **FAST)
    with pytest.raises(ConversionError, match="calibration images needed"):
        convert_network(tiny_cnn())  # a float model carries no activation ranges


def test_nqe_profile_converts_and_runs():
    res = convert_detailed(tiny_resnet(), profile="nqe-1mb", calib=CAL, bits=3, **FAST)
    net = res.network
    assert net.profile.id == "nqe-1mb" and all(layer.scalars is None for layer in net.chip_layers)
    assert max(layer.act_bits for layer in net.chip_layers if layer.output == "act") == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Device("reference").load(net).run(TEST[:3]).output
    np.testing.assert_allclose(out, intsim.outputs(net, TEST[:3]), atol=1e-6)


def test_pruning_shrinks_and_still_runs():
    full = convert_network(tiny_cnn(), calib=CAL, bits=5, **FAST)
    pruned = convert_network(tiny_cnn(), calib=CAL, bits=5, prune=0.25, **FAST)
    count = lambda n: sum(layer.weight_count for layer in n.chip_layers)  # noqa: E731
    assert count(pruned) < count(full)
    assert intsim.outputs(pruned, TEST[:4]).shape == (4, 5)


def _raw_tail_model() -> bytes:
    from edge_sdk.convert.tflite_writer import TFLiteBuilder

    rng = np.random.default_rng(5)
    b = TFLiteBuilder()
    x = b.input((1, 16, 16, 3))
    y = b.conv2d(
        x, rng.normal(0, 0.003, (8, 3, 3, 3)).astype(np.float32), np.full(8, 0.1, np.float32), act="RELU"
    )
    y = b.conv2d(
        y, rng.normal(0, 0.3, (6, 1, 1, 8)).astype(np.float32), rng.normal(0, 0.1, 6).astype(np.float32)
    )
    y = b.reshape(b.mean_hw(y), (1, 6))
    y = b.fully_connected(y, rng.normal(0, 1, (4, 6)).astype(np.float32), np.zeros(4, np.float32))
    return b.build([x], [b.softmax(y)])


def test_last_conv_without_relu_is_raw_and_dequantizes_to_real_values():
    res = convert_detailed(_raw_tail_model(), calib=CAL, bits=5, **FAST)
    last = res.network.chip_layers[-1]
    assert last.output == "raw" and last.shift == 0 and last.act_bits == 32
    assert res.report.layers[1].sqnr_db > 20  # raw x out_scale against the float conv output
    theirs = run_litert(res.imported, TEST).argmax(1)
    assert (intsim.outputs(res.network, TEST).argmax(1) == theirs).mean() >= 0.9


def test_residual_add_path_uses_integer_multipliers():
    res = convert_detailed(tiny_resnet(), calib=CAL, bits=5, residual="add", **FAST)
    adds = [layer for layer in res.network.chip_layers if layer.op == "add"]
    assert len(adds) == 5 and {np.sign(m) for layer in adds for m in layer.mults} == {-1, 1}
    assert all(abs(m) < 2**11 and 0 <= layer.shift <= 12 for layer in adds for m in layer.mults)
    theirs = run_litert(res.imported, TEST).argmax(1)
    assert (intsim.outputs(res.network, TEST).argmax(1) == theirs).mean() >= 0.85
