"""cocotb regression of the maps-in-memory top (``defa_top`` of a config with ``window_rows``):
whole runs through its command interface, with maps, jobs and outputs in cocotbext-axi's
``AxiRam`` (on ``io``) and ``AxiRamRead`` (on ``maps``, the same memory), random pauses on
every AXI channel.

Environment: ``DEFA_MANIFEST``; ``DEFA_QUERIES`` (queries per run, default 24).

Each run: ``fpga.host.MemoryRun`` lays out the maps, the jobs in band order and the output
slots at a random base with random gaps; the registers are written, ``CONTROL`` bit 1 starts
it, the test waits for ``irq`` or ``STATUS.done`` (bounded: a hang fails). Every output slot
is compared with ``sim.bittrue.core``, the counters with the model's statistics and
``sim.band``. CSR misuse (start while busy, writes while busy, unaligned bases, shapes of 0 or
beyond ``max_shapes``, regions past the address range, too many queries, a tag beyond
``QUERIES``) and memory errors (jobs or outputs where the memory answers SLVERR) must give
their ``ERROR`` bit and a defined end: ``done``, nothing run or the run unharmed.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiBus, AxiRam, AxiRamRead, AxiReadBus

from fpga.host import MemoryRun, band_order
from tb import core_model
from tb.harness import Harness, load_manifest

MANIFEST, CFG = load_manifest()
RUN = MemoryRun(MANIFEST)
MEMORY = 1 << CFG.addr_bits
#: ``io`` answers SLVERR from here on (the memory-error cases)
FAULTY = 1 << (CFG.addr_bits - 1)
PATIENCE = 2_000_000  # cycles a run may take before it counts as a hang


def _faulty(access):
    """A memory access that fails (the model answers SLVERR) at or beyond ``FAULTY``."""

    async def checked(address, *args):
        if address >= FAULTY:
            raise ValueError(f"no memory at 0x{address:x}")
        return await access(address, *args)

    return checked


class TopTB(Harness):
    def __init__(self, dut, seed: int):
        super().__init__(dut, MANIFEST, seed, idle=("fwp__valid", "csr__w_stb", "csr__r_stb"))
        self.io = AxiRam(AxiBus.from_prefix(dut, "io_"), dut.clk, dut.rst, size=MEMORY)
        self.maps = AxiRamRead(
            AxiReadBus.from_prefix(dut, "maps_"), dut.clk, dut.rst, size=MEMORY, mem=self.io.mem
        )
        for port, name in ((self.io.read_if, "_read"), (self.io.write_if, "_write")):
            setattr(port, name, _faulty(getattr(port, name)))
        channels = (
            self.io.read_if.ar_channel,
            self.io.read_if.r_channel,
            self.io.write_if.aw_channel,
            self.io.write_if.w_channel,
            self.io.write_if.b_channel,
            self.maps.ar_channel,
            self.maps.r_channel,
        )
        for channel in channels:
            rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
            p = float(rng.choice([0.0, 0.2, 0.5]))
            channel.set_pause_generator(iter(lambda r=rng, p=p: bool(r.random() < p), None))

    async def start(self):
        self.dut.fwp_result__ready.value = 1
        await super().start()

    async def wait_done(self, *, irq: bool) -> int:
        """Cycles until the run is done (``irq`` or ``STATUS`` polled); a hang fails."""
        dut = self.dut
        for cycle in range(0, PATIENCE, 1 if irq else 16):
            if irq:
                await FallingEdge(dut.clk)
                await ReadOnly()
                if int(dut.irq.value):
                    return cycle
            elif await self.read("STATUS") & 2:
                return cycle
        self.fail(f"hang: no done after {PATIENCE} cycles")

    async def errors(self) -> list[str]:
        return RUN.error_names(await self.read("ERROR"))

    async def expect_errors(self, want: set[str], what: str):
        status, got = await self.read("STATUS"), set(await self.errors())
        if got != want or status != (2 | (4 if want else 0)):
            self.fail(f"{what}: STATUS {status:#x}, ERROR {sorted(got)}, want {sorted(want)}")

    def place(self, qc, tau_p: int, pixel_mask=None):
        """A run's plan at a random base with random gaps, written into the memory, and the
        slots cleared to a marker (a slot left unwritten shows). With FWP's ``pixel_mask`` the
        maps' span holds random bytes first: only the kept pixels are stored."""
        word = RUN.word_bytes
        gaps = [int(g) * word for g in self.rng.integers(0, 64, len(qc.shapes) + 1)]
        base = int(self.rng.integers(0, 1 << 14)) * word
        plan = RUN.plan(qc, base=base, gaps=gaps, pixel_mask=pixel_mask)
        if pixel_mask is not None:
            span = plan.registers["JOBS_BASE"] - base
            self.io.write(base, self.rng.integers(0, 256, span, dtype=np.uint8).tobytes())
        for addr, image in plan.regions:
            self.io.write(addr, image)
        self.io.write(plan.out_base, b"\xa5" * (plan.queries * CFG.heads * RUN.out_bytes))
        plan.registers["TAU_P"] = tau_p
        return plan

    async def launch(self, registers: dict[str, int], *, irq: bool = False):
        """Write a run's registers, acknowledge the last run, clear the counters, start."""
        for name, value in registers.items():
            await self.write(name, value)
        await self.write("CONTROL", 4 | 1)
        await self.write("IRQ_ENABLE", int(irq))
        await self.write("CONTROL", 2)

    def slots(self, plan) -> bytes:
        """The bytes of a plan's output slots, as the memory holds them."""
        return self.io.read(plan.out_base, plan.queries * CFG.heads * RUN.out_bytes)

    async def run(self, qc, tau_p: int, *, irq: bool = False, misuse=None, pixel_mask=None) -> dict:
        """One run through the registers; ``misuse(plan)`` (a coroutine) runs once it started;
        ``pixel_mask``: FWP's, as the accelerator holds it (masked pixels not stored).
        Returns the outputs read back and the plan."""
        plan = self.place(qc, tau_p, pixel_mask)
        await self.launch(plan.registers, irq=irq)
        if misuse is not None:
            await misuse(plan)
        cycles = await self.wait_done(irq=irq)
        return {"plan": plan, "cycles": cycles, "out": RUN.outputs(self.slots(plan), plan.queries)}

    def check_outputs(self, qc, tau_p: int, out, what: str, pixel_mask=None):
        want = core_model.expected(CFG, qc, tau_p, pixel_mask).out
        if not np.array_equal(out, want):
            bad = np.argwhere(out != want)[0]
            q, h = int(bad[0]), int(bad[1])
            self.fail(
                f"{what}: query {q} head {h}: got {out[q, h].tolist()}, want {want[q, h].tolist()}"
            )

    async def check_counters(self, qc, tau_p: int, what: str, pixel_mask=None):
        """The counters against the models; ``BEATS_READ``: the kept pixels' beats of the
        rows and slow paths fetched (FWP's masked pixels are not read)."""
        want = core_model.expected(CFG, qc, tau_p, pixel_mask)
        order = band_order(qc.ref_w, CFG.heads)
        band = core_model.band_counts(CFG, qc, tau_p, order, pixel_mask)
        jobs = qc.probs.shape[0] * CFG.heads
        expect = {
            "JOBS_IN": jobs,
            "JOBS_OUT": jobs,
            "POINTS_KEPT": want.points_kept,
            "POINTS_PRUNED": want.points_pruned,
            "OFF_MAP": want.points_off_map,
            "BEATS_READ": band["beats_read"],
        }
        for level, (rows, slow) in enumerate(band["per_level"]):
            expect[f"ROWS_FETCHED{level}"] = rows
            expect[f"SLOW_POINTS{level}"] = slow
        got = {name: await self.read(name) for name in expect}
        if got != expect:
            self.fail(f"{what}: counters {got}, want {expect}")


