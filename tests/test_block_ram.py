"""The block RAM component (rtl/lib/block_ram.py) in both elaborations, and the DP16KD behavioural
model it is simulated with (fpga/cells/dp16kd.v), on Icarus: every DP16KD port width."""

import re
from pathlib import Path

import pytest

from gen.elaborate import verilog_of
from rtl.lib.block_ram import BlockRam, dp16kd_grid, dp16kd_width
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


def _elaborations(component, prefix: str, tmp_path) -> list[str]:
    """``component`` (a factory) written as ``<prefix>_generic`` and ``<prefix>_ecp5``."""
    sources = []
    for target in ("generic", "ecp5"):
        path = tmp_path / f"{prefix}_{target}.v"
        path.write_text(verilog_of(component(), f"{prefix}_{target}", target))
        sources.append(str(path))
    return sources


def _run_pair(tmp_path, sources: list[str], pair_verilog: str, tb_module: str, env: dict):
    """Both elaborations side by side (``pair_verilog``) with the DP16KD model on Icarus."""
    pair = tmp_path / "pair.v"
    pair.write_text(pair_verilog)
    outcome = build_and_test(
        [str(MODEL), *sources, str(pair)],
        "pair",
        "icarus",
        tmp_path / "icarus",
        test_module=tb_module,
        env=env,
    )
    assert outcome[:2] == (1, 0), f"see {outcome.run_dir}/test.log"


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
        # segments stacked (9 x 4096 above: 2 of 2048 x 9, not 3 columns of 4096 x 4): a band
        # window's bank (3 segments of 8 columns of 2048 x 9), an FWP counter memory of
        # 800 x 1333 (5 segments of 1024 x 18, the enables decoded without stages)
        (64, 5380, 3, 1),
        (16, 4200, 0, 4),
        # the pseudo-dual-port form (512 x 36): one column and a part of one; three segments
        (40, 500, 0, 4),
        (36, 1100, 2, 1),
    ],
    ids=lambda v: str(v),
)
def test_generic_and_ecp5_block_rams_agree(width, depth, stages, group, tmp_path):
    sources = _elaborations(
        lambda: BlockRam(width, depth, input_stages=stages, group=group), "ram", tmp_path
    )
    ecp5 = Path(sources[1]).read_text()
    segments, _, columns = dp16kd_grid(width, depth)
    assert ecp5.count("DP16KD #(") == segments * columns
    if stages:  # one read address register per group of columns
        copies = set(re.findall(r"\br_addr(\d+)\b", ecp5))
        assert ecp5.count("reg [") and len(copies) == -(-columns // group)
    abits = max(2, depth - 1).bit_length()
    pair = PAIR.format(ab=abits - 1, wb=width - 1)
    _run_pair(tmp_path, sources, pair, "tb.block_ram_tb", {"DEFA_RAM": f"{width},{depth},{stages}"})


def test_deeper_than_one_column_stays_generic_and_empty_is_refused():
    deep = verilog_of(BlockRam(8, 16385), "deep", "ecp5")
    assert "DP16KD" not in deep
    with pytest.raises(ValueError, match="depth=0 is out of range"):
        BlockRam(8, 0)
    assert [dp16kd_width(d) for d in (1, 1024, 1025, 4096, 16384)] == [18, 18, 9, 4, 1]
    # the fewest blocks, then the fewest segments: (segments, port, columns)
    assert dp16kd_grid(64, 4096) == (1, 4, 16)  # a tie with 4 x 1024 x 18: one segment
    # 24 blocks, not 32 columns of 8192 x 2; nor 22 in 11 segments of 512 x 36 (SEGMENT_COST)
    assert dp16kd_grid(64, 5380) == (3, 9, 8)
    assert dp16kd_grid(64, 1348) == (3, 36, 2)  # 6 blocks, not 8 columns of 2048 x 9
    assert dp16kd_grid(64, 676) == (1, 18, 4)  # a tie with 2 segments of 2 x 36: one segment
    assert dp16kd_grid(16, 100) == (1, 18, 1)  # a tie with one x36: the true dual port
    assert dp16kd_grid(16, 4200) == (5, 18, 1)
    assert dp16kd_grid(8, 16385) == (0, 0, 0)


ROM_PAIR = """
module pair(input clk, input rst, input [{ab}:0] a0, input [{ab}:0] a1,
            output [{wb}:0] g0, output [{wb}:0] g1, output [{wb}:0] e0, output [{wb}:0] e1);
  rom_generic g(.clk(clk), .rst(rst), .r_addr__0(a0), .r_addr__1(a1), .r_data__0(g0),
                .r_data__1(g1));
  rom_ecp5 e(.clk(clk), .rst(rst), .r_addr__0(a0), .r_addr__1(a1), .r_data__0(e0),
             .r_data__1(e1));
endmodule
"""


@pytest.mark.parametrize("width,length", [(9, 256), (40, 1024), (18, 60)], ids=str)
def test_generic_and_ecp5_block_roms_agree(width, length, tmp_path):
    """The softmax's tables: a random table of ``length`` words through both elaborations."""
    from rtl.lib.block_rom import BlockRom
    from tb.block_rom_tb import table

    seed = width * 1000 + length
    words = table(width, seed, length)
    sources = _elaborations(lambda: BlockRom(width, words, ports=2), "rom", tmp_path)
    ecp5 = Path(sources[1]).read_text()
    assert ecp5.count("DP16KD #(") == -(-width // 18) and "OUTREG" in ecp5
    pair = ROM_PAIR.format(ab=max(2, length - 1).bit_length() - 1, wb=width - 1)
    _run_pair(tmp_path, sources, pair, "tb.block_rom_tb", {"DEFA_ROM": f"{width},{seed},{length}"})


def test_block_rom_refuses_bad_tables():
    from rtl.lib.block_rom import BlockRom

    with pytest.raises(ValueError, match="init is empty"):
        BlockRom(8, [])
    with pytest.raises(ValueError, match=r"init holds 256: allowed \[0, 256\)"):
        BlockRom(8, [1, 256])
    with pytest.raises(ValueError, match="ports=3 is out of range"):
        BlockRom(8, [1], ports=3)
