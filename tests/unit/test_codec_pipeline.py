"""The pluggable codec pipeline, the baseline codec, rate matching, the harness, the RD plot and the CLI."""

import json

import numpy as np
import pytest

from edge_sdk.codec import baseline, evaluate
from edge_sdk.codec.cli import register_cli
from edge_sdk.codec.metrics import psnr, seam_stats
from edge_sdk.codec.patches import PatchGrid, split
from edge_sdk.codec.pipeline import Codec, CodecFamily
from edge_sdk.errors import BitstreamError, DatasetError

PIL = pytest.importorskip("PIL.Image")


def _scene(h=192, w=256, seed=0):
    """A smooth synthetic colour image with some texture (deterministic)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    r = 128 + 90 * np.sin(x / 23.0 + seed) * np.cos(y / 31.0)
    g = 128 + 80 * np.cos((x + y) / 41.0)
    b = 60 + 0.5 * x + 10 * rng.standard_normal((h, w))
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def test_baseline_round_trip_and_protocols():
    family = baseline.BaselineFamily("full")
    assert isinstance(family, CodecFamily)
    codec = family.at(5)
    assert isinstance(codec, Codec)
    frame = _scene(70, 100)  # not a multiple of the patch size
    out = codec.decode(codec.encode(frame))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert psnr(frame, out) > 20


def test_full_frame_decoder_has_no_seams_and_patch_decoder_does_at_the_same_bytes():
    frame = _scene()
    full, patch = baseline.BaselineFamily("full").at(4), baseline.BaselineFamily("patch").at(4)
    data = full.encode(frame)
    assert data == patch.encode(frame)  # identical bitstream, only the decoder differs
    s_full, s_patch = (seam_stats(frame, c.decode(data)) for c in (full, patch))
    assert s_patch["ratio_midline"] > 1.2 * s_full["ratio_midline"]
    assert s_patch["border_mse"] > s_full["border_mse"]


def test_frame_mode_codes_fewer_bytes_than_patch_mode():
    frame = _scene()
    per_patch = baseline.BaselineFamily("full", mode="patch").at(5).encode(frame)
    per_frame = baseline.BaselineFamily("full", mode="frame").at(5).encode(frame)
    assert len(per_frame) < len(per_patch)


def test_ladder_rate_increases_on_a_real_looking_scene():
    frame = _scene()
    family = baseline.BaselineFamily("full")
    sizes = [len(family.at(q).encode(frame)) for q in family.qualities]
    assert sizes == sorted(sizes)


def test_decoder_rejects_a_stream_of_another_format():
    data = baseline.BaselineFamily("full").at(3).encode(_scene())
    with pytest.raises(BitstreamError, match="expected patch 32, latent"):
        baseline.BaselineFamily("full").at(6).decode(data)


def test_server_path_conceals_missing_and_corrupt_patches():
    frame = _scene(96, 128)
    codec = baseline.BaselineFamily("full").at(5)
    from edge_sdk.codec.bitstream import encode_patch

    tiles, grid = split(frame, 32)
    latents = codec.encoder.encode_patches(tiles)
    payloads = {i: encode_patch(latents[i], codec.encoder.bits) for i in range(grid.n_patches)}
    complete, report = codec.decode_payloads(grid, dict(reversed(list(payloads.items()))))
    assert report.complete and np.array_equal(complete, codec.decode(codec.encode(frame)))
    del payloads[5]
    payloads[6] = payloads[6][:-2]  # corrupt on the wire
    damaged, report = codec.decode_payloads(grid, payloads)
    assert report.missing == [5, 6] and [r[0] for r in report.rejected] == [6]
    assert damaged.shape == frame.shape and psnr(complete, damaged) > 20


class _FakeFamily:
    """bpp = quality / 10 on any frame (8 bits per byte over H*W pixels)."""

    name = "fake"
    qualities = tuple(range(1, 11))

    def at(self, q):
        outer = self

        class _C:
            name = f"{outer.name}[{q}]"

            def encode(self, frame):
                return bytes(int(q / 10 * frame.shape[0] * frame.shape[1] / 8))

            def decode(self, data):
                return np.zeros((1, 1, 3), np.uint8)

        return _C()


@pytest.mark.parametrize("target,expected", [(0.35, 3), (0.3, 3), (1.0, 10), (5.0, 10), (0.05, 1)])
def test_match_rate_picks_the_highest_quality_within_the_target(target, expected):
    frame = np.zeros((40, 40, 3), np.uint8)
    codec, data = evaluate.match_rate(_FakeFamily(), frame, target)
    assert codec.name == f"fake[{expected}]"


def _write_images(folder, n=2):
    folder.mkdir()
    for i in range(n):
        PIL.fromarray(_scene(192, 224, seed=i)).save(folder / f"img{i}.png")
    return folder


def test_run_eval_writes_a_compressai_style_layout(tmp_path):
    images = evaluate.load_images(_write_images(tmp_path / "imgs"))
    methods = [
        evaluate.Method("ours-baseline-full", baseline.BaselineFamily("full"), "baseline"),
        evaluate.Method("fixed", baseline.BaselineFamily("patch").at(3), "a plain Codec"),
    ]
    result = evaluate.run_eval(images, methods, targets=(0.2, 0.4))
    entry = result["methods"][0]
    assert entry["name"] == "ours-baseline-full" and set(evaluate.RESULT_KEYS) <= set(entry["results"])
    assert len(entry["results"]["bpp"]) == 2 and len(entry["per_image"]) == 4
    assert all(r["bpp"] <= r["target_bpp"] for r in entry["per_image"])
    assert entry["results"]["bpp"][1] > entry["results"]["bpp"][0]
    json.dumps(result)  # plain JSON (no inf / numpy types)
    assert "ours-baseline-full" in evaluate.format_table(result)
    from edge_sdk.codec.plot import rd_plot

    png = rd_plot(result, tmp_path / "rd.png")
    with PIL.open(png) as img:
        assert img.size[0] > 500 and img.format == "PNG"


def test_load_images_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        evaluate.load_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        evaluate.load_images(tmp_path / "empty")


def test_cli_codec_eval_end_to_end(tmp_path, capsys):
    import argparse

    folder = _write_images(tmp_path / "imgs", 1)
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    out_json, out_png = tmp_path / "r.json", tmp_path / "rd.png"
    args = parser.parse_args(
        [
            "codec-eval",
            "--images",
            str(folder),
            "--json",
            str(out_json),
            "--png",
            str(out_png),
            "--methods",
            "jpeg,ours-baseline-patch",
            "--quiet",
            "--codec",
            "edge_sdk.codec.baseline:BaselineFamily",
        ]
    )
    assert args.func(args) == 0
    result = json.loads(out_json.read_text())
    assert [m["name"] for m in result["methods"]] == ["jpeg", "ours-baseline-patch", "ours-baseline-full"]
    assert out_png.stat().st_size > 1000 and "jpeg" in capsys.readouterr().out


def test_unknown_method_is_an_input_error(tmp_path):
    from edge_sdk import cli

    folder = _write_images(tmp_path / "imgs", 1)
    assert cli.main(["codec-eval", "--images", str(folder), "--methods", "png", "--quiet"]) == 2
    assert cli.main(["codec-eval", "--images", str(tmp_path / "none"), "--quiet"]) == 2


def test_patch_grid_for_odd_frames_in_the_codec():
    grid = PatchGrid(33, 65, 32)
    frame = _scene(33, 65)
    codec = baseline.BaselineFamily("patch").at(6)
    out = codec.decode(codec.encode(frame))
    assert out.shape == frame.shape and grid.n_patches == 6


def test_server_assembler_uses_the_registered_baseline_decoder():
    assembler = pytest.importorskip("edge_sdk.server.assembler")
    from edge_sdk.codec import server_plugin
    from edge_sdk.server.decoders import FrameGeometry, codecs

    names = server_plugin.register_baseline()
    assert "ours-baseline-f8b6" in codecs() and set(names) <= set(codecs())
    codec = baseline.BaselineFamily("full").at(5)  # f=8, 6 bits
    frame = _scene(96, 128)
    grid, payloads = server_plugin.frame_payloads(codec, frame)
    geometry = FrameGeometry(128, 96, 3, 32, grid.n_patches, "ours-baseline-f8b6")
    image, report = assembler.assemble(geometry, payloads)
    assert np.array_equal(image, codec.decode(codec.encode(frame))) and report.missing == []
    del payloads[4]
    payloads[7] = b"\xff"
    image, report = assembler.assemble(geometry, payloads)
    assert (
        report.missing == [4] and report.corrupt == [7] and report.concealed == []
    )  # concealed in latent space
    assert image.shape == frame.shape and psnr(frame, image) > 20
