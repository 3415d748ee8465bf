"""cocotb regression of the fused layer from memory (``defa_layer_top``): whole layers with the
projections' constants, the map and the queries in cocotbext-axi's ``AxiRam`` (random pauses on
every AXI channel), every query's output words bit-exact against ``sim.layer.layer`` (float
weights and inputs through calibration, PAP and the fused softmax; the second layer's map
masked by FWP's DERIVE over the first one's importance, so its masked pixels skip the value
projection).

Environment: ``DEFA_MANIFEST``; ``DEFA_QUERIES`` (decoder queries in the first run, default 6);
``DEFA_RESULTS`` (a JSON file: each layer's cycles from start to ``done`` beside the phases'
cycle models, ``sim.perf``); ``DEFA_AXI_FULL_SPEED=1``: no pauses (the models' memory).

The stream protocol checker watches the top's streams and, where the simulator shows the
hierarchy (Icarus; Verilator makes only the top's ports public), the fused layer's inner ones:
``x``, ``queries``, ``refs``, ``out`` and the core's ``load``, ``jobs``, ``outputs``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiBus, AxiRam

from fpga.layer_host import LayerRun
from sim import bittrue, golden, perf
from sim import layer as fused
from sim.workload import layer_inputs
from tb.harness import Harness, load_manifest
from tb.protocol import StreamMonitor

MANIFEST, CFG = load_manifest()
RUN = LayerRun(MANIFEST)
MEMORY = 1 << 20
#: the memory answers SLVERR from here on (the memory-error case)
FAULTY = MEMORY // 2
ERROR_BIT = {name: 1 << i for i, name in enumerate(RUN.errors)}
#: each AXI channel's pause rate, drawn from these (``DEFA_AXI_FULL_SPEED=1``: none)
PAUSES = [0.0] if os.environ.get("DEFA_AXI_FULL_SPEED") == "1" else [0.0, 0.2, 0.5]


def _faulty(access):
    async def checked(address, *args):
        if address >= FAULTY:
            raise ValueError(f"no memory at 0x{address:x}")
        return await access(address, *args)

    return checked


def _input_hw(scale: int = 1) -> tuple[int, int]:
    """The largest input whose level shapes (strides 8, 16, ...) fit ``max_shapes``; with
    ``scale``, that many times smaller (at least a pixel per level)."""
    h = min(mh * (8 << i) for i, (mh, _) in enumerate(CFG.max_shapes))
    w = min(mw * (8 << i) for i, (_, mw) in enumerate(CFG.max_shapes))
    least = 8 << (CFG.levels - 1)
    return max(least, h // scale), max(least, w // scale)


class LayerTB(Harness):
    def __init__(self, dut, seed: int):
        super().__init__(dut, MANIFEST, seed, idle=("fwp__valid", "csr__w_stb", "csr__r_stb"))
        self.ram = AxiRam(AxiBus.from_prefix(dut, "mem_"), dut.clk, dut.rst, size=MEMORY)
        for port, name in ((self.ram.read_if, "_read"), (self.ram.write_if, "_write")):
            setattr(port, name, _faulty(getattr(port, name)))
            port.log.setLevel(logging.WARNING)  # not a line per burst
        for channel in (
            self.ram.read_if.ar_channel,
            self.ram.read_if.r_channel,
            self.ram.write_if.aw_channel,
            self.ram.write_if.w_channel,
            self.ram.write_if.b_channel,
        ):
            rng = np.random.default_rng(int(self.rng.integers(1 << 31)))
            p = float(rng.choice(PAUSES))
            channel.set_pause_generator(iter(lambda r=rng, p=p: bool(r.random() < p), None))
        self.inner = None
        if cocotb.SIM_NAME.lower().startswith("icarus"):
            layer = dut.layer
            self.inner = [
                StreamMonitor(
                    layer, ["x", "queries", "refs", "out"], self.fail, clk=dut.clk, rst=dut.rst
                ),
                StreamMonitor(
                    layer.core, ["load", "jobs", "outputs"], self.fail, clk=dut.clk, rst=dut.rst
                ),
            ]

    async def start(self):
        self.dut.fwp_result__ready.value = 1
        await super().start()
        for monitor in self.inner or ():
            monitor.start()

    def layer(self, kind: str, queries: int, seed: int, *, scale: int = 1, mask=None):
        """A seeded layer: weights, scales from four other inputs, the input (``_input_hw``)
        and the model (``mask``: FWP's, all levels' pixels, True kept)."""
        cfg = CFG
        params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
        strides = tuple(8 << i for i in range(cfg.levels))
        hw = _input_hw(scale)

        def make(s):
            return layer_inputs(
                kind, input_hw=hw, strides=strides, d_model=cfg.d_model, queries=queries, seed=s
            )

        scales = fused.calibrate(cfg, params, [make(seed + 1 + i) for i in range(4)])
        ql = fused.quantize_layer(cfg, params, scales)
        inputs = make(seed)
        return ql, inputs, fused.layer(cfg, ql, inputs, pap=True, pixel_mask=mask)

    def place(self, ql, inputs, model):
        base = int(self.rng.integers(0, 4096))
        gaps = [int(self.rng.integers(0, 256)) for _ in range(3)]
        plan = RUN.plan(
            ql, model.x, model.query, model.core_inputs.ref_w, inputs.shapes, base=base, gaps=gaps
        )
        for addr, image in plan.regions:
            self.ram.write(addr, image)
        # what the run must overwrite: a pattern the outputs never all equal
        self.ram.write(plan.out_base, bytes([0xA5]) * (plan.queries * RUN.out_bytes))
        return plan

    async def launch(self, registers: dict):
        """The run's registers, the thresholds, then ``CONTROL`` bit 1 (start)."""
        for name, value in registers.items():
            await self.write(name, value)
        await self.write("TAU_P", CFG.tau_p_q)
        await self.write("TAU_F", CFG.tau_f_q)
        await self.write("CONTROL", 2)

    async def wait_done(self, pixels: int = 0, queries: int = 0) -> int:
        """Cycles until ``irq``; a run past ten times its projections' work is a hang."""
        dut = self.dut
        work = (pixels + 3 * queries) * CFG.d_model * RUN.chunks + 4 * sum(
            n for _, n in RUN.constants
        )
        patience = 10 * work + 10_000
        for cycle in range(patience):
            await FallingEdge(dut.clk)
            await ReadOnly()
            if dut.irq.value.is_resolvable and int(dut.irq.value):
                return cycle
        self.fail(f"hang: no done after {patience} cycles")

    async def error(self) -> int:
        """``ERROR``, after ``STATUS`` says done and agrees with it."""
        status, error = await self.read("STATUS"), await self.read("ERROR")
        if status != (2 | (4 if error else 0)):
            self.fail(f"STATUS {status:#x} with ERROR {error:#x} after done")
        return error

    def check(self, plan, model, what: str):
        raw = self.ram.read(plan.out_base, plan.queries * RUN.out_bytes)
        got, want = RUN.outputs(raw, plan.queries), model.out
        if not np.array_equal(got, want):
            q, o = (int(v) for v in np.argwhere(got != want)[0])
            self.fail(f"{what}: query {q} channel {o}: got {got[q, o]}, want {want[q, o]}")


