"""The learned codec's mechanics on a small untrained model: export, bit-exact chip encoder,
numpy decoder == torch decoder, the bitstream path, concealment, bad files, server and camera hooks.
(The shipped model's Kodak figures are checked in tests/data/test_codec_kodak.py.)"""

import numpy as np
import pytest

from edge_sdk.codec import learned
from edge_sdk.codec.patches import PatchGrid, split
from edge_sdk.errors import BitstreamError, FirmwareError, InputError

torch = pytest.importorskip("torch")

from edge_sdk.firmware import load_firmware, write_firmware  # noqa: E402
from edge_sdk.train.codec_export import check_decoder, check_encoder, decoder_weights  # noqa: E402
from edge_sdk.train.codec_model import PatchCodecNet  # noqa: E402
from edge_sdk.train.export import to_network  # noqa: E402

SMALL_SPEC = [
    {"out": 8, "bits": 3, "s": 2},
    {"out": 8, "bits": 2, "s": 2},
    {"out": 8, "bits": 1, "s": 2},
    {"out": 64, "bits": 2, "raw": True},
]


def _frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 9.0)[None, ..., None] * np.cos(y / 13.0)[None, ..., None]
    return np.clip(base + rng.integers(-40, 40, (n, h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory):
    """A small codec taken through the QAT stages (a few steps each) and exported like the shipped one."""
    torch.manual_seed(0)
    model = PatchCodecNet(SMALL_SPEC, widths=(16, 8, 8))
    x = torch.from_numpy(_frames(4, 64, 64))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for stage in ("float", "qweight", "calib", "qact", "fused"):
        model.set_stage(stage)
        if stage == "calib":
            model.eval()
            with torch.no_grad():
                model(x)
            model.encoder.finish_calibration()
            continue
        model.train()
        for _ in range(2):
            loss = torch.nn.functional.mse_loss(model(x, 16), x.permute(0, 3, 1, 2).float() / 255)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    folder = tmp_path_factory.mktemp("codec")
    blob = write_firmware(to_network(model.encoder, {"model_name": "test_codec"}, head=False))
    (folder / learned.ENCODER_FILE).write_bytes(blob)
    decoder_weights(model).save(folder / learned.DECODER_FILE)
    learned._weights.cache_clear()
    return folder, model, blob


def test_numpy_ops_match_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 7, 6)).astype(np.float32)
    w = rng.standard_normal((12, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w), torch.from_numpy(b), padding=1
    )
    ref = ref.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(learned.conv3x3(x, w, b), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(learned.conv3x3(x[0], w, b), ref[0], rtol=1e-4, atol=1e-4)
    shuffled = torch.nn.functional.pixel_shuffle(torch.from_numpy(ref).permute(0, 3, 1, 2), 2)
    np.testing.assert_array_equal(learned.pixel_shuffle(ref), shuffled.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_chip_encoder_bits_equal_the_fused_torch_model(codec_dir, backend):
    _, model, blob = codec_dir
    patches = _frames(12, 32, 32, seed=3)
    enc = learned.ChipPatchEncoder(load_firmware(blob), 64, backend)
    assert enc.latent_shape == (4, 4, 64) and enc.patch == 32
    with torch.no_grad():
        feats, _ = model.encoder.features(torch.from_numpy(patches))
    want = (feats.permute(0, 2, 3, 1).numpy() > 0).astype(np.uint8)
    got = enc.encode_patches(patches)
    assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
    np.testing.assert_array_equal(got, want)
    assert check_encoder(model, blob, patches)["bit_mismatches"] == 0


def test_numpy_decoder_matches_torch_decoder(codec_dir):
    folder, model, _ = codec_dir
    weights = learned.DecoderWeights.load(folder / learned.DECODER_FILE)
    assert check_decoder(model, weights) < 1e-4


def test_round_trip_any_frame_size_and_rates(codec_dir):
    folder, _, _ = codec_dir
    frame = _frames(1, 70, 45)[0]  # not a multiple of 32
    sizes = []
    for channels in (8, 16, 64):
        for dec in ("full", "patch"):
            codec = learned.learned_codec(channels, dec, folder=folder, backend="reference")
            data = codec.encode(frame)
            out = codec.decode(data)
            assert out.shape == frame.shape and out.dtype == np.uint8
        sizes.append(len(data))
    assert sizes[0] < sizes[1] < sizes[2]  # more channels, more bytes
    with pytest.raises(BitstreamError):
        codec.decode(data[: len(data) // 2])
    with pytest.raises(InputError):
        learned.learned_codec(65, folder=folder)


def test_server_path_conceals_a_missing_patch(codec_dir):
    folder, _, _ = codec_dir
    from edge_sdk.codec.server_plugin import frame_payloads

    codec = learned.learned_codec(16, folder=folder, backend="reference")
    frame = _frames(1, 64, 96)[0]
    grid, payloads = frame_payloads(codec, frame)
    assert grid == PatchGrid(64, 96, 32) and len(payloads) == 6
    decode_only = learned.learned_codec(16, folder=folder, encoder=False)
    full, _ = decode_only.decode_payloads(grid, payloads)
    np.testing.assert_array_equal(full, codec.decode(codec.encode(frame)))
    del payloads[4]
    image, report = decode_only.decode_payloads(grid, payloads)
    assert image.shape == frame.shape and report.missing == [4]
    with pytest.raises(InputError):
        decode_only.encoder.encode_patches(split(frame, 32)[0])


def test_bad_decoder_files_raise_typed_errors(tmp_path, codec_dir):
    folder, _, _ = codec_dir
    with pytest.raises(FirmwareError, match="not found"):
        learned.DecoderWeights.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FirmwareError):
        learned.DecoderWeights.load(bad)
    w = learned.DecoderWeights.load(folder / learned.DECODER_FILE)
    w.meta = dict(w.meta, format="edge_sdk.codec.decoder/99")
    w.save(tmp_path / "newer.npz")
    with pytest.raises(FirmwareError, match="format"):
        learned.DecoderWeights.load(tmp_path / "newer.npz")
    with pytest.raises(FirmwareError, match="encoder firmware not found"):
        empty = tmp_path / "only_decoder"
        empty.mkdir()
        (empty / learned.DECODER_FILE).write_bytes((folder / learned.DECODER_FILE).read_bytes())
        learned.learned_codec(16, folder=empty)


def test_server_registry_decodes_learned_frames(codec_dir, monkeypatch):
    folder, _, _ = codec_dir
    monkeypatch.setenv("EDGE_SDK_MODELS", str(folder))
    from edge_sdk.codec.server_plugin import learned_codec_name, register_learned
    from edge_sdk.server import decoders

    monkeypatch.setattr(decoders, "_REGISTRY", dict(decoders._REGISTRY))  # don't leak the test model
    assert learned_codec_name(16) in register_learned(folder)
    assert decoders.get_decoder("ours-nqe-L16").codec == "ours-nqe-L16"
