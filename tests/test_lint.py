"""Generated Verilog is lint-clean under ``verilator --lint-only -Wall`` with the documented
waivers, and the waivers hide only the rules they name."""

from pathlib import Path

import pytest

from gen.config import preset
from gen.elaborate import generate
from gen.lint import WAIVERS, lint

WAIVED = {
    "WIDTHEXPAND",
    "UNUSEDSIGNAL",
    "PROCASSINIT",
    "DECLFILENAME",
    "WIDTHTRUNC",
    "CASEINCOMPLETE",
}


@pytest.mark.parametrize(
    "cfg,level",
    [(preset("tiny"), 0), (preset("tiny", lanes=4), 1), (preset("fpga"), 0), (preset("fpga"), 3)],
    ids=["tiny", "tiny-lanes4-l1", "fpga-l0", "fpga-l3"],
)
def test_sampler_is_lint_clean(cfg, level, tmp_path):
    out = generate(cfg, tmp_path, level=level)
    assert lint(out["verilog"]) == {}
    raw = lint(out["verilog"], waivers=False)
    assert set(raw) <= WAIVED, f"unwaived rules: {set(raw) - WAIVED}"


def test_every_waiver_has_a_reason():
    lines = WAIVERS.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("lint_off"):
            rule = line.split("-rule")[1].split()[0]
            above = "\n".join(lines[max(0, i - 4) : i])
            assert f"// {rule}:" in above, f"waiver of {rule} has no reason above it"
    # The waivers name only the rules below: the big presets are linted with them alone (a
    # run without them, on tiny, shows which rules they hide).
    rules = {line.split("-rule")[1].split()[0] for line in lines if line.startswith("lint_off")}
    assert rules == WAIVED


def _detr_scaled():
    """detr with buffers for a 200x334 input and 8 lanes a sampler: every format and the
    heads, levels and points of detr, only shallower memories and a quarter of the lanes (the
    suite's time: neither the memories' depth nor the lanes' count adds anything to lint)."""
    return preset("detr", max_shapes=((25, 42), (13, 21), (7, 11), (4, 6)), lanes=8)


@pytest.mark.parametrize(
    "name,block",
    [
        # the layer's board build holds the layer top, which holds the fused layer, which holds
        # the core (and its projection units): it stands for them all, the link and the
        # on-chip memory
        ("tiny", "layer_linked"),
        ("tiny", "top"),
        # fpga's and detr's cores are linted as modules of their tops (the core alone would
        # add nothing but its ports, which tiny's core covers: the same generator; fpga's
        # core alone took 33 s of the suite's 10 minutes)
        pytest.param("fpga", "top", marks=pytest.mark.slow),
        pytest.param("detr-scaled", "top", marks=pytest.mark.slow),
    ],
)
def test_core_and_top_of_every_preset_are_lint_clean(name, block, tmp_path):
    cfg = _detr_scaled() if name == "detr-scaled" else preset(name)
    out = generate(cfg, tmp_path, block=block)
    assert lint(out["verilog"]) == {}
    if (name, block) == ("tiny", "top"):  # the waivers hide only their rules (once: 15-20 s)
        raw = lint(out["verilog"], waivers=False)
        assert set(raw) <= WAIVED, f"unwaived rules: {set(raw) - WAIVED}"
    core = {"top": "core", "layer_linked": "top.layer.core"}[block]  # the core is in it
    assert f"module \\defa_{block}.{core}" in Path(out["verilog"]).read_text()


def test_every_preset_is_covered():
    from gen.config import PRESETS

    assert set(PRESETS) == {"tiny", "fpga", "detr"}  # a new preset joins the lint above
