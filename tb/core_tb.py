"""cocotb regression of the generated core (``defa_core``) against the bit-true model.

Environment: ``DEFA_MANIFEST``; ``DEFA_JOBS`` (jobs in the random test, default 2000);
``DEFA_RESULTS`` (where ``measure`` writes its figures); ``DEFA_WORKLOAD`` (a workload file
for ``measure``; default: a random one) and ``DEFA_TAU_P`` (its threshold, probability units);
``DEFA_FWP_READ`` (the fraction of pixels ``fwp_layers`` reads back after each layer, a seeded
random choice that always has each level's first and last pixel; default 1: every pixel);
with the maps in memory, ``DEFA_AXI_PAUSES`` (``p_ar,p_r``: the memory model's pause rates
on AR and R, default ``0.3,0.2``).

Every output (tag, head, all channels) is compared with ``sim.bittrue.core``; the counters
(jobs, kept, pruned, off-map points, masked pixels and loads) with the model's statistics, and
the FWP importance counters and mask bits (read back with READ) with the model's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiRamRead, AxiReadBus

from fpga.host import job_fields, map_images
from sim import bittrue
from sim import workload as wl
from tb import core_model
from tb.harness import Harness, load_manifest

MANIFEST, CFG = load_manifest()
TAG_MASK = (1 << MANIFEST["tag_bits"]) - 1
#: the maps live in external memory (cocotbext-axi's AxiRamRead), read by the band windows
STREAMED = CFG.streamed
MEMORY = 1 << 22


class CoreTB(Harness):
    def __init__(self, dut, seed: int):
        super().__init__(
            dut,
            MANIFEST,
            seed,
            idle=(
                "jobs__valid",
                "new_maps" if STREAMED else "load__valid",
                "outputs__ready",
                "clear",
                "fwp__valid",
            ),
        )
        self.job = self.payload("jobs")
        self.output = self.payload("outputs")
        #: the jobs' order: "query" (query-major) or "band" (head-major passes, raster)
        self.order_kind = "band" if STREAMED else "query"
        self.order = None  # the last stream's (query, head) jobs, in order
        self.band = None  # the band model's counts for the last stream
        if STREAMED:
            self.ram = AxiRamRead(
                AxiReadBus.from_prefix(dut, "axi_"), dut.clk, dut.rst, size=MEMORY
            )
            p_ar, p_r = (float(v) for v in os.environ.get("DEFA_AXI_PAUSES", "0.3,0.2").split(","))
            for channel, p in ((self.ram.ar_channel, p_ar), (self.ram.r_channel, p_r)):
                rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
                channel.set_pause_generator(iter(lambda r=rng, p=p: bool(r.random() < p), None))
        else:
            self.load_word = self.payload("load")

    async def start(self):
        """Clock, reset, then CLEAR: FWP memories keep what earlier tests left in them."""
        await super().start()
        await self.fwp_command("CLEAR")

    async def configure(self, qc, tau_p: int, tau_f: int = CFG.tau_f_q):
        """Level shapes, tau_p and tau_f CSRs, then every map word through the load stream."""
        dut = self.dut
        await FallingEdge(dut.clk)
        widths = self.manifest["ports"]["widths"]["fields"]
        dut.widths.value = sum(
            int(w) << widths[str(i)]["offset"] for i, (_, w) in enumerate(qc.shapes)
        )
        dut.heights.value = sum(
            int(h) << widths[str(i)]["offset"] for i, (h, _) in enumerate(qc.shapes)
        )
        dut.tau_p.value = tau_p
        dut.tau_f.value = tau_f
        self._tau_p = tau_p
        if STREAMED:
            await self._store_maps(qc)
            return
        for level, x, y, head, chunk, words in core_model.load_words(CFG, qc):
            await FallingEdge(dut.clk)
            dut.load__payload.value = self.load_word.pack(
                {
                    "level": level,
                    "x": x,
                    "y": y,
                    "head": head,
                    "chunk": chunk,
                    **self.load_word.pack_array("data", words),
                }
            )
            dut.load__valid.value = 1
        await FallingEdge(dut.clk)
        dut.load__valid.value = 0

    async def _store_maps(self, qc):
        """Every level's map into the memory, at random word-aligned bases one after the
        other (random gaps), the bases to their CSRs, then ``new_maps``."""
        dut = self.dut
        word_bytes = CFG.lanes * CFG.value_bits // 8
        fields = self.manifest["ports"]["bases"]["fields"]
        addr, bases = int(self.rng.integers(0, 4096 // word_bytes)) * word_bytes, 0
        for level, image in enumerate(map_images(qc)):
            self.ram.write(addr, image)
            bases |= addr << fields[str(level)]["offset"]
            addr += -(-len(image) // word_bytes) * word_bytes
            addr += int(self.rng.integers(0, 64)) * word_bytes
        if addr > MEMORY:
            self.fail(f"the maps take {addr} bytes, the memory model holds {MEMORY}")
        dut.bases.value = bases
        dut.new_maps.value = 1
        await FallingEdge(dut.clk)
        dut.new_maps.value = 0

    async def clear_counters(self):
        await FallingEdge(self.dut.clk)
        self.dut.clear.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.clear.value = 0

    async def counters(self) -> dict[str, int]:
        """The counters once every event so far has reached them (``counter_lag`` cycles,
        and with the maps in memory once the memory side is idle); ``cycles`` as it stands
        now."""
        dut = self.dut
        cycles = dut.cycles.value
        if STREAMED:  # rows still being fetched ahead count when they arrive
            for _ in range(100_000):
                await ReadOnly()
                if int(dut.mem_idle.value):
                    break
                await FallingEdge(dut.clk)
            else:
                self.fail("hang: the memory side not idle after 100000 cycles")
            await FallingEdge(dut.clk)
        for _ in range(self.manifest["counter_lag"]):
            await FallingEdge(dut.clk)
        names = (
            "cycles",
            "jobs_in",
            "jobs_out",
            "points_kept",
            "points_pruned",
            "off_map",
            "pixels_masked",
            "loads_masked",
        )
        if STREAMED:
            names += ("beats_read",)
        per_level = ("busy", "stall")
        if STREAMED:
            per_level += ("rows_fetched", "slow_points", "memory_wait")
        for n in (*names, *per_level):
            if not getattr(dut, n).value.is_resolvable:
                self.fail(f"counter {n} is not 0/1: {getattr(dut, n).value}")
        result = {n: getattr(dut, n).value.to_unsigned() for n in names}
        result["cycles"] = cycles.to_unsigned()
        for name in per_level:
            word = getattr(dut, name).value.to_unsigned()
            bits = self.manifest["counter_bits"]
            result[name] = [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(CFG.levels)]
        return result

    async def stream_jobs(self, qc, want, *, gap=0.0, stall=0.0, reset_at=None, pixel_mask=None):
        """Send every job of ``qc``, compare every output with ``want`` (a BitTrueResult).
        Returns the counters as they stand after the last output (``cycles`` counts the clock
        edges from the counter clear up to and including the one that took the last output)."""
        dut = self.dut
        order = core_model.job_order(qc, self.order_kind)
        self.order = order
        if STREAMED:
            self.band = core_model.band_counts(CFG, qc, self._tau_p, order, pixel_mask)
        words = [self.job.pack(job_fields(qc, q, h, TAG_MASK)) for q, h in order]

        def check(word, index, _beat):
            q, h = order[index]
            got = (
                self.output.unpack(word, "tag"),
                self.output.unpack(word, "head"),
                self.output.unpack_array(word, "values"),
            )
            wanted = (q & TAG_MASK, h, [int(v) for v in want.out[q, h]])
            if got != wanted:
                self.fail(f"job {index} (query {q}, head {h}): got {got}, want {wanted}")

        await self.stream(
            words,
            source="jobs",
            sink="outputs",
            beats=1,
            on_beat=check,
            gap=gap,
            stall=stall,
            reset_at=reset_at,
            # a band window waits for memory: with bands much smaller than the points' reach
            # (the tests' maps), most kept points take the slow path
            patience=400 if STREAMED else 40,
        )
        # Counters after the clock edge that took the last output.
        await FallingEdge(dut.clk)
        dut.outputs__ready.value = 0
        return await self.counters()

    def check_counters(self, counters, want, jobs: int):
        expect = {
            "jobs_in": jobs,
            "jobs_out": jobs,
            "points_kept": want.points_kept,
            "points_pruned": want.points_pruned,
            "off_map": want.points_off_map,
        }
        if STREAMED:
            expect.update(
                rows_fetched=[rows for rows, _ in self.band["per_level"]],
                slow_points=[slow for _, slow in self.band["per_level"]],
                beats_read=self.band["beats_read"],
            )
        got = {k: counters[k] for k in expect}
        if got != expect:
            if os.environ.get("DEFA_DUMP"):
                import pickle

                pickle.dump(
                    (self._qc, self.order, self._tau_p), open(os.environ["DEFA_DUMP"], "wb")
                )
            self.fail(f"counters {got}, want {expect}")


def _phase_tau(kind: str) -> int:
    """The tau_p CSR value of a phase."""
    return {
        "dense": 0,
        "all": (1 << (CFG.prob_bits + 1)) - 1,  # above every probability: everything pruned
    }.get(kind, CFG.tau_p_q)


@cocotb.test()
async def random_jobs(dut):
    """DEFA_JOBS jobs over phases: PAP at the config's tau_p, dense, everything pruned and
    level-skewed attention; random shapes, gaps and backpressure; counters checked."""
    tb = CoreTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    total = int(os.environ.get("DEFA_JOBS", "2000"))
    phases = ["pap", "dense", "pap", "all", "pap"]
    queries = max(1, -(-total // (len(phases) * CFG.heads)))
    for i, kind in enumerate(phases):
        tau = _phase_tau(kind)
        spread = 4.0 if i == 4 else 2.0  # the last phase: peaky attention, many points pruned
        qc = core_model.random_quantized(CFG, tb.rng, queries, logit_spread=spread)
        want = core_model.expected(CFG, qc, tau)
        gap, stall = (float(v) for v in tb.rng.choice([0.0, 0.2, 0.6], 2))
        shapes = qc.shapes.tolist()
        dut._log.info(f"phase {kind}: {queries} queries, shapes {shapes}, gap {gap}, stall {stall}")
        await tb.configure(qc, tau)
        await tb.clear_counters()
        counters = await tb.stream_jobs(qc, want, gap=gap, stall=stall)
        tb.check_counters(counters, want, queries * CFG.heads)


def _pixels(shapes):
    """(level, x, y, index) of every pixel, index into the model's flat value map."""
    start = 0
    for level, (h, w) in enumerate(shapes):
        for y in range(int(h)):
            for x in range(int(w)):
                yield level, x, y, start + y * int(w) + x
        start += int(h * w)


