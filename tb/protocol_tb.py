"""cocotb tests of the stream protocol checker (``tb.protocol``) on a probe whose stream the
test drives directly (``tests/test_protocol.py`` writes the probe): legal traffic passes
with every beat counted; a dropped valid, a changed payload and an X on valid are caught; a
reset releases a held beat; a violation fails the test through the harness."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, Timer

from tb.protocol import StreamMonitor


class Probe:
    def __init__(self, dut, *, raising: bool = False):
        self.dut = dut
        self.errors: list[str] = []
        fail = self._raise if raising else self.errors.append
        self.monitor = StreamMonitor(dut, ["s"], fail)

    @staticmethod
    def _raise(message: str):
        raise AssertionError(message)

    async def start(self):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        dut.s__valid.value = 0
        dut.s__payload.value = 0
        dut.stall.value = 0
        self.monitor.start()
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def cycle(self, valid, payload, stall, rst=0):
        """Drive one cycle's values (after a falling edge); returns whether it transferred."""
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.s__valid.value = valid
        dut.s__payload.value = payload
        dut.stall.value = stall
        dut.rst.value = rst
        await ReadOnly()
        return bool(valid) and not stall and not rst

    async def settle(self):
        """Idle the stream for a cycle; the monitor has then seen every driven cycle."""
        await self.cycle(0, 0, 0)
        await FallingEdge(self.dut.clk)
        await Timer(1, "ns")


@cocotb.test()
async def legal_traffic_passes_and_counts(dut):
    probe = Probe(dut)
    await probe.start()
    rng = np.random.default_rng(cocotb.RANDOM_SEED)
    transfers, holding, word = 0, False, 0
    for _ in range(3000):
        if not holding:
            valid = int(rng.random() < 0.7)
            word = int(rng.integers(0, 256))
        stall = int(rng.random() < 0.4)
        took = await probe.cycle(1 if holding else valid, word, stall)
        transfers += took
        holding = (holding or valid) and not took
    await probe.settle()
    assert probe.errors == [], probe.errors
    assert probe.monitor.beats("s") == transfers > 1000


@cocotb.test()
async def dropped_valid_is_caught(dut):
    probe = Probe(dut)
    await probe.start()
    await probe.cycle(1, 0x5A, 1)  # offered, not taken
    await probe.cycle(0, 0x5A, 0)  # withdrawn: a violation
    await probe.settle()
    assert len(probe.errors) == 1 and "valid dropped" in probe.errors[0], probe.errors
    assert probe.monitor.beats("s") == 0


@cocotb.test()
async def changed_payload_is_caught(dut):
    probe = Probe(dut)
    await probe.start()
    await probe.cycle(1, 0x11, 1)
    await probe.cycle(1, 0x11, 1)  # still held: fine
    await probe.cycle(1, 0x12, 0)  # changed while held: a violation (even though taken now)
    await probe.settle()
    assert len(probe.errors) == 1 and "0x11 to 0x12" in probe.errors[0], probe.errors
    assert probe.monitor.beats("s") == 1


@cocotb.test()
async def x_on_valid_is_caught(dut):
    probe = Probe(dut)
    await probe.start()
    await probe.cycle("x", 0, 0)
    await probe.settle()
    assert any("valid is" in e for e in probe.errors), probe.errors


@cocotb.test()
async def reset_releases_a_held_beat(dut):
    probe = Probe(dut)
    await probe.start()
    await probe.cycle(1, 0x33, 1)
    await probe.cycle(0, 0, 1, rst=1)  # withdrawn in reset: allowed
    await probe.cycle(0, 0, 0)
    await probe.cycle(1, 0x44, 0)  # a new beat after the reset
    await probe.settle()
    assert probe.errors == [], probe.errors
    assert probe.monitor.beats("s") == 1


@cocotb.test(expect_fail=True)
async def a_violation_fails_the_test(dut):
    """With a raising ``fail`` (as the harness's), the monitor's task fails the test."""
    probe = Probe(dut, raising=True)
    await probe.start()
    await probe.cycle(1, 0x5A, 1)
    await probe.cycle(0, 0, 0)
    for _ in range(5):
        await probe.cycle(0, 0, 0)