def _phases(model, mask=None) -> dict:
    """The phases' cycles from the models (``gen.layer_bench``'s): the constants' beats, each
    projection unit's (exact against the unit), the core's (whole maps), and the two bounds of
    their overlap (memory at one beat a cycle)."""
    cfg, qc = CFG, model.core_inputs
    nv, nq = model.x.shape[0], model.query.shape[0]
    per_head = cfg.heads * cfg.levels * cfg.points
    phases = {
        "constants": perf.layer_constant_cycles(cfg),
        "value_projection": perf.predict_value_projection(
            cfg, np.ones(nv, dtype=bool) if mask is None else mask
        )["cycles"],
        "query_projections": perf.predict_projection(cfg, nq, 2 * per_head)["cycles"],
        "sampling": perf.predict(cfg, perf.kept_points(qc.probs, cfg.tau_p_q))["cycles"],
        "output_projection": perf.predict_projection(cfg, nq, cfg.d_model)["cycles"],
    }
    rest = (phases["query_projections"], phases["sampling"], phases["output_projection"])
    return {
        **phases,
        "sequential": sum(phases.values()),
        "overlapped": phases["constants"] + phases["value_projection"] + max(rest),
    }


@cocotb.test()
async def layers(dut):
    """A decoder layer, then an encoder layer on the same build (the loader starts its next map
    at level 0), its map masked by DERIVE over the decoder's importance: every output word
    bit-exact, the counters against the model (the masked pixels: DERIVE's and the probes')."""
    tb = LayerTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    await tb.fwp_command("CLEAR")
    queries = int(os.environ.get("DEFA_QUERIES", "6"))
    figures = {}
    mask = None
    for kind, nq, seed in (("decoder", queries, 11), ("encoder", 4, 12)):
        ql, inputs, model = tb.layer(kind, nq, seed, mask=mask)
        plan = tb.place(ql, inputs, model)
        await tb.launch(plan.registers)
        cycles = await tb.wait_done(len(model.x), plan.queries)
        what = f"{kind} layer, seed {seed}"
        if error := await tb.error():
            tb.fail(f"{what}: error {RUN.error_names(error)}")
        tb.check(plan, model, what)
        jobs = plan.queries * CFG.heads
        stats = model.core
        masked = 0 if mask is None else int((~mask).sum())
        expect = {
            "JOBS_IN": jobs,
            "JOBS_OUT": jobs,
            "POINTS_KEPT": stats.points_kept,
            "POINTS_PRUNED": stats.points_pruned,
            "OFF_MAP": stats.points_off_map,
            "PIXELS_MASKED": masked,
            "LOADS_MASKED": masked,
        }
        got = {name: await tb.read(name) for name in expect}
        if got != expect:
            tb.fail(f"{what}: counters {got}, want {expect}")
        figures[kind] = {
            "cycles": cycles,
            "queries": plan.queries,
            "pixels": len(model.x),
            "masked": masked,
            **_phases(model, mask),
        }
        dut._log.info(f"{what}: {figures[kind]}")
        await tb.write("CONTROL", 1)  # clear the counters for the next layer
        if kind == "decoder":  # the next map's mask: DERIVE over this layer's importance
            await tb.fwp_command("DERIVE")
            mask = bittrue.fwp_mask(CFG, stats.importance, inputs.shapes)
            if not 0 < (~mask).sum() < len(mask):
                tb.fail(f"{what}: DERIVE's mask keeps {int(mask.sum())} of {len(mask)} pixels")
    if "DEFA_RESULTS" in os.environ:
        Path(os.environ["DEFA_RESULTS"]).write_text(json.dumps(figures, indent=2))


