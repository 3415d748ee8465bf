"""cocotb test of ``rtl.memory.axi_reader.AxiReader`` against cocotbext-axi's ``AxiRamRead``:
random requests (addresses anywhere in the memory, bursts across 4 KB boundaries, 1 to 600
beats), random pauses on the AR and R channels and on the data consumer. Every beat is compared
with the memory, ``last`` must mark each request's final beat and no other, every AR burst is
checked (INCR, full width, at most ``max_burst`` beats, inside one 4 KB page), ``rready`` stays
high, and the reader is idle at the end. Then the error status: a request of 0 beats and one at
a misaligned address set bit 1 (the latter reads the beats that hold it), and ``clear`` resets
it (tests/test_axi.py builds the reader).

Environment: ``DEFA_AXI`` (JSON: the reader's parameters), ``DEFA_REQUESTS`` (default 200)."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

from tb.axi_harness import AxiMasterTB

PARAMS = json.loads(os.environ["DEFA_AXI"])
REQUESTS = int(os.environ.get("DEFA_REQUESTS", "200"))
MEMORY = 1 << 16


class ReaderTB(AxiMasterTB):
    def __init__(self, dut, seed: int):
        super().__init__(dut, seed, PARAMS, "ar")
        self.ram = AxiRamRead(AxiReadBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, self.rng.integers(0, 256, MEMORY, dtype=np.uint8).tobytes())
        self.beats = []  # (data, last) as the consumer took them

    def sample(self):
        dut = self.dut
        if not int(dut.axi__rready.value):
            raise AssertionError("rready went low")
        if int(dut.data__valid.value) and int(dut.data__ready.value):
            word = int(dut.data__payload.value)
            self.beats.append(
                (word & ((1 << PARAMS["data_bits"]) - 1), word >> PARAMS["data_bits"])
            )

    async def consume(self, p_stall: float):
        dut = self.dut
        stalls = self.pause(p_stall)
        while True:
            await FallingEdge(dut.clk)
            dut.data__ready.value = 0 if next(stalls) else 1

    def expected(self, addr: int, beats: int):
        base = addr & ~(self.beat_bytes - 1)
        raw = self.ram.read(base, beats * self.beat_bytes)
        words = [
            int.from_bytes(raw[i * self.beat_bytes : (i + 1) * self.beat_bytes], "little")
            for i in range(beats)
        ]
        return [(w, int(i == beats - 1)) for i, w in enumerate(words)]

    async def drain(self, count: int, limit: int = 200_000):
        for _ in range(limit):
            if len(self.beats) >= count and int(self.dut.idle.value):
                return
            await RisingEdge(self.dut.clk)
        raise AssertionError(f"hang: {len(self.beats)} of {count} beats after {limit} cycles")


@cocotb.test()
async def random_requests(dut):
    tb = ReaderTB(dut, cocotb.RANDOM_SEED)
    await tb.start("data__ready")
    tb.ram.ar_channel.set_pause_generator(tb.pause(0.3))
    tb.ram.r_channel.set_pause_generator(tb.pause(0.2))
    cocotb.start_soon(tb.consume(0.3))
    want = []
    for _ in range(REQUESTS):
        beats = int(
            tb.rng.choice([1, 2, 3, int(tb.rng.integers(1, 64)), int(tb.rng.integers(1, 600))])
        )
        addr = int(tb.rng.integers(0, MEMORY // tb.beat_bytes - beats)) * tb.beat_bytes
        if tb.rng.random() < 0.2:  # just below a 4 KB page
            page = int(tb.rng.integers(1, MEMORY // 4096 - 1))
            addr = max(0, page * 4096 - int(tb.rng.integers(1, 8)) * tb.beat_bytes)
            beats = min(beats, (MEMORY - addr) // tb.beat_bytes)
        want += tb.expected(addr, beats)
        await tb.request(addr, beats)
        for _ in range(int(tb.rng.choice([0, 0, 1, 5]))):
            await FallingEdge(dut.clk)
    await tb.drain(len(want))
    if tb.beats != want:
        first = (
            next(i for i, (a, b) in enumerate(zip(tb.beats, want, strict=True)) if a != b)
            if len(tb.beats) == len(want)
            else None
        )
        raise AssertionError(
            f"{len(tb.beats)} beats, want {len(want)}; first difference at {first}"
        )
    tb.check_bursts()
    if int(dut.error.value):
        raise AssertionError(f"error {int(dut.error.value)} after well-formed requests")
    dut._log.info(f"{REQUESTS} requests, {len(want)} beats, {len(tb.bursts)} bursts")

    # Malformed requests: 0 beats reads nothing; a misaligned address reads its beats.
    await tb.request(4096, 0)
    await ClockCycles(dut.clk, 4)
    if int(dut.error.value) != 2 or len(tb.beats) != len(want):
        raise AssertionError(
            f"0 beats: error {int(dut.error.value)}, {len(tb.beats) - len(want)} beats"
        )
    await tb.clear_error()
    if tb.beat_bytes > 1:
        want += tb.expected(8192 + 1, 3)
        await tb.request(8192 + 1, 3)
        await tb.drain(len(want))
        if tb.beats != want or int(dut.error.value) != 2:
            raise AssertionError(f"misaligned: error {int(dut.error.value)}, beats {tb.beats[-3:]}")
