"""cocotb regression of the generated sampler (``defa_sampler``) against the bit-true model.

Environment: ``DEFA_MANIFEST`` (the manifest JSON written with the Verilog), ``DEFA_POINTS``
(points in the random test, default 10000), ``DEFA_RESULTS`` (where the throughput test writes
its figures). Randomness comes from ``cocotb.RANDOM_SEED``; every failure message names it.

Driver, model and checker are kept apart: ``make_points`` draws stimulus, ``expected_beats``
asks ``sim.bittrue`` what must come out, ``SamplerTB.stream_points`` drives the DUT cycle by
cycle (valid gaps and ready backpressure at chosen rates) and compares every output beat.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from sim import bittrue
from tb.harness import Harness, load_manifest

MANIFEST, CFG = load_manifest()
LEVEL = MANIFEST["level"]
CHUNKS = CFG.cycles_per_point
TAG_MASK = (1 << MANIFEST["ports"]["points"]["fields"]["tag"]["width"]) - 1


def make_points(rng: np.random.Generator, n: int, height: int, width: int) -> dict[str, np.ndarray]:
    """Points as the hardware receives them, mixing ordinary samples with the edge cases:
    far off the map, straddling its edges, exactly on pixel borders, zero and full probability,
    saturated offsets and probability words above 1.0."""
    f = CFG.coord_frac_bits
    one, half = 1 << f, 1 << (f - 1)
    ref = np.stack(
        [rng.integers(0, (width << f) + 1, n), rng.integers(0, (height << f) + 1, n)], -1
    )
    off = np.round(rng.normal(0, 2.0, (n, 2)) * one).astype(np.int64)
    prob = rng.integers(0, CFG.prob_one + 1, n)
    kind = rng.integers(0, 8, n)
    sizes = np.array([width, height])
    # 1: far off the map
    far = kind == 1
    off[far] = (
        rng.choice([-1, 1], (far.sum(), 2)) * rng.integers(sizes + 1, 2 * sizes + 3, (far.sum(), 2))
    ) * one
    # 2: straddling an edge: px in [-1, 0] or [size-1, size]
    edge = kind == 2
    low = rng.random((edge.sum(), 2)) < 0.5
    target = np.where(
        low,
        rng.integers(-one, 1, (edge.sum(), 2)),
        (sizes - 1) * one + rng.integers(0, one + 1, (edge.sum(), 2)),
    )
    off[edge] = target - ref[edge] + half
    # 3: exactly on pixel borders (fractions 0), anywhere from -1 to size
    border = kind == 3
    corner = rng.integers(-1, sizes + 1, (border.sum(), 2))
    off[border] = corner * one - ref[border] + half
    # 4: zero probability; 5: full probability; 6: probability words above 1.0
    prob[kind == 4] = 0
    prob[kind == 5] = CFG.prob_one
    over = kind == 6
    prob[over] = rng.integers(CFG.prob_one, 1 << (CFG.prob_bits + 1), over.sum())
    # 7: saturated offsets
    sat = kind == 7
    off[sat] = rng.choice([CFG.offset_min, CFG.offset_max], (sat.sum(), 2))
    off = np.clip(off, CFG.offset_min, CFG.offset_max)
    head = rng.integers(0, CFG.heads, n)
    return {"ref": ref, "off": off, "prob": prob, "head": head}


def expected_beats(values: np.ndarray, height: int, width: int, points: dict):
    """(N, chunks, lanes) partials the sampler must emit and (N,) off-map flags, from the
    bit-true model."""
    partials = bittrue.sample_points(
        CFG, values, height, width, points["ref"], points["off"], points["prob"], points["head"]
    )
    keep = np.ones(len(points["prob"]), bool)
    _, _, valid = bittrue.corner_samples(
        CFG, height, width, points["ref"], points["off"], points["prob"], keep
    )
    return partials.reshape(-1, CHUNKS, CFG.lanes), ~valid.any(-1)


class SamplerTB(Harness):
    """Owns the clock, reset and the three streams of one ``defa_sampler`` instance."""

    def __init__(self, dut, seed: int):
        super().__init__(
            dut,
            MANIFEST,
            seed,
            idle=(
                "points__valid",
                "load__valid",
                "partials__ready",
                "partials_ready_slices",
                "fwp__valid",
            ),
        )
        self.point = self.payload("points")
        self.partial = self.payload("partials")
        self.load_word = self.payload("load")

    async def load_map(self, values: np.ndarray, height: int, width: int, gap: float = 0.2):
        """Write a (H*W, M, Dh) map through the load stream, in random order, with gaps."""
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.width.value = width
        dut.height.value = height
        words = [
            (y, x, h, c)
            for y in range(height)
            for x in range(width)
            for h in range(CFG.heads)
            for c in range(CHUNKS)
        ]
        order = self.rng.permutation(len(words))
        lanes = CFG.lanes
        for i in order:
            y, x, h, c = words[i]
            while self.rng.random() < gap:
                await FallingEdge(dut.clk)
                dut.load__valid.value = 0
            await FallingEdge(dut.clk)
            chunk = values[y * width + x, h, c * lanes : (c + 1) * lanes]
            dut.load__payload.value = self.load_word.pack(
                {"x": x, "y": y, "head": h, "chunk": c, **self.load_word.pack_array("data", chunk)}
            )
            dut.load__valid.value = 1
            await ReadOnly()
            if not dut.load__ready.value:
                self.fail("load stream not ready")
        await FallingEdge(dut.clk)
        dut.load__valid.value = 0

    async def stream_points(self, points, model, *, gap=0.0, stall=0.0, reset_at=None, timing=None):
        """Send every point, check every beat in order. ``reset_at``: pulse reset after that
        many cycles (points in flight are dropped; the unaccepted one is sent again)."""
        partials, off_map = model
        n = len(points["prob"])
        words = [
            self.point.pack(
                {
                    "ref_x": int(points["ref"][i, 0]),
                    "ref_y": int(points["ref"][i, 1]),
                    "off_x": int(points["off"][i, 0]),
                    "off_y": int(points["off"][i, 1]),
                    "prob": int(points["prob"][i]),
                    "head": int(points["head"][i]),
                    "tag": i & TAG_MASK,
                }
            )
            for i in range(n)
        ]
        await self.stream(
            words,
            source="points",
            sink="partials",
            beats=CHUNKS,
            on_beat=lambda word, i, c: self.check_beat(word, i, c, partials[i, c], off_map[i]),
            gap=gap,
            stall=stall,
            reset_at=reset_at,
            timing=timing,
        )

    def check_beat(self, word: int, index: int, chunk: int, want: np.ndarray, off_map: bool):
        got = {
            "tag": self.partial.unpack(word, "tag"),
            "chunk": self.partial.unpack(word, "chunk"),
            "last": self.partial.unpack(word, "last"),
            "off_map": self.partial.unpack(word, "off_map"),
            "lanes": self.partial.unpack_array(word, "lanes"),
        }
        wanted = {
            "tag": index & TAG_MASK,
            "chunk": chunk if CHUNKS > 1 else 0,
            "last": int(chunk == CHUNKS - 1),
            "off_map": int(off_map),
            "lanes": [int(v) for v in want],
        }
        if got != wanted:
            self.fail(f"point {index} chunk {chunk}: got {got}, want {wanted}")


def _random_values(rng, height, width):
    return rng.integers(
        -(1 << (CFG.value_bits - 1)),
        1 << (CFG.value_bits - 1),
        (height * width, CFG.heads, CFG.head_dim),
    )


def _phases(rng):
    """Map shapes to run: the largest the buffer holds, 1x1, odd and random ones."""
    max_h, max_w = CFG.max_shapes[LEVEL]
    shapes = [(max_h, max_w), (1, 1), (max_h | 1 if max_h > 1 else 1, max(1, (max_w - 1) | 1))]
    shapes += [(int(rng.integers(1, max_h + 1)), int(rng.integers(1, max_w + 1))) for _ in range(3)]
    return shapes


@cocotb.test()
async def random_stream(dut):
    """>= DEFA_POINTS random points over several map shapes, random gaps and backpressure."""
    tb = SamplerTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    total = int(os.environ.get("DEFA_POINTS", "10000"))
    shapes = _phases(tb.rng)
    per_phase = -(-total // len(shapes))
    for height, width in shapes:
        values = _random_values(tb.rng, height, width)
        await tb.load_map(values, height, width)
        points = make_points(tb.rng, per_phase, height, width)
        gap, stall = (float(v) for v in tb.rng.choice([0.0, 0.1, 0.5], 2))
        dut._log.info(f"phase {height}x{width}: {per_phase} points, gap {gap}, stall {stall}")
        await tb.stream_points(
            points, expected_beats(values, height, width, points), gap=gap, stall=stall
        )


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset while points are in flight: nothing from before the reset comes out, the rest
    is exact; the buffer keeps its map across the reset."""
    tb = SamplerTB(dut, cocotb.RANDOM_SEED + 1)
    await tb.start()
    height, width = CFG.max_shapes[LEVEL]
    values = _random_values(tb.rng, height, width)
    await tb.load_map(values, height, width)
    for reset_at in (3, 17, 40):
        points = make_points(tb.rng, 200, height, width)
        expected = expected_beats(values, height, width, points)
        await tb.stream_points(points, expected, gap=0.3, stall=0.3, reset_at=reset_at)


