"""cocotb regression of the streamed sampler (``defa_streamed_sampler``: band window, sampler,
AXI4 reader) against the bit-true model, its map in cocotbext-axi's ``AxiRamRead`` with random
pauses on AR and R.

Every output beat is compared with ``sim.bittrue.sample_points`` (the map's contents do not
depend on where the hardware keeps them); the band's refills and slow paths are counted and
compared with ``sim.band.band_trace``, the point-level model of the same policy; every read
burst must lie inside the map. Points come in band-friendly order (head by head, rows rising,
with jitter that sends some behind the band) mixed with the sampler testbench's edge cases
(far off the map, on its edges and borders, saturated offsets) and shuffled stretches (head
switches, slow paths, jumps). Maps taller than the band, as tall, and smaller.

Environment: ``DEFA_MANIFEST``, ``DEFA_POINTS`` (points per test, default 3000).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiRamRead, AxiReadBus

from sim.band import band_trace, corner_rows, memory_layout
from tb.harness import Harness, load_manifest
from tb.sampler_tb import SamplerTB, expected_beats, make_points

MANIFEST, CFG = load_manifest()
LEVEL = MANIFEST["level"]
ROWS = CFG.window_rows[LEVEL]
MEMORY = 1 << 20


class StreamedTB(SamplerTB):
    def __init__(self, dut, seed: int):
        Harness.__init__(
            self,
            dut,
            MANIFEST,
            seed,
            idle=("points__valid", "partials__ready", "fwp__valid", "clear", "new_map"),
        )
        self.point = self.payload("points")
        self.partial = self.payload("partials")
        self.ram = AxiRamRead(AxiReadBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=MEMORY)
        self.refills = self.slows = 0
        self.reads = []  # (addr, beats) of every AR burst
        self.map_span = (0, 0)

    context = None  # (head, x0, y0, band trace) of the points in flight, for failures

    def check_beat(self, word: int, index: int, chunk: int, want, off_map: bool):
        try:
            super().check_beat(word, index, chunk, want, off_map)
        except AssertionError as error:
            head, x0, y0, trace = self.context
            lo = max(0, index - 6)
            where = ", ".join(
                f"{i}: head {head[i]} x0 {x0[i]} y0 {y0[i]}" for i in range(lo, index + 1)
            )
            events = [e for e in trace.events if e.index <= index][-4:]
            raise AssertionError(
                f"{error}\n  points {where}\n  last band events {events}"
            ) from None

    def pauses(self, p_ar: float, p_r: float):
        for channel, p in ((self.ram.ar_channel, p_ar), (self.ram.r_channel, p_r)):
            rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
            channel.set_pause_generator(iter(lambda r=rng, p=p: bool(r.random() < p), None))

    async def watch(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            self.refills += int(dut.refill.value)
            self.slows += int(dut.slow.value)
            if int(dut.axi__arvalid.value) and int(dut.axi__arready.value):
                addr, beats = int(dut.axi__araddr.value), int(dut.axi__arlen.value) + 1
                lo, hi = self.map_span
                if not (lo <= addr and addr + beats * (CFG.lanes * CFG.value_bits // 8) <= hi):
                    self.fail(f"read burst ({addr:#x}, {beats} beats) outside the map")

    async def new_map(self, values, height: int, width: int, base: int):
        dut = self.dut
        image = memory_layout(values, height, width)
        self.ram.write(base, image)
        self.map_span = (base, base + len(image))
        await FallingEdge(dut.clk)
        dut.width.value, dut.height.value, dut.base.value = width, height, base
        dut.new_map.value = 1
        await FallingEdge(dut.clk)
        dut.new_map.value = 0


def band_order(rng, points: dict, height: int, width: int) -> np.ndarray:
    """A permutation: head by head (in random order, some heads twice), rows rising with
    jitter of about a row, and a shuffled stretch of 5% anywhere."""
    n = len(points["prob"])
    _, y0 = corner_rows(points["ref"], points["off"], CFG.coord_frac_bits)
    heads = points["head"]
    key = np.empty(n)
    rank = rng.permutation(CFG.heads)
    key = rank[heads] * 4.0 * (height + 8) + np.clip(y0, -4, height + 4) + rng.normal(0, 1.0, n)
    order = np.argsort(key, kind="stable")
    stretch = int(rng.integers(0, max(1, n - n // 20)))
    span = order[stretch : stretch + n // 20].copy()
    rng.shuffle(span)
    order[stretch : stretch + n // 20] = span
    return order


async def run_phase(tb: StreamedTB, height: int, width: int, n: int, base: int):
    dut = tb.dut
    rng = tb.rng
    values = rng.integers(
        -(1 << (CFG.value_bits - 1)),
        1 << (CFG.value_bits - 1),
        (height * width, CFG.heads, CFG.head_dim),
    )
    await tb.new_map(values, height, width, base)
    raw = make_points(rng, n, height, width)
    order = band_order(rng, raw, height, width)
    points = {k: v[order] for k, v in raw.items()}
    x0, y0 = corner_rows(points["ref"], points["off"], CFG.coord_frac_bits)
    model = band_trace(ROWS, height, width, points["head"], x0, y0, reach=CFG.band_reach(LEVEL))
    tb.context = (points["head"], x0, y0, model)
    tb.refills = tb.slows = 0
    gap, stall = (float(v) for v in rng.choice([0.0, 0.1, 0.5], 2))
    dut._log.info(
        f"phase {height}x{width} at {base:#x}: {n} points, gap {gap}, stall {stall}; model: "
        f"{model.rows_fetched} rows fetched, {model.slow_points} slow points"
    )
    await tb.stream_points(
        points, expected_beats(values, height, width, points), gap=gap, stall=stall
    )
    for _ in range(4):
        await FallingEdge(dut.clk)
    got = (tb.refills, tb.slows)
    want = (model.rows_fetched, model.slow_points)
    if got != want:
        tb.fail(f"(rows fetched, slow points) {got}, the band model says {want}")


@cocotb.test()
async def random_stream(dut):
    """Maps taller than the band (largest, random), exactly as tall, smaller (1x1, odd);
    random pauses on AR and R, gaps and backpressure on the streams."""
    tb = StreamedTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    cocotb.start_soon(tb.watch())
    tb.pauses(0.3, 0.2)
    total = int(os.environ.get("DEFA_POINTS", "3000"))
    max_h, max_w = CFG.max_shapes[LEVEL]
    shapes = [
        (max_h, max_w),
        (ROWS, max(1, max_w // 2)),
        (1, 1),
        (max(1, ROWS - 1) | 1, max(1, (max_w - 1) | 1)),
        (int(tb.rng.integers(ROWS + 1, max_h + 1)), int(tb.rng.integers(1, max_w + 1))),
    ]
    per_phase = -(-total // len(shapes))
    word_bytes = CFG.lanes * CFG.value_bits // 8
    for height, width in shapes:
        base = int(tb.rng.integers(0, MEMORY // 2 // word_bytes)) * word_bytes
        await run_phase(tb, height, width, per_phase, base)
