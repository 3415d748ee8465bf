"""cocotb test of ``rtl.lib.block_ram.BlockRam``: its generic elaboration and its ECP5 elaboration
(DP16KD blocks with output registers, simulated with ``fpga/cells/dp16kd.v``) side by side,
against a Python model: random writes and reads, reads of the address written in the same
cycle (the old word), two-cycle read latency (more with input stages); tests/test_block_ram.py
builds the pair.

Environment: ``DEFA_RAM`` = ``"width,depth,stages"`` (``input_stages``: the read takes
2 + stages cycles; a write lands as late, so reads see the writes issued before them)."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

WIDTH, DEPTH, STAGES = (int(v) for v in os.environ["DEFA_RAM"].split(","))
LATENCY = 2 + STAGES


@cocotb.test()
async def generic_and_ecp5_agree_with_a_model(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    dut.w_en.value = 0
    dut.w_addr.value = 0
    dut.w_data.value = 0
    dut.r_addr.value = 0
    await FallingEdge(dut.clk)
    model = [0] * DEPTH
    reads = []  # (address, word at the read) per cycle, newest last
    hot = [int(a) for a in rng.integers(0, DEPTH, 4)]  # addresses hit often (collisions)
    checked = 0
    for cycle in range(3000):
        await FallingEdge(dut.clk)
        write = bool(rng.random() < 0.6)
        w_addr = int(rng.choice(hot)) if rng.random() < 0.5 else int(rng.integers(0, DEPTH))
        w_data = int(rng.integers(0, 1 << min(WIDTH, 62))) | (
            int(rng.integers(0, 1 << (WIDTH - 62))) << 62 if WIDTH > 62 else 0
        )
        r_addr = (
            w_addr if rng.random() < 0.3 else int(rng.choice(hot + [int(rng.integers(0, DEPTH))]))
        )
        dut.w_en.value = int(write)
        dut.w_addr.value = w_addr
        dut.w_data.value = w_data
        dut.r_addr.value = r_addr
        reads.append(model[r_addr])  # the old word on a same-cycle write
        if write:
            model[w_addr] = w_data
        await ReadOnly()
        if len(reads) > LATENCY:  # r_data now: the read issued LATENCY cycles ago (earlier
            # ones read the address the simulator started with, X)
            got_g = dut.r_generic.value.to_unsigned()
            got_e = dut.r_ecp5.value.to_unsigned()
            assert got_g == got_e, f"cycle {cycle}: generic {got_g:#x}, ecp5 {got_e:#x}"
            want = reads[-1 - LATENCY]
            assert got_g == want, f"cycle {cycle}: read {got_g:#x}, want {want:#x}"
            checked += 1
    assert checked > 2900