def _workload(tb: TopTB, queries: int, *, spread: float = 2.0):
    return core_model.random_quantized(CFG, tb.rng, queries, logit_spread=spread)


@cocotb.test()
async def runs(dut):
    """Runs over PAP, dense and all-pruned phases on random shapes: every slot bit-exact,
    counters against the models, the interrupt and its acknowledge."""
    tb = TopTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    queries = int(os.environ.get("DEFA_QUERIES", "24"))
    all_pruned = (1 << (CFG.prob_bits + 1)) - 1
    for i, tau in enumerate((CFG.tau_p_q, 0, all_pruned, CFG.tau_p_q)):
        qc = _workload(tb, queries, spread=4.0 if i == 3 else 2.0)
        result = await tb.run(qc, tau, irq=i % 2 == 0)
        dut._log.info(
            f"run {i}: tau_p {tau}, shapes {qc.shapes.tolist()}, {result['cycles']} cycles"
        )
        await tb.expect_errors(set(), f"run {i}")
        tb.check_outputs(qc, tau, result["out"], f"run {i}")
        await tb.check_counters(qc, tau, f"run {i}")
        if i % 2 == 0:  # the interrupt follows done until the acknowledge
            await FallingEdge(dut.clk)
            if not int(dut.irq.value):
                tb.fail(f"run {i}: irq low while done")
            await tb.write("CONTROL", 4)
            await FallingEdge(dut.clk)
            await FallingEdge(dut.clk)
            if int(dut.irq.value) or await tb.read("STATUS") != 0:
                tb.fail(f"run {i}: irq or STATUS.done still set after the acknowledge")


