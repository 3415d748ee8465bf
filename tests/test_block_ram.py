"""The block RAM component (rtl/block_ram.py) in both elaborations, and the DP16KD behavioural
model it is simulated with (fpga/cells/dp16kd.v), on Icarus: every DP16KD port width."""

import re
from pathlib import Path

import pytest

from gen.elaborate import verilog_of
from rtl.block_ram import BlockRam, dp16kd_width
from tb.runner import build_and_test

MODEL = Path(__file__).resolve().parents[1] / "fpga" / "cells" / "dp16kd.v"

PAIR = """
module pair(input clk, input rst, input w_en, input [{ab}:0] w_addr, input [{wb}:0] w_data,
            input [{ab}:0] r_addr, output [{wb}:0] r_generic, output [{wb}:0] r_ecp5);
  ram_generic g(.clk(clk), .rst(rst), .w_en(w_en), .w_addr(w_addr), .w_data(w_data),
                .r_addr(r_addr), .r_data(r_generic));
  ram_ecp5 e(.clk(clk), .rst(rst), .w_en(w_en), .w_addr(w_addr), .w_data(w_data),
             .r_addr(r_addr), .r_data(r_ecp5));
endmodule
"""


@pytest.mark.parametrize(
    "width,depth,stages,group",
    [
        (64, 1000, 0, 4),
        (13, 60, 0, 4),
        (20, 2048, 0, 4),
        (9, 4096, 0, 4),
        (3, 8000, 0, 4),
        (2, 16384, 0, 4),
        # input stages, the last stage's address copied per group of 4 columns (16 and 3)
        (64, 4096, 2, 4),
        (40, 1024, 1, 4),
        # three stages: a copy per 4 columns, then per column (the level buffers' banks)
        (64, 4096, 3, 1),
    ],
    ids=lambda v: str(v),
)
def test_generic_and_ecp5_block_rams_agree(width, depth, stages, group, tmp_path):
    sources = []
    for name, target in (("ram_generic", "generic"), ("ram_ecp5", "ecp5")):
        path = tmp_path / f"{name}.v"
        ram = BlockRam(width, depth, input_stages=stages, group=group)
        path.write_text(verilog_of(ram, name, target))
        sources.append(str(path))
    ecp5 = Path(sources[1]).read_text()
    columns = -(-width // dp16kd_width(depth))
    assert ecp5.count("DP16KD #(") == columns
    if stages:  # one read address register per group of columns
        copies = set(re.findall(r"\br_addr(\d+)\b", ecp5))
        assert ecp5.count("reg [") and len(copies) == -(-columns // group)
    abits = max(2, depth - 1).bit_length()
    pair = tmp_path / "pair.v"
    pair.write_text(PAIR.format(ab=abits - 1, wb=width - 1))
    outcome = build_and_test(
        [str(MODEL), *sources, str(pair)],
        "pair",
        "icarus",
        tmp_path / "icarus",
        test_module="tb.block_ram_tb",
        env={"DEFA_RAM": f"{width},{depth},{stages}"},
    )
    assert outcome[:2] == (1, 0), f"see {outcome.run_dir}/test.log"


def test_deeper_than_one_column_stays_generic_and_empty_is_refused():
    deep = verilog_of(BlockRam(8, 16385), "deep", "ecp5")
    assert "DP16KD" not in deep
    with pytest.raises(ValueError, match="depth=0 is out of range"):
        BlockRam(8, 0)
    assert [dp16kd_width(d) for d in (1, 1024, 1025, 4096, 16384)] == [18, 18, 9, 4, 1]