@cocotb.test()
async def misuse(dut):
    """Registers out of range end at once in ``registers`` with nothing run; a start and a
    register write while busy are ignored (``start_while_busy``, ``write_while_busy``) and the
    run ends unharmed; outputs where the memory answers SLVERR end in ``write``, never a hang."""
    tb = LayerTB(dut, cocotb.RANDOM_SEED + 1)
    await tb.start()
    await tb.fwp_command("CLEAR")  # (the mask survives reset: nothing masked here)
    # small maps: each of the three runs projects the whole map
    ql, inputs, model = tb.layer("decoder", 2, 21, scale=4)
    plan = tb.place(ql, inputs, model)
    word = RUN.word_bytes
    regs = plan.registers
    h0 = regs["SHAPE0"] >> 16
    bad = [
        ("an unaligned base", {"X_BASE": regs["X_BASE"] + (word // 2 or 1)}),
        ("a level of width 0", {"SHAPE0": h0 << 16}),
        ("no queries", {"QUERIES": 0}),
        ("more queries than tags", {"QUERIES": (1 << MANIFEST["tag_bits"]) + 1}),
        ("a level past max_shapes", {"SHAPE0": (CFG.max_shapes[0][0] + 1) << 16 | 1}),
        ("a base past the address range", {"OUT_BASE": 1 << CFG.addr_bits}),
    ]
    for what, change in bad:
        if what.startswith("a base past") and CFG.addr_bits >= 32:
            continue
        await tb.launch({**regs, **change})
        cycles = await tb.wait_done()
        error = await tb.error()
        if error != ERROR_BIT["registers"] or cycles > 16:
            tb.fail(f"{what}: error {RUN.error_names(error)} after {cycles} cycles")
    # a start and a register write while busy: both ignored, the run unharmed
    await tb.launch(regs)
    await tb.write("CONTROL", 2)
    await tb.write("OUT_BASE", FAULTY)
    await tb.wait_done(len(model.x), plan.queries)
    error = await tb.error()
    if error != ERROR_BIT["start_while_busy"] | ERROR_BIT["write_while_busy"]:
        tb.fail(f"start and a write while busy: error {RUN.error_names(error)}")
    if await tb.read("OUT_BASE") != regs["OUT_BASE"]:
        tb.fail("a write while busy changed OUT_BASE")
    tb.check(plan, model, "the run a second start hit")
    await tb.launch({**regs, "OUT_BASE": FAULTY})
    await tb.wait_done(len(model.x), plan.queries)
    if not await tb.error() & ERROR_BIT["write"]:
        tb.fail(f"outputs into faulty memory: error {RUN.error_names(await tb.error())}")