@cocotb.test()
async def masked(dut):
    """FWP masks pixels (MASK commands): a random part of every level's pixels, then every
    pixel. Masked pixels are neither stored (the host writes only the kept ones over random
    bytes) nor read from memory (``BEATS_READ`` counts the kept pixels of the rows fetched,
    as ``sim.band`` does), and read as zero: every slot as the bit-true model with that pixel
    mask says (all zeros when every pixel is masked); after CLEAR the next run is whole
    again."""
    tb = TopTB(dut, cocotb.RANDOM_SEED + 2)
    await tb.start()
    await tb.fwp_command("CLEAR")
    queries = 8
    for fraction in (0.4, 1.0):
        qc = _workload(tb, queries)
        mask = []
        for level, (h, w) in enumerate(qc.shapes):
            masked = tb.rng.random((int(h), int(w))) < fraction
            mask.append(~masked.ravel())
            for y, x in zip(*np.nonzero(masked), strict=True):
                await tb.fwp_command("MASK", level=level, x=int(x), y=int(y), keep=0)
        keep = np.concatenate(mask)
        result = await tb.run(qc, CFG.tau_p_q, pixel_mask=keep)
        what = f"{fraction:.0%} masked"
        await tb.expect_errors(set(), what)
        tb.check_outputs(qc, CFG.tau_p_q, result["out"], what, pixel_mask=keep)
        await tb.check_counters(qc, CFG.tau_p_q, what, pixel_mask=keep)
        if fraction == 1.0 and result["out"].any():
            tb.fail(f"all masked: got {result['out'][0, 0].tolist()}, want zeros")
        await tb.fwp_command("CLEAR")
    qc = _workload(tb, queries)
    result = await tb.run(qc, CFG.tau_p_q)
    tb.check_outputs(qc, CFG.tau_p_q, result["out"], "the run after CLEAR")
    await tb.check_counters(qc, CFG.tau_p_q, "the run after CLEAR")


