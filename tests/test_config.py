import json

import pytest

from gen.cli import main
from gen.config import PRESETS, DefaConfig, parse_override, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_round_trip(name):
    cfg = preset(name)
    assert DefaConfig.from_json(cfg.to_json()) == cfg
    assert cfg.head_dim * cfg.heads == cfg.d_model
    assert cfg.head_dim % cfg.lanes == 0


def test_required_presets_have_the_promised_shapes():
    detr = preset("detr")
    assert (detr.d_model, detr.heads, detr.levels, detr.points) == (256, 8, 4, 4)
    assert detr.max_shapes == ((100, 167), (50, 84), (25, 42), (13, 21))
    fpga = preset("fpga")
    # ECP5-85F: 208 blocks of 18 kbit; the level buffers must leave most of it free.
    assert fpga.buffer_bits < 0.5 * 208 * 18 * 1024
    assert preset("tiny").buffer_bits < preset("fpga").buffer_bits


def test_overrides_make_a_validated_copy():
    base = preset("fpga")
    cfg = preset("fpga", lanes=4, tau_p=0.05)
    assert (cfg.lanes, cfg.tau_p, cfg.cycles_per_point) == (4, 0.05, 8)
    assert base.lanes == 8  # presets are not mutated
    with pytest.raises(AttributeError):
        cfg.lanes = 2  # frozen


def test_list_shapes_from_json_become_tuples():
    cfg = preset("tiny", max_shapes=[[4, 4], [2, 3]])
    assert cfg.max_shapes == ((4, 4), (2, 3))
    assert hash(cfg) == hash(preset("tiny", max_shapes=((4, 4), (2, 3))))


def test_derived_widths_follow_the_formats():
    cfg = preset("detr")
    assert cfg.coeff_shift == cfg.prob_bits + 2 * cfg.coord_frac_bits - cfg.coeff_bits
    # A saturated offset must land off every map.
    assert (1 << (cfg.offset_bits - cfg.coord_frac_bits - 1)) >= 2 * cfg.max_side + 2
    # ref*W for the widest level fits ref_bits.
    assert cfg.max_side << cfg.coord_frac_bits < 1 << cfg.ref_bits
    # Worst-case accumulator magnitude (all points at probability 1, extreme values) fits.
    worst = cfg.points_per_head * (cfg.coeff_one + 2) * (1 << (cfg.value_bits - 1))
    assert worst < 1 << (cfg.min_acc_bits - 1)
    assert cfg.tau_p_q == round(cfg.tau_p * 4096)


