"""What the AXI master testbenches (tb/axi_reader_tb.py, tb/axi_writer_tb.py) share: clock and
reset, seeded pause generators for cocotbext-axi's channels, the request driver (bounded:
a request not taken is a hang, reported), a monitor of the address channel and the burst
checks (INCR, full width, at most ``max_burst`` beats, inside one 4 KB page).

Signals change on falling edges (the drivers) and rising edges (the design, the memory
model); the monitor samples at the falling edge, the values the next rising edge sees."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly


class AxiMasterTB:
    """``channel``: ``"ar"`` or ``"aw"``; ``params``: the master's parameters."""

    def __init__(self, dut, seed: int, params: dict, channel: str):
        self.dut = dut
        self.rng = np.random.default_rng(seed)
        self.beat_bytes = params["data_bits"] // 8
        self.addr_bits = params["addr_bits"]
        self.max_burst = params["max_burst"]
        self.channel = channel
        self.bursts = []  # (addr, len, size, burst) of each address the memory took

    def pause(self, p: float):
        """A pause generator: stall each cycle with probability ``p``."""
        rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
        while True:
            yield bool(rng.random() < p)

    async def start(self, *inputs: str):
        """Clock, reset, the design's ``inputs`` at 0, and the monitor."""
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        for name in ("requests__valid", "clear", *inputs):
            getattr(dut, name).value = 0
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(self._watch())

    async def _watch(self):
        dut, ch = self.dut, self.channel
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            if int(getattr(dut, f"axi__{ch}valid").value) and int(
                getattr(dut, f"axi__{ch}ready").value
            ):
                self.bursts.append(
                    tuple(
                        int(getattr(dut, f"axi__{ch}{n}").value)
                        for n in ("addr", "len", "size", "burst")
                    )
                )
            self.sample()

    def sample(self):
        """More checks at each monitor sample (the testbench's own)."""

    async def request(self, addr: int, beats: int):
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.requests__payload.value = addr | (beats << self.addr_bits)
        dut.requests__valid.value = 1
        for _ in range(100_000):
            await ReadOnly()
            taken = int(dut.requests__ready.value)
            await FallingEdge(dut.clk)
            if taken:
                break
        else:
            raise AssertionError(f"hang: request ({addr:#x}, {beats}) not taken")
        dut.requests__valid.value = 0

    async def clear_error(self):
        """Pulse ``clear``; the error status must read 0 after it."""
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.clear.value = 1
        await FallingEdge(dut.clk)
        dut.clear.value = 0
        await ReadOnly()
        if int(dut.error.value) != 0:
            raise AssertionError("clear left the error status set")

    def check_bursts(self):
        for addr, length, size, burst in self.bursts:
            beats = length + 1
            if burst != 1 or (1 << size) != self.beat_bytes:
                raise AssertionError(f"burst {addr:#x}: burst type {burst}, size {size}")
            if beats > self.max_burst:
                raise AssertionError(f"burst {addr:#x}: {beats} beats > {self.max_burst}")
            if addr // 4096 != (addr + beats * self.beat_bytes - 1) // 4096:
                raise AssertionError(f"burst {addr:#x} of {beats} beats crosses 4 KB")