@cocotb.test()
async def misuse(dut):
    """CSR misuse: each gives its ERROR bit and a defined end, never a hang; a good run after
    each refused one still comes out bit-exact."""
    tb = TopTB(dut, cocotb.RANDOM_SEED + 1)
    await tb.start()
    queries = 6
    word = RUN.word_bytes

    # Start and register writes while busy: refused, flagged, the run unharmed.
    qc = _workload(tb, queries)

    async def meddle(plan):
        await tb.write("CONTROL", 2)
        await tb.write("JOBS_BASE", plan.registers["JOBS_BASE"] + 64 * word)
        await tb.write("SHAPE0", 1 << 16 | 1)
        if await tb.read("JOBS_BASE") != plan.registers["JOBS_BASE"]:
            tb.fail("JOBS_BASE changed while a run was busy")

    result = await tb.run(qc, CFG.tau_p_q, misuse=meddle)
    await tb.expect_errors({"START_BUSY", "WRITE_BUSY"}, "start and writes while busy")
    tb.check_outputs(qc, CFG.tau_p_q, result["out"], "the run that was meddled with")

    # Refused before anything runs: the slots stay as they were, no job taken.
    refusals = [
        ("UNALIGNED", {"JOBS_BASE": lambda v: v + 1}),
        ("UNALIGNED", {"MAP_BASE0": lambda v: v + word // 2 if word > 1 else v}),
        ("SHAPE", {"SHAPE0": lambda v: 0}),
        ("SHAPE", {f"SHAPE{CFG.levels - 1}": lambda v: (CFG.max_shapes[-1][0] + 1) << 16 | 1}),
        ("RANGE", {"JOB_COUNT": lambda v: 0xFFFF_FFFF}),
        ("RANGE", {"OUT_BASE": lambda v: (1 << CFG.addr_bits) - word}),
        ("QUERIES", {"QUERIES": lambda v: (1 << MANIFEST["tag_bits"]) + 1}),
    ]
    for error, changes in refusals:
        if error == "UNALIGNED" and word == 1:
            continue
        plan = tb.place(qc, CFG.tau_p_q)
        registers = dict(plan.registers)
        for name, change in changes.items():
            registers[name] = change(registers[name])
        await tb.launch(registers)
        await tb.wait_done(irq=False)
        await tb.expect_errors({error}, f"refused run ({error}: {sorted(changes)})")
        if await tb.read("JOBS_IN") != 0:
            tb.fail(f"refused run ({error}) took jobs")
        raw = tb.slots(plan)
        if raw != b"\xa5" * len(raw):
            tb.fail(f"refused run ({error}) wrote outputs")

    # A tag at or beyond QUERIES: that query's slots are not written, the rest are.
    qc = _workload(tb, queries)
    plan = tb.place(qc, CFG.tau_p_q)
    plan.registers["QUERIES"] = queries - 1
    await tb.launch(plan.registers)
    await tb.wait_done(irq=False)
    await tb.expect_errors({"TAG"}, "a tag beyond QUERIES")
    raw = tb.slots(plan)
    out = RUN.outputs(raw, queries)
    want = core_model.expected(CFG, qc, CFG.tau_p_q).out
    if not np.array_equal(out[:-1], want[:-1]):
        tb.fail("the queries below QUERIES were not all written right")
    if raw[(queries - 1) * CFG.heads * RUN.out_bytes :] != b"\xa5" * (CFG.heads * RUN.out_bytes):
        tb.fail("the query at QUERIES was written")

    # Memory errors: jobs read from where no memory answers (SLVERR, read as zeros: every
    # job query 0, head 0), outputs written there: the error bit, a defined end.
    for error, register in (("READ", "JOBS_BASE"), ("WRITE", "OUT_BASE")):
        qc = _workload(tb, queries)
        plan = tb.place(qc, CFG.tau_p_q)
        plan.registers[register] = FAULTY
        await tb.launch(plan.registers)
        await tb.wait_done(irq=False)
        await tb.expect_errors({error}, f"{register} where no memory answers")
        if await tb.read("JOBS_OUT") != queries * CFG.heads:
            tb.fail(f"{register} where no memory answers: not every job ran")

    # And a clean run after all that.
    qc = _workload(tb, queries)
    result = await tb.run(qc, CFG.tau_p_q)
    await tb.expect_errors(set(), "the run after the refusals")
    tb.check_outputs(qc, CFG.tau_p_q, result["out"], "the run after the refusals")