BAD = [
    # (overrides on the tiny preset, words the message must contain)
    ({"d_model": 0}, ["d_model=0", "[1, 4096]"]),
    ({"d_model": 33}, ["d_model=33", "heads=2"]),
    ({"heads": 0}, ["heads=0", "[1, 64]"]),
    ({"levels": 0}, ["levels=0", "[1, 8]"]),
    ({"levels": 3}, ["max_shapes", "levels=3"]),
    ({"points": 0}, ["points=0", "[1, 16]"]),
    ({"points": 17}, ["points=17"]),
    ({"lanes": 0}, ["lanes=0"]),
    ({"lanes": 5}, ["lanes=5", "head_dim=16", "[1, 2, 4, 8, 16]"]),
    ({"lanes": 2.0}, ["lanes", "integer"]),
    ({"heads": True}, ["heads", "integer"]),
    ({"max_shapes": ((0, 4), (2, 2))}, ["max_shapes[0] height=0", "[1, 4096]"]),
    ({"max_shapes": ((4, 5000), (2, 2))}, ["max_shapes[0] width=5000"]),
    ({"max_shapes": ((4, 4),)}, ["max_shapes", "levels=2", "got 1"]),
    ({"max_shapes": ((4, 4, 4), (2, 2))}, ["max_shapes[0]", "(height, width)"]),
    ({"coord_frac_bits": 0}, ["coord_frac_bits=0", "[1, 12]"]),
    (
        {"coord_frac_bits": 10},
        ["coord_frac_bits=10", "offset_bits=14", "allowed coord_frac_bits <= 8"],
    ),
    (
        {"coeff_bits": 20, "prob_bits": 4, "coord_frac_bits": 4, "offset_bits": 14},
        ["coeff_bits=20", "<= 12"],
    ),
    ({"value_bits": 1}, ["value_bits=1", "[2, 16]"]),
    ({"weight_bits": 17}, ["weight_bits=17"]),
    ({"proj_lanes": 0}, ["proj_lanes=0", "[1, 4096]"]),
    ({"proj_dsp": "yes"}, ["proj_dsp must be true or false"]),
    ({"layer_out_bits": 3}, ["layer_out_bits=3", "[4, 32]"]),
    ({"acc_bits": 20}, ["acc_bits=20", "overflow"]),
    ({"out_frac_bits": 13}, ["out_frac_bits=13", "coeff_bits=12"]),
    ({"tau_p": 1.0}, ["tau_p=1.0", "[0, 1)"]),
    ({"tau_p": -0.1}, ["tau_p=-0.1", "[0, 1)"]),
    ({"tau_f": float("nan")}, ["tau_f=nan", "[0, 1)"]),
    ({"tau_f": "0.1"}, ["tau_f", "number"]),
    ({"tau_f_bits": 1}, ["tau_f_bits=1", "[2, 16]"]),
    ({"tau_f": 0.999}, ["tau_f=0.999", "tau_f_bits=8", "tau_f < 0.998"]),
    ({"queue_depth": 6}, ["queue_depth=6", "power of two"]),
    ({"queue_depth": 1}, ["queue_depth=1", "[2, 1024]"]),
    ({"importance_bits": 8}, ["importance_bits=8", "[13, 32]"]),
    ({"value_scale": "tensor"}, ["value_scale='tensor'", "'channel'", "'head'"]),
    ({"lane": 4}, ["unknown config parameter 'lane'"]),
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[str(o) for o, _ in BAD])
def test_invalid_values_name_parameter_value_and_range(overrides, words):
    with pytest.raises(ValueError) as info:
        preset("tiny", **overrides)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_shapes_larger_than_the_buffer_are_refused():
    cfg = preset("tiny")  # max_shapes ((9, 11), (5, 6))
    cfg.check_shapes([(9, 11), (1, 1)])
    with pytest.raises(ValueError, match=r"shapes\[1\]=\(5, 7\).*width \[1, 6\]"):
        cfg.check_shapes([(9, 11), (5, 7)])
    with pytest.raises(ValueError, match="3 levels.*levels=2"):
        cfg.check_shapes([(1, 1)] * 3)


def test_unknown_preset_and_malformed_json():
    with pytest.raises(ValueError, match="unknown preset 'huge'.*detr"):
        preset("huge")
    with pytest.raises(ValueError, match="malformed"):
        DefaConfig.from_json("{lanes: 4")
    with pytest.raises(ValueError, match="JSON object"):
        DefaConfig.from_json("[1, 2]")


def test_parse_override():
    assert parse_override("lanes=8") == ("lanes", 8)
    assert parse_override("tau_p=0.05") == ("tau_p", 0.05)
    assert parse_override("max_shapes=[[8,8],[4,4]]") == ("max_shapes", [[8, 8], [4, 4]])
    assert parse_override("value_scale=head") == ("value_scale", "head")
    with pytest.raises(ValueError, match="key=value"):
        parse_override("lanes")


def test_cli_config_with_overrides(capsys, tmp_path):
    assert main(["config", "--preset", "fpga", "--set", "lanes=4", "--set", "tau_f=0.2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lanes"] == 4 and data["tau_f"] == 0.2 and data["d_model"] == 128
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    assert main(["config", "--config", str(path), "--set", "points=2"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert DefaConfig.from_dict(again) == preset("fpga", lanes=4, tau_f=0.2, points=2)


def test_cli_reports_bad_values_with_status_2(capsys):
    assert main(["config", "--preset", "tiny", "--set", "lanes=3"]) == 2
    err = capsys.readouterr().err
    assert "lanes=3" in err and "head_dim=16" in err
    assert main(["config", "--config", "/nonexistent.json"]) == 2
    assert "cannot read config file" in capsys.readouterr().err
