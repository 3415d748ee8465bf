"""cocotb test of ``rtl.memory.axi_reader.AxiReader`` against cocotbext-axi's ``AxiRamRead``:
random requests (addresses anywhere in the memory, bursts across 4 KB boundaries, 1 to 600
beats), random pauses on the AR and R channels and on the data consumer. Every beat is compared
with the memory, ``last`` must mark each request's final beat and no other, every AR burst is
checked (INCR, full width, at most ``max_burst`` beats, inside one 4 KB page), ``rready`` stays
high, and the reader is idle at the end. Then the error status: a request of 0 beats and one at
a misaligned address set bit 1 (the latter reads the beats that hold it), and ``clear`` resets
it (tests/test_axi_reader.py builds the reader).

Environment: ``DEFA_AXI`` (JSON: the reader's parameters), ``DEFA_REQUESTS`` (default 200)."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

PARAMS = json.loads(os.environ["DEFA_AXI"])
REQUESTS = int(os.environ.get("DEFA_REQUESTS", "200"))
MEMORY = 1 << 16


class ReaderTB:
    def __init__(self, dut, seed: int):
        self.dut = dut
        self.rng = np.random.default_rng(seed)
        self.beat_bytes = PARAMS["data_bits"] // 8
        self.addr_bits = PARAMS["addr_bits"]
        self.ram = AxiRamRead(AxiReadBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, self.rng.integers(0, 256, MEMORY, dtype=np.uint8).tobytes())
        self.bursts = []  # (araddr, arlen, arsize, arburst) as the memory took them
        self.beats = []  # (data, last) as the consumer took them

    def pause(self, p: float):
        """A pause generator: stall each cycle with probability ``p``."""
        rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
        while True:
            yield bool(rng.random() < p)

    async def start(self):
        dut = self.dut
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        dut.requests__valid.value = 0
        dut.data__ready.value = 0
        dut.clear.value = 0
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(self._watch())

    async def _watch(self):
        """Every handshake, from the values the next rising edge will see (the drivers change
        their signals on falling edges, the design and the memory model on rising ones)."""
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            if int(dut.axi__arvalid.value) and int(dut.axi__arready.value):
                self.bursts.append(
                    tuple(
                        int(getattr(dut, f"axi__{n}").value)
                        for n in ("araddr", "arlen", "arsize", "arburst")
                    )
                )
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

    def check_bursts(self):
        for araddr, arlen, arsize, arburst in self.bursts:
            beats = arlen + 1
            if arburst != 1 or (1 << arsize) != self.beat_bytes:
                raise AssertionError(f"burst {araddr:#x}: burst type {arburst}, size {arsize}")
            if beats > PARAMS["max_burst"]:
                raise AssertionError(f"burst {araddr:#x}: {beats} beats > {PARAMS['max_burst']}")
            if araddr // 4096 != (araddr + beats * self.beat_bytes - 1) // 4096:
                raise AssertionError(f"burst {araddr:#x} of {beats} beats crosses 4 KB")


@cocotb.test()
async def random_requests(dut):
    tb = ReaderTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
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
    await FallingEdge(dut.clk)
    dut.clear.value = 1
    await FallingEdge(dut.clk)
    dut.clear.value = 0
    await ReadOnly()
    if int(dut.error.value) != 0:
        raise AssertionError("clear left the error status set")
    if tb.beat_bytes > 1:
        want += tb.expected(8192 + 1, 3)
        await tb.request(8192 + 1, 3)
        await tb.drain(len(want))
        if tb.beats != want or int(dut.error.value) != 2:
            raise AssertionError(f"misaligned: error {int(dut.error.value)}, beats {tb.beats[-3:]}")
