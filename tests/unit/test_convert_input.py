"""Input handling: the model's normalization, host-side padding for offset inputs, input dithering."""

import numpy as np
import pytest

from edge_sdk.arith import convert_input
from edge_sdk.chips import load_profile
from edge_sdk.convert import convert_detailed, intsim
from edge_sdk.convert.inputpad import DITHER_OFFSETS, dither_frames, prepare_frames
from edge_sdk.convert.tflite_writer import tiny_cnn

pytest.importorskip("ai_edge_litert")
RNG = np.random.default_rng(0)
BASE = RNG.integers(0, 256, (80, 4, 4, 3)).astype(np.float32)
X = np.clip(np.repeat(np.repeat(BASE, 4, 1), 4, 2) + RNG.normal(0, 20, (80, 16, 16, 3)), 0, 255).astype(
    np.uint8
)


def test_dither_recovers_two_more_bits_of_input():
    x = np.arange(8, 244, dtype=np.uint8).reshape(1, -1, 1, 1)
    codes = convert_input(dither_frames(x, 2), load_profile("lightspeeur-2803")).astype(np.float64)
    est = codes.reshape(1, -1, 2, 1, 2, 1).mean(axis=(2, 4)).reshape(-1) * 8
    plain = convert_input(x, load_profile("lightspeeur-2803")).reshape(-1) * 8.0
    truth = x.reshape(-1).astype(np.float64)
    assert np.abs(est - truth).max() <= 2.0 < np.abs(plain - truth).max()
    assert DITHER_OFFSETS.sum() == 0  # unbiased


def test_offset_input_is_padded_on_the_host_with_the_zero_pixel():
    # the same model, told that its real input is pixel / 128 - 1 (like the Coral MobileNet)
    res = convert_detailed(
        tiny_cnn(), calib=X[:60], bits=5, input_scale=1 / 128, input_offset=-1.0, recon_images=40
    )
    meta = res.network.metadata
    assert meta["input"]["host_pad"]["pad_value"] == [128, 128, 128]
    assert tuple(res.network.input_shape) == (18, 18, 3) and meta["input"]["model_shape"] == [16, 16, 3]
    assert res.network.layers[0].pad == (0, 0, 0, 0)
    frames = prepare_frames(meta, X[60:62])
    assert (frames[:, 0] == 128).all() and (frames[:, 1:17, 1:17] == X[60:62]).all()
    assert res.report.layers[0].sqnr_db > 25  # exact borders: no wrong ring of pixels


def test_dithered_input_adds_a_first_layer_and_improves_it():
    plain = convert_detailed(tiny_cnn(), calib=X[:60], bits=5, recon_images=40)
    dith = convert_detailed(tiny_cnn(), calib=X[:60], bits=5, input_dither=2, recon_images=40)
    assert tuple(dith.network.input_shape) == (32, 32, 3) and dith.network.layers[0].name == "dither0"
    assert dith.network.metadata["input"]["dither"]["factor"] == 2
    assert dith.report.layers[0].sqnr_db > 35
    assert (
        dith.report.layers[1].sqnr_db > plain.report.layers[0].sqnr_db
    )  # the model's first conv, finer input
    out = intsim.outputs(dith.network, prepare_frames(dith.network.metadata, X[60:]))
    assert out.shape == (20, 5)
