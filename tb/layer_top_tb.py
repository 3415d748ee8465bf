"""cocotb regression of the fused layer from memory (``defa_layer_top``): whole layers with the
projections' constants, the map and the queries in cocotbext-axi's ``AxiRam`` (random pauses on
every AXI channel), every query's output words bit-exact against ``sim.layer.layer`` (float
weights and inputs through calibration, PAP and the fused softmax).

Environment: ``DEFA_MANIFEST``; ``DEFA_QUERIES`` (decoder queries in the first run, default 6);
``DEFA_RESULTS`` (a JSON file: each layer's cycles from start to ``done`` beside the phases'
cycle models, ``sim.perf``).

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
from sim import golden, perf
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


def _faulty(access):
    async def checked(address, *args):
        if address >= FAULTY:
            raise ValueError(f"no memory at 0x{address:x}")
        return await access(address, *args)

    return checked


def _input_hw() -> tuple[int, int]:
    """The largest input whose level shapes (strides 8, 16, ...) fit ``max_shapes``."""
    h = min(mh * (8 << i) for i, (mh, _) in enumerate(CFG.max_shapes))
    w = min(mw * (8 << i) for i, (_, mw) in enumerate(CFG.max_shapes))
    return h, w


class LayerTB(Harness):
    def __init__(self, dut, seed: int):
        super().__init__(dut, MANIFEST, seed, idle=("fwp__valid", "start", "clear"))
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
            p = float(rng.choice([0.0, 0.2, 0.5]))
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

    def layer(self, kind: str, queries: int, seed: int):
        """A seeded layer: weights, scales from four other inputs, the input and the model."""
        cfg = CFG
        params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
        strides = tuple(8 << i for i in range(cfg.levels))
        hw = _input_hw()

        def make(s):
            return layer_inputs(
                kind, input_hw=hw, strides=strides, d_model=cfg.d_model, queries=queries, seed=s
            )

        scales = fused.calibrate(cfg, params, [make(seed + 1 + i) for i in range(4)])
        ql = fused.quantize_layer(cfg, params, scales)
        inputs = make(seed)
        return ql, inputs, fused.layer(cfg, ql, inputs, pap=True)

    def place(self, ql, inputs, model, *, out_base=None):
        base = int(self.rng.integers(0, 4096))
        gaps = [int(self.rng.integers(0, 256)) for _ in range(3)]
        plan = RUN.plan(
            ql, model.x, model.query, model.core_inputs.ref_w, inputs.shapes, base=base, gaps=gaps
        )
        for addr, image in plan.regions:
            self.ram.write(addr, image)
        if out_base is not None:
            plan.out_base = plan.registers["out_base"] = out_base
        # what the run must overwrite: a pattern the outputs never all equal
        self.ram.write(plan.out_base, bytes([0xA5]) * (plan.queries * RUN.out_bytes))
        return plan

    async def launch(self, registers: dict):
        dut = self.dut
        await FallingEdge(dut.clk)
        for name, value in registers.items():
            port = getattr(dut, name)
            if isinstance(value, list):
                fields = self.manifest["ports"][name]["fields"]
                port.value = sum(int(v) << fields[str(i)]["offset"] for i, v in enumerate(value))
            else:
                port.value = value
        dut.tau_p.value = CFG.tau_p_q
        dut.tau_f.value = CFG.tau_f_q
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0

    async def wait_done(self, pixels: int = 0, queries: int = 0) -> int:
        """Cycles until ``done``; a run past ten times its projections' work is a hang."""
        dut = self.dut
        work = (pixels + 3 * queries) * CFG.d_model * RUN.chunks + 4 * sum(
            n for _, n in RUN.constants
        )
        patience = 10 * work + 10_000
        for cycle in range(patience):
            await FallingEdge(dut.clk)
            await ReadOnly()
            if dut.done.value.is_resolvable and int(dut.done.value):
                return cycle
        self.fail(f"hang: no done after {patience} cycles")

    def error(self) -> int:
        value = self.dut.error.value
        if not value.is_resolvable:
            self.fail(f"error reads {value}")
        return int(value)

    def check(self, plan, model, what: str):
        raw = self.ram.read(plan.out_base, plan.queries * RUN.out_bytes)
        got, want = RUN.outputs(raw, plan.queries), model.out
        if not np.array_equal(got, want):
            q, o = (int(v) for v in np.argwhere(got != want)[0])
            self.fail(f"{what}: query {q} channel {o}: got {got[q, o]}, want {want[q, o]}")


