"""cocotb test of ``rtl.lib.multiplier.Multiplier``: its generic elaboration and its ECP5
elaboration (MULT18X18D with input and output registers, simulated with the behavioural model
``fpga/cells/mult18x18d.v``) side by side on the same operands, against Python's product two
cycles later, with random synchronous resets (tests/test_multiplier.py builds the pair).

Environment: ``DEFA_MULT`` = ``"a_width,a_signed,b_width,b_signed"``."""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

A_W, A_S, B_W, B_S = (int(v) for v in os.environ["DEFA_MULT"].split(","))


def _draw(rng, width, signed):
    lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
    edges = [lo, hi - 1, 0, min(1, hi - 1)]
    return int(rng.choice(edges)) if rng.random() < 0.2 else int(rng.integers(lo, hi))


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


@cocotb.test()
async def generic_and_ecp5_agree_with_python(dut):
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.a.value = 0
    dut.b.value = 0
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    width = len(dut.p_generic)
    history = []  # (a, b, reset) of each cycle, newest last
    checked = 0
    for cycle in range(4000):
        await FallingEdge(dut.clk)
        a, b = _draw(rng, A_W, A_S), _draw(rng, B_W, B_S)
        reset = int(rng.random() < 0.02)
        dut.a.value = a & ((1 << A_W) - 1)
        dut.b.value = b & ((1 << B_W) - 1)
        dut.rst.value = reset
        history.append((a, b, reset))
        await ReadOnly()
        got_g = dut.p_generic.value.to_unsigned()
        got_e = dut.p_ecp5.value.to_unsigned()
        assert got_g == got_e, f"cycle {cycle}: generic {got_g:#x}, ecp5 {got_e:#x}"
        # p now is the product of the operands two cycles back, unless a reset came between.
        if len(history) >= 3 and not (history[-3][2] or history[-2][2]):
            pa, pb, _ = history[-3]
            got = _signed(got_g, width) if A_S or B_S else got_g
            assert got == pa * pb, f"cycle {cycle}: {pa} * {pb} -> {got_g:#x}"
            checked += 1
        elif len(history) >= 3 and history[-2][2]:
            assert got_g == 0, f"cycle {cycle}: product {got_g:#x} right after a reset"
    assert checked > 3000