@cocotb.test()
async def throughput(dut):
    """No gaps, no backpressure: cycles per point in steady state and latency."""
    tb = SamplerTB(dut, cocotb.RANDOM_SEED + 2)
    await tb.start()
    height, width = CFG.max_shapes[LEVEL]
    values = _random_values(tb.rng, height, width)
    await tb.load_map(values, height, width, gap=0.0)
    n = int(os.environ.get("DEFA_THROUGHPUT_POINTS", "2000"))
    points = make_points(tb.rng, n, height, width)
    timing: dict[str, int] = {}
    cycles0, t0 = tb.cycles, time.perf_counter()
    await tb.stream_points(points, expected_beats(values, height, width, points), timing=timing)
    wall = time.perf_counter() - t0
    result = {
        "points": n,
        "cycles_per_point": (timing["last_out"] - timing["first_out"] + 1) / n,
        "latency": timing["first_item_done"] - timing["first_in"],
        "cycles": tb.cycles - cycles0,
        "wall_s": wall,
        "cycles_per_s": (tb.cycles - cycles0) / wall,
    }
    dut._log.info(f"throughput: {result}")
    if os.environ.get("DEFA_RESULTS"):
        Path(os.environ["DEFA_RESULTS"]).write_text(json.dumps(result))
    if result["latency"] != MANIFEST["latency"]:
        tb.fail(f"latency {result['latency']} != manifest latency {MANIFEST['latency']}")
