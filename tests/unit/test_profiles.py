"""Chip profiles load, validate, and reject malformed data with a clear ProfileError."""

import json

import pytest

from edge_sdk import ProfileError, list_profiles, load_profile
from edge_sdk.chips import profile_from_dict, profile_from_json


def test_shipped_profiles():
    assert {"lightspeeur-2803", "nqe-1mb"} <= set(list_profiles())
    ls, nqe = load_profile("lightspeeur-2803"), load_profile("nqe-1mb")
    assert sorted(ls.weight_modes) == [1, 2, 3, 5] and ls.activation_bits == 5 and ls.act_max == 31
    assert (
        sorted(nqe.weight_modes) == [1, 2, 3]
        and nqe.activation_bits == 2
        and nqe.weight_sram_bytes * 8 == 2**20
    )
    assert (ls.shift_min, ls.shift_max) == (0, 12) and ls.max_layers == 72
    assert ls.rounding == "half_away_from_zero" and nqe.rounding == "floor"


def test_unknown_profile_names_the_shipped_ones():
    with pytest.raises(ProfileError, match="lightspeeur-2803"):
        load_profile("gti-9999")


def test_sram_is_configurable_and_round_trips():
    p = load_profile("nqe-1mb").with_sram(activation_bytes=4096)
    assert p.activation_sram_bytes == 4096 and p.weight_sram_bytes == 131072
    assert profile_from_json(p.to_json()) == p


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.pop("rounding"), "missing field 'rounding'"),
        (lambda d: d.update(rounding="stochastic"), "rounding must be"),
        (lambda d: d.update(activation_bits="5"), "must be int"),
        (lambda d: d["weight_modes"].update({"2": {"decode": "linear", "min": -3, "max": 1}}), "exceeds"),
        (lambda d: d.update(shift_range=[5, 2]), "shift_range"),
        (lambda d: d["sram"].update(weight_bytes=0), "SRAM sizes"),
    ],
)
def test_malformed_profiles_are_rejected(edit, match):
    d = json.loads(load_profile("lightspeeur-2803").to_json())
    edit(d)
    with pytest.raises(ProfileError, match=match):
        profile_from_dict(d)


def test_profile_file_by_path(tmp_path):
    path = tmp_path / "mine.json"
    d = json.loads(load_profile("nqe-1mb").to_json())
    d["id"] = "nqe-custom"
    path.write_text(json.dumps(d))
    assert load_profile(path).id == "nqe-custom"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "bad.json")
