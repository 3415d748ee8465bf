"""cocotb test of ``rtl.memory.axi_writer.AxiWriter`` against cocotbext-axi's ``AxiRamWrite``:
random requests to disjoint regions (bursts across 4 KB boundaries, 1 to 300 beats), their beats
offered with random gaps, random pauses on the AW, W and B channels. The memory must hold every
beat where its request put it and nothing else, every AW burst is checked (INCR, full width, at
most ``max_burst`` beats, inside one 4 KB page), ``bready`` stays high, and the writer is idle
at the end. Then the error status: a request of 0 beats sets bit 1 and writes nothing, and
``clear`` resets it (tests/test_axi.py builds the writer).

Environment: ``DEFA_AXI`` (JSON: the writer's parameters), ``DEFA_REQUESTS`` (default 100)."""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiRamWrite, AxiWriteBus

from tb.axi_harness import AxiMasterTB

PARAMS = json.loads(os.environ["DEFA_AXI"])
REQUESTS = int(os.environ.get("DEFA_REQUESTS", "100"))
MEMORY = 1 << 20


class WriterTB(AxiMasterTB):
    def __init__(self, dut, seed: int):
        super().__init__(dut, seed, PARAMS, "aw")
        self.ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=MEMORY)
        self.ram.write(0, bytes(MEMORY))

    def sample(self):
        if not int(self.dut.axi__bready.value):
            raise AssertionError("bready went low")

    async def send(self, words, p_gap: float):
        """Offer ``words`` on ``data`` in order, with random gaps."""
        dut = self.dut
        gaps = self.pause(p_gap)
        for word in words:
            await FallingEdge(dut.clk)
            while next(gaps):
                dut.data__valid.value = 0
                await FallingEdge(dut.clk)
            dut.data__payload.value = word
            dut.data__valid.value = 1
            while True:
                await ReadOnly()
                taken = int(dut.data__ready.value)
                if taken:
                    break
                await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.data__valid.value = 0

    async def until_idle(self, limit: int = 200_000):
        for _ in range(limit):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.idle.value):
                return
        raise AssertionError(f"hang: not idle after {limit} cycles")


@cocotb.test()
async def random_requests(dut):
    tb = WriterTB(dut, cocotb.RANDOM_SEED)
    await tb.start("data__valid")
    tb.ram.aw_channel.set_pause_generator(tb.pause(0.3))
    tb.ram.w_channel.set_pause_generator(tb.pause(0.2))
    tb.ram.b_channel.set_pause_generator(tb.pause(0.3))
    regions, words, cursor = [], [], 0
    for _ in range(REQUESTS):
        beats = int(
            tb.rng.choice([1, 2, 3, int(tb.rng.integers(1, 40)), int(tb.rng.integers(1, 300))])
        )
        cursor += int(tb.rng.integers(0, 64)) * tb.beat_bytes
        if tb.rng.random() < 0.2:  # start just below a 4 KB page
            cursor = (cursor // 4096 + 1) * 4096 - int(tb.rng.integers(1, 8)) * tb.beat_bytes
        if cursor + beats * tb.beat_bytes > MEMORY:
            break
        data = tb.rng.integers(0, 256, beats * tb.beat_bytes, dtype=np.uint8).tobytes()
        regions.append((cursor, data))
        words += [
            int.from_bytes(data[i * tb.beat_bytes : (i + 1) * tb.beat_bytes], "little")
            for i in range(beats)
        ]
        cursor += beats * tb.beat_bytes
    sender = cocotb.start_soon(tb.send(words, 0.3))
    for addr, data in regions:
        await tb.request(addr, len(data) // tb.beat_bytes)
        for _ in range(int(tb.rng.choice([0, 0, 1, 7]))):
            await FallingEdge(dut.clk)
    for _ in range(200_000):  # every beat offered, or a hang
        if sender.done():
            break
        await RisingEdge(dut.clk)
    else:
        raise AssertionError("hang: the writer stopped taking beats")
    await tb.until_idle()
    image = tb.ram.read(0, MEMORY)
    expected = bytearray(MEMORY)
    for addr, data in regions:
        expected[addr : addr + len(data)] = data
    if image != bytes(expected):
        diff = next(i for i in range(MEMORY) if image[i] != expected[i])
        raise AssertionError(f"memory differs first at {diff:#x}")
    tb.check_bursts()
    if int(dut.error.value):
        raise AssertionError(f"error {int(dut.error.value)} after well-formed requests")
    dut._log.info(f"{len(regions)} requests, {len(words)} beats, {len(tb.bursts)} bursts")

    await tb.request(0, 0)  # 0 beats: an error, nothing written
    await ClockCycles(dut.clk, 4)
    await ReadOnly()
    if int(dut.error.value) != 2 or tb.ram.read(0, MEMORY) != bytes(expected):
        raise AssertionError(f"0 beats: error {int(dut.error.value)}")
    await tb.clear_error()
