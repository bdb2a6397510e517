"""The shipped learned codec on two Kodak images: rate, quality floor (the model card's figures minus a
margin), no seams full-frame and seams patch by patch with the same bits, and the server's decoder.
(Bit-exactness of exported encoders is tested in tests/unit/test_codec_learned.py.)"""

import numpy as np
import pytest

from edge_sdk.codec import evaluate, learned, metrics
from edge_sdk.codec.patches import PatchGrid

pytest.importorskip("PIL")
# measured full-frame 24.78 / 21.92 dB at 16 channels (model card run)
IMAGES = ("kodim03.png", "kodim19.png")


@pytest.fixture(scope="module")
def kodak(shared_data):
    images = dict(evaluate.load_images(shared_data / "kodak"))
    return [images[name] for name in IMAGES]


@pytest.fixture(scope="module")
def codecs():
    return {dec: learned.learned_codec(16, dec) for dec in ("full", "patch")}


def test_rate_quality_and_seams(kodak, codecs):
    for frame, floor in zip(kodak, (24.2, 21.4)):
        data = codecs["full"].encode(frame)
        bpp = len(data) * 8 / (frame.shape[0] * frame.shape[1])
        assert 0.15 < bpp <= 0.26
        full, patch = codecs["full"].decode(data), codecs["patch"].decode(data)  # same bytes
        assert metrics.psnr(frame, full) >= floor
        assert metrics.psnr(frame, full) > metrics.psnr(frame, patch)
        seams_full = metrics.seam_stats(frame, full, 32)["ratio_midline"]
        seams_patch = metrics.seam_stats(frame, patch, 32)["ratio_midline"]
        assert seams_full < 1.2 < seams_patch  # measured 1.10 / 1.06 vs 1.74 / 1.27


def test_server_decoder_gives_the_same_frame(kodak, codecs):
    from edge_sdk.codec.server_plugin import frame_payloads
    from edge_sdk.server.decoders import get_decoder

    frame = kodak[0][:200, :300]
    grid, payloads = frame_payloads(codecs["full"], frame)
    decoder = get_decoder("ours-nqe-L16")
    geometry = type("G", (), {"height": 200, "width": 300, "patch": 32, "channels": 3})()
    out = decoder.decode(geometry, payloads)
    np.testing.assert_array_equal(out.image, codecs["full"].decode(codecs["full"].encode(frame)))
    assert grid == PatchGrid(200, 300, 32) and out.corrupt == []