def _phases(model) -> dict:
    """The phases' cycles from the models (``gen.layer_bench``'s): each projection unit's
    (exact against the unit), the core's (whole maps), and the two bounds of their overlap."""
    cfg, qc = CFG, model.core_inputs
    nv, nq = model.x.shape[0], model.query.shape[0]
    per_head = cfg.heads * cfg.levels * cfg.points
    phases = {
        "value_projection": perf.predict_projection(cfg, nv, cfg.d_model)["cycles"],
        "query_projections": perf.predict_projection(cfg, nq, 2 * per_head)["cycles"],
        "sampling": perf.predict(cfg, perf.kept_points(qc.probs, cfg.tau_p_q))["cycles"],
        "output_projection": perf.predict_projection(cfg, nq, cfg.d_model)["cycles"],
    }
    rest = (phases["query_projections"], phases["sampling"], phases["output_projection"])
    return {
        **phases,
        "sequential": sum(phases.values()),
        "overlapped": phases["value_projection"] + max(rest),
    }


@cocotb.test()
async def layers(dut):
    """A decoder layer, then an encoder layer on the same build (the loader starts its next map
    at level 0): every output word bit-exact, the counters against the model."""
    tb = LayerTB(dut, cocotb.RANDOM_SEED)
    await tb.start()
    queries = int(os.environ.get("DEFA_QUERIES", "6"))
    figures = {}
    for kind, nq, seed in (("decoder", queries, 11), ("encoder", 4, 12)):
        ql, inputs, model = tb.layer(kind, nq, seed)
        plan = tb.place(ql, inputs, model)
        await tb.launch(plan.registers)
        cycles = await tb.wait_done(len(model.x), plan.queries)
        what = f"{kind} layer, seed {seed}"
        if tb.error():
            tb.fail(f"{what}: error {RUN.error_names(tb.error())}")
        tb.check(plan, model, what)
        jobs = plan.queries * CFG.heads
        stats = model.core
        expect = {
            "jobs_in": jobs,
            "jobs_out": jobs,
            "points_kept": stats.points_kept,
            "points_pruned": stats.points_pruned,
        }
        await FallingEdge(dut.clk)
        dut.clear.value = 1
        got = {name: int(getattr(dut, name).value) for name in expect}
        await FallingEdge(dut.clk)
        dut.clear.value = 0
        if got != expect:
            tb.fail(f"{what}: counters {got}, want {expect}")
        figures[kind] = {"cycles": cycles, "queries": plan.queries, **_phases(model)}
        dut._log.info(f"{what}: {figures[kind]}")
    if "DEFA_RESULTS" in os.environ:
        Path(os.environ["DEFA_RESULTS"]).write_text(json.dumps(figures, indent=2))


@cocotb.test()
async def misuse(dut):
    """Registers out of range end at once in ``registers`` with nothing run; a start while busy
    is ignored (``start_while_busy``) and the run ends unharmed; outputs where the memory
    answers SLVERR end in ``write``, never a hang."""
    tb = LayerTB(dut, cocotb.RANDOM_SEED + 1)
    await tb.start()
    ql, inputs, model = tb.layer("decoder", 2, 21)
    plan = tb.place(ql, inputs, model)
    word = RUN.word_bytes
    bad = [
        ("an unaligned base", {"x_base": plan.registers["x_base"] + (word // 2 or 1)}),
        ("a level of width 0", {"widths": [0] + plan.registers["widths"][1:]}),
        ("no queries", {"queries": 0}),
        (
            "a level past max_shapes",
            {"heights": [CFG.max_shapes[0][0] + 1] + plan.registers["heights"][1:]},
        ),
    ]
    for what, change in bad:
        await tb.launch({**plan.registers, **change})
        cycles = await tb.wait_done()
        if tb.error() != ERROR_BIT["registers"] or cycles > 16:
            tb.fail(f"{what}: error {RUN.error_names(tb.error())} after {cycles} cycles")
    await tb.launch(plan.registers)
    for _ in range(50):
        await FallingEdge(dut.clk)
    dut.start.value = 1
    await FallingEdge(dut.clk)
    dut.start.value = 0
    await tb.wait_done(len(model.x), plan.queries)
    if tb.error() != ERROR_BIT["start_while_busy"]:
        tb.fail(f"start while busy: error {RUN.error_names(tb.error())}")
    tb.check(plan, model, "the run a second start hit")
    plan.out_base = FAULTY
    await tb.launch({**plan.registers, "out_base": FAULTY})
    await tb.wait_done(len(model.x), plan.queries)
    if not tb.error() & ERROR_BIT["write"]:
        tb.fail(f"outputs into faulty memory: error {RUN.error_names(tb.error())}")