def _read_back(tb, shapes):
    """The pixels ``fwp_layers`` reads back: all, or the ``DEFA_FWP_READ`` fraction of them
    (seeded by the test's generator; each level's first and last pixel always)."""
    fraction = float(os.environ.get("DEFA_FWP_READ", "1"))
    if not 0 < fraction <= 1:
        raise ValueError(f"DEFA_FWP_READ={fraction} is out of range: allowed (0, 1]")
    ends = {(0, 0)} | {(int(w) - 1, int(h) - 1) for h, w in shapes}
    for level, x, y, index in _pixels(shapes):
        if fraction == 1 or (x, y) in ends or tb.rng.random() < fraction:
            yield level, x, y, index


@cocotb.test()
async def fwp_layers(dut):
    """Consecutive layers on one token set with FWP, on the full buffers and on random shapes:
    each layer's importance counters (read back pixel by pixel) and outputs against the
    model; DERIVE's mask (read back, and the pixels_masked counter) against
    ``bittrue.fwp_mask``; the next layer loads through the mask (loads_masked counted) and
    reads masked pixels as 0. One layer takes a loaded random mask instead; tau_f varies, up
    to masking most pixels."""
    tb = CoreTB(dut, cocotb.RANDOM_SEED + 3)
    await tb.start()
    queries = max(1, int(os.environ.get("DEFA_FWP_QUERIES", "24")))
    one = 1 << CFG.tau_f_bits
    for shapes in (np.array(CFG.max_shapes), None):
        _, clear_cycles = await tb.fwp_command("CLEAR")  # again: the second set starts afresh
        keep = None
        for layer, tau_f in enumerate((CFG.tau_f_q, one // 2, one - 1, CFG.tau_f_q)):
            qc = core_model.random_quantized(CFG, tb.rng, queries, shapes=shapes)
            shapes = qc.shapes
            keep = await _fwp_layer(tb, qc, layer, tau_f, keep)
        dut._log.info(f"CLEAR took {clear_cycles} cycles")
        for level, x, y, index in _read_back(tb, shapes):  # after DERIVE: mask, counters 0
            got, _ = await tb.fwp_command("READ", level=level, x=x, y=y)
            if got != {"importance": 0, "keep": int(keep[index])}:
                tb.fail(f"after DERIVE: pixel ({x}, {y}) of level {level}: {got}, {keep[index]}")


async def _fwp_layer(tb: CoreTB, qc, layer: int, tau_f: int, keep):
    """One layer through the current mask (``keep``; None: all kept); returns the next."""
    nv = qc.value.shape[0]
    if keep is None:
        keep = np.ones(nv, dtype=bool)
    if layer == 2:  # a loaded mask instead of the derived one
        keep = tb.rng.random(nv) < 0.6
        for level, x, y, index in _pixels(qc.shapes):
            await tb.fwp_command("MASK", level=level, x=x, y=y, keep=int(keep[index]))
    want = bittrue.core(CFG, qc, tau_p_q=CFG.tau_p_q, pixel_mask=keep)
    await tb.clear_counters()
    await tb.configure(qc, CFG.tau_p_q, tau_f)
    gap, stall = (float(v) for v in tb.rng.choice([0.0, 0.3], 2))
    counters = await tb.stream_jobs(qc, want, gap=gap, stall=stall, pixel_mask=keep)
    tb.check_counters(counters, want, qc.queries * CFG.heads)
    words_per_pixel = CFG.heads * CFG.cycles_per_point
    masked_loads = 0 if STREAMED else int((~keep).sum()) * words_per_pixel
    if counters["loads_masked"] != masked_loads:
        tb.fail(f"layer {layer}: loads_masked {counters['loads_masked']}, mask {keep}")
    for level, x, y, index in _read_back(tb, qc.shapes):
        got, _ = await tb.fwp_command("READ", level=level, x=x, y=y)
        wanted = {"importance": int(want.importance[index]), "keep": int(keep[index])}
        if got != wanted:
            tb.fail(f"layer {layer}: pixel ({x}, {y}) of level {level}: {got}, want {wanted}")
    before = (await tb.counters())["pixels_masked"]
    _, derive_cycles = await tb.fwp_command("DERIVE")
    keep = bittrue.fwp_mask(CFG, want.importance, qc.shapes, tau_f)
    masked = (await tb.counters())["pixels_masked"] - before
    tb.dut._log.info(
        f"layer {layer}: shapes {qc.shapes.tolist()}, tau_f {tau_f}/{1 << CFG.tau_f_bits}, "
        f"{int((~keep).sum())}/{nv} pixels masked, DERIVE took {derive_cycles} cycles"
    )
    if masked != int((~keep).sum()):
        tb.fail(f"layer {layer}: pixels_masked {masked}, want {int((~keep).sum())}")
    return keep


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset with jobs in flight: nothing from before comes out; the rest is exact."""
    tb = CoreTB(dut, cocotb.RANDOM_SEED + 1)
    await tb.start()
    qc = core_model.random_quantized(CFG, tb.rng, 12)
    want = core_model.expected(CFG, qc, CFG.tau_p_q)
    await tb.configure(qc, CFG.tau_p_q)
    for reset_at in (5, 23):
        await tb.stream_jobs(qc, want, gap=0.3, stall=0.3, reset_at=reset_at)


@cocotb.test()
async def measure(dut):
    """No gaps, no backpressure: the cycle counters for one workload (for the cycle model
    and the benchmark), then FWP's DERIVE on its importance (mask checked against the model)."""
    tb = CoreTB(dut, cocotb.RANDOM_SEED + 2)
    await tb.start()
    if os.environ.get("DEFA_WORKLOAD"):
        qc = core_model.workload_quantized(CFG, wl.load(os.environ["DEFA_WORKLOAD"]))
    else:
        qc = core_model.random_quantized(CFG, tb.rng, 40)
    tau = int(os.environ.get("DEFA_TAU_P", str(CFG.tau_p_q)))
    tau_f = int(os.environ.get("DEFA_TAU_F", str(CFG.tau_f_q)))
    want = core_model.expected(CFG, qc, tau)
    await tb.configure(qc, tau, tau_f)
    await tb.clear_counters()
    counters = await tb.stream_jobs(qc, want)
    tb.check_counters(counters, want, qc.queries * CFG.heads)
    _, derive_cycles = await tb.fwp_command("DERIVE")
    masked = (await tb.counters())["pixels_masked"]
    want_masked = int((~bittrue.fwp_mask(CFG, want.importance, qc.shapes, tau_f)).sum())
    if masked != want_masked:
        tb.fail(f"DERIVE masked {masked} pixels, the model {want_masked}")
    counters.update(
        pixels_masked=masked, pixels=int(qc.value.shape[0]), derive_cycles=derive_cycles
    )
    if STREAMED and os.environ.get("DEFA_MASKED_LAYER") == "1":
        # the same jobs again through DERIVE's mask (the maps stored anew: the bands start
        # over): masked pixels are not fetched
        keep = bittrue.fwp_mask(CFG, want.importance, qc.shapes, tau_f)
        masked_want = core_model.expected(CFG, qc, tau, keep)
        await tb.configure(qc, tau, tau_f)
        await tb.clear_counters()
        again = await tb.stream_jobs(qc, masked_want, pixel_mask=keep)
        tb.check_counters(again, masked_want, qc.queries * CFG.heads)
        counters["masked_layer"] = again
    dut._log.info(f"measure: {counters}")
    if os.environ.get("DEFA_RESULTS"):
        Path(os.environ["DEFA_RESULTS"]).write_text(json.dumps(counters))
