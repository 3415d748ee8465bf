"""The multiplier component (rtl/lib/multiplier.py) in both elaborations, and the MULT18X18D
behavioural model it is simulated with (fpga/cells/mult18x18d.v), on Icarus."""

from pathlib import Path

import pytest
from amaranth.hdl import Signal, signed, unsigned

from gen.elaborate import verilog_of
from rtl.lib.multiplier import Multiplier
from tb.runner import build_and_test

MODEL = Path(__file__).resolve().parents[1] / "fpga" / "cells" / "mult18x18d.v"

PAIR = """
module pair(input clk, input rst, input [{aw}:0] a, input [{bw}:0] b,
            output [{pw}:0] p_generic, output [{pw}:0] p_ecp5);
  mult_generic g(.clk(clk), .rst(rst), .a(a), .b(b), .p(p_generic));
  mult_ecp5 e(.clk(clk), .rst(rst), .a(a), .b(b), .p(p_ecp5));
endmodule
"""


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [
        (unsigned(13), signed(8)),  # the sampler's coefficient x value
        (signed(18), signed(18)),
        (unsigned(18), unsigned(18)),
        (signed(5), unsigned(3)),
    ],
    ids=str,
)
def test_generic_and_ecp5_multipliers_agree(a_shape, b_shape, tmp_path):
    sources = []
    for name, target in (("mult_generic", "generic"), ("mult_ecp5", "ecp5")):
        path = tmp_path / f"{name}.v"
        path.write_text(verilog_of(Multiplier(a_shape, b_shape), name, target))
        sources.append(str(path))
    assert "MULT18X18D" in Path(sources[1]).read_text()
    assert "MULT18X18D" not in Path(sources[0]).read_text()
    width = (Signal(a_shape) * Signal(b_shape)).shape().width
    pair = tmp_path / "pair.v"
    pair.write_text(PAIR.format(aw=a_shape.width - 1, bw=b_shape.width - 1, pw=width - 1))
    env = {
        "DEFA_MULT": f"{a_shape.width},{int(a_shape.signed)},{b_shape.width},{int(b_shape.signed)}"
    }
    outcome = build_and_test(
        [str(MODEL), *sources, str(pair)],
        "pair",
        "icarus",
        tmp_path / "icarus",
        test_module="tb.multiplier_tb",
        env=env,
    )
    assert outcome[:2] == (1, 0), f"see {outcome.run_dir}/test.log"


def test_operands_wider_than_the_dsp_stay_generic_and_empty_ones_are_refused():
    wide = verilog_of(Multiplier(unsigned(19), signed(8)), "wide", "ecp5")
    assert "MULT18X18D" not in wide and "*" in wide
    with pytest.raises(ValueError, match="a_shape=unsigned\\(0\\) is out of range"):
        Multiplier(unsigned(0), signed(8))
