"""Patch grid, edge-replication padding, latent-map tiling and server-side assembly with concealment."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.codec.patches import LatentAssembler, PatchGrid, merge, split, tile_map, untile_map
from edge_sdk.errors import InputError


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.sampled_from([1, 4, 7, 16, 32]), st.sampled_from([0, 1, 3]))
def test_split_merge_round_trip_any_size(h, w, p, c):
    rng = np.random.default_rng(h * 1000 + w)
    frame = rng.integers(0, 256, (h, w, c) if c else (h, w), dtype=np.uint8)
    tiles, grid = split(frame, p)
    assert grid.rows == -(-h // p) and grid.cols == -(-w // p)
    assert tiles.shape[:3] == (grid.n_patches, p, p)
    assert np.array_equal(merge(tiles, grid), frame)


def test_border_patches_are_padded_by_edge_replication():
    frame = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    tiles, grid = split(frame, 4)
    assert (grid.rows, grid.cols, grid.padded_shape) == (2, 2, (8, 8))
    corner = tiles[3]  # rows 4..7, cols 4..7 of the padded frame; only (4, 4..6) is real
    assert np.array_equal(corner[0, :3], frame[4, 4:7])
    assert np.array_equal(corner[0, 3], frame[4, 6])  # column replicated
    assert np.array_equal(corner[3], corner[0])  # row replicated


def test_grid_boxes_are_row_major_and_match_the_server_geometry():
    grid = PatchGrid(70, 100, 32)
    assert grid.box(0) == (0, 0, 32, 32)
    assert grid.box(3) == (0, 96, 32, 100)
    assert grid.box(grid.n_patches - 1) == (64, 96, 70, 100)
    decoders = pytest.importorskip("edge_sdk.server.decoders")
    geometry = decoders.FrameGeometry(100, 70, 3, 32, grid.n_patches, "raw")
    assert geometry.grid == (grid.rows, grid.cols)
    assert all(geometry.box(i) == grid.box(i) for i in range(grid.n_patches))


def test_tile_untile_round_trip():
    grid = PatchGrid(40, 70, 16)
    tiles = np.random.default_rng(0).integers(0, 9, (grid.n_patches, 2, 3, 4))
    latent_map = tile_map(tiles, grid)
    assert latent_map.shape == (grid.rows * 2, grid.cols * 3, 4)
    assert np.array_equal(latent_map[2:4, 3:6], tiles[grid.cols + 1])
    assert np.array_equal(untile_map(latent_map, grid), tiles)


def test_bad_frames_and_grids_raise_input_error():
    for bad in (
        np.zeros((4, 4), np.float32),
        np.zeros((0, 4), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        [[1]],
    ):
        with pytest.raises(InputError):
            split(bad, 4)
    with pytest.raises(InputError):
        PatchGrid(10, 10, 0)
    with pytest.raises(InputError):
        PatchGrid(10, 10, 4).box(9)


def _latents(grid, shape=(2, 2, 3)):
    rng = np.random.default_rng(1)
    return rng.integers(0, 16, (grid.n_patches, *shape)).astype(np.uint8)


def test_assembly_is_independent_of_arrival_order():
    grid = PatchGrid(64, 96, 32)
    lat = _latents(grid)
    maps = []
    for order in (range(grid.n_patches), reversed(range(grid.n_patches)), [3, 0, 5, 1, 4, 2]):
        asm = LatentAssembler(grid, lat.shape[1:])
        for i in order:
            assert asm.add(i, lat[i])
        latent_map, report = asm.assemble()
        assert report.complete and report.missing == [] and report.concealed == []
        maps.append(latent_map)
    assert all(np.array_equal(m, tile_map(lat, grid)) for m in maps)


def test_missing_patch_is_concealed_from_its_neighbours_and_reported():
    grid = PatchGrid(96, 96, 32)  # 3x3, patch 4 in the middle
    lat = _latents(grid)
    asm = LatentAssembler(grid, lat.shape[1:])
    for i in range(grid.n_patches):
        if i != 4:
            asm.add(i, lat[i])
    latent_map, report = asm.assemble()
    assert report.missing == [4] and report.concealed == [4] and not report.complete
    expected = np.floor(lat[[1, 3, 5, 7]].astype(float).mean(axis=0) + 0.5)
    assert np.array_equal(untile_map(latent_map, grid)[4], expected)
    assert report.to_json()["missing"] == [4]


def test_runs_of_missing_patches_fill_in_passes_and_zeros_mode():
    grid = PatchGrid(32, 128, 32)  # 1x4: only patch 0 arrives
    lat = _latents(grid)
    asm = LatentAssembler(grid, lat.shape[1:])
    asm.add(0, lat[0])
    tiles = untile_map(asm.assemble()[0], grid)
    assert all(np.array_equal(t, lat[0]) for t in tiles)  # propagated patch by patch
    zeros = LatentAssembler(grid, lat.shape[1:], concealment="zeros")
    zeros.add(0, lat[0])
    ztiles = untile_map(zeros.assemble()[0], grid)
    assert np.array_equal(ztiles[0], lat[0]) and not ztiles[1:].any()


def test_nothing_received_gives_zeros_not_an_error():
    grid = PatchGrid(64, 64, 32)
    latent_map, report = LatentAssembler(grid, (2, 2, 1)).assemble()
    assert not latent_map.any() and report.missing == [0, 1, 2, 3] and report.received == []


def test_bad_index_shape_and_duplicates_are_recorded_not_raised():
    grid = PatchGrid(32, 64, 32)
    asm = LatentAssembler(grid, (2, 2, 1))
    good = np.ones((2, 2, 1), np.uint8)
    assert asm.add(0, good)
    assert not asm.add(0, good * 0)  # duplicate: the first copy wins
    assert not asm.add(7, good) and not asm.add(-1, good) and not asm.add("x", good)
    assert not asm.add(1, np.ones((3, 2, 1)))
    asm.reject(1, "corrupt payload")
    latent_map, report = asm.assemble()
    assert report.duplicates == [0] and len(report.rejected) == 5
    assert np.array_equal(untile_map(latent_map, grid)[0], good)
    assert np.array_equal(untile_map(latent_map, grid)[1], good)  # concealed from patch 0
    with pytest.raises(InputError):
        LatentAssembler(grid, (2, 2, 1), concealment="magic")
