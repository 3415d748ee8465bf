"""cocotb test of ``rtl.lib.block_rom.BlockRom``: its generic elaboration and its ECP5 elaboration
(DP16KD blocks with the table in INITVAL and output registers, simulated with
``fpga/cells/dp16kd.v``) side by side, two read ports each, against the table itself: random
addresses on both ports every cycle, two-cycle read latency; tests/test_block_ram.py builds
the pair.

Environment: ``DEFA_ROM`` = ``"width,seed,length"``: the table (``table``) the test wrote into
both elaborations."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

LATENCY = 2


def table(width: int, seed: int, length: int) -> list[int]:
    """The table under test (tests/test_block_ram.py builds the ROMs from it)."""
    rng = np.random.default_rng(seed)
    return [int(v) for v in rng.integers(0, 1 << width, length, dtype=np.uint64)]


@cocotb.test()
async def generic_and_ecp5_read_the_table(dut):
    width, seed, length = (int(v) for v in os.environ["DEFA_ROM"].split(","))
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    words = table(width, seed, length)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    dut.a0.value = 0
    dut.a1.value = 0
    await FallingEdge(dut.clk)
    reads = []
    checked = 0
    for cycle in range(2000):
        await FallingEdge(dut.clk)
        addrs = [int(a) for a in rng.integers(0, length, 2)]
        dut.a0.value, dut.a1.value = addrs
        reads.append([words[a] for a in addrs])
        await ReadOnly()
        if len(reads) > LATENCY:
            want = reads[-1 - LATENCY]
            got = [[int(getattr(dut, f"{kind}{i}").value) for i in range(2)] for kind in ("g", "e")]
            assert got[0] == got[1] == want, (
                f"cycle {cycle}: generic {got[0]}, ecp5 {got[1]}, want {want}"
            )
            checked += 1
    assert checked > 1990
