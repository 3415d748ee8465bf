"""The projection unit (``rtl/layer/projection.py``) in the Amaranth simulator against the
bit-true layer model's projection (``sim.layer.Projection``), written apart from the same
contract: bit-exact words, order, ``last``, throughput and latency."""

from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from gen.config import preset
from rtl.layer.output_projector import OutputProjector
from rtl.layer.projection import ProjectionUnit
from rtl.layer.query_projector import QueryProjector
from rtl.layer.value_loader import ValueLoader
from sim import layer as fused
from sim import perf

CFG = preset("tiny")


def _unit_and_model(rng, n_in, n_out, lanes, in_bits, lo, hi, acc_bits):
    weights = rng.integers(-127, 128, (n_in, n_out))
    bias = rng.integers(-(1 << (acc_bits - 3)), 1 << (acc_bits - 3), n_out)
    gain = np.exp2(rng.uniform(-acc_bits + 2, 0, n_out))
    cfg = CFG.replace(requant_bits=16)
    mult, shift = fused.requantizer(cfg, gain, "test")
    shift = np.minimum(shift, acc_bits + 16)
    model = fused.Projection(weights, bias, mult, shift, lo, hi)
    unit = ProjectionUnit(
        n_in=n_in,
        n_out=n_out,
        lanes=lanes,
        in_bits=in_bits,
        weight_bits=8,
        acc_bits=acc_bits,
        requant_bits=16,
        lo=lo,
        hi=hi,
    )
    return unit, model


#: cycles a drain waits for the words before the test fails (a hang is a failure)
LIMIT = 100_000


def _bounded():
    yield from range(LIMIT)
    raise AssertionError(f"no end after {LIMIT} cycles: the block stopped producing")


async def _load_constants(ctx, ports, model, chunks: int, lanes: int):
    """Write a projection's weights (padded with 0 past n_in) and per-channel constants
    through ``ports`` (``w_en``, ``w_addr``, ``w_data``, ``c_en``, ``c_addr``, ``c_data``)."""
    pad = chunks * lanes - model.weight.shape[0]
    weight = np.pad(model.weight, ((0, pad), (0, 0)))
    for o in range(weight.shape[1]):
        for k in range(chunks):
            ctx.set(ports["w_addr"], o * chunks + k)
            ctx.set(ports["w_data"], [int(v) for v in weight[k * lanes : (k + 1) * lanes, o]])
            ctx.set(ports["w_en"], 1)
            await ctx.tick()
        ctx.set(ports["w_en"], 0)
        ctx.set(ports["c_addr"], o)
        constants = {"bias": int(model.bias[o]), "mult": int(model.mult[o])}
        ctx.set(ports["c_data"], {**constants, "shift": int(model.shift[o])})
        ctx.set(ports["c_en"], 1)
        await ctx.tick()
        ctx.set(ports["c_en"], 0)


def _ports(dut, prefix=""):
    names = ("w_en", "w_addr", "w_data", "c_en", "c_addr", "c_data")
    return {name: getattr(dut, prefix + name) for name in names}


def _simulate(unit, model, rows, rng, *, gaps: bool, stalls: bool):
    """Load the unit's memories, stream ``rows`` in (with random gaps), take the words out
    (with random pauses); returns (words, lasts, cycle of each word, cycle each row's last
    beat went in)."""
    chunks, lanes = unit.chunks, unit.lanes
    pad = chunks * lanes - unit.n_in  # the last chunk's codes past n_in, weights 0
    rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=99)  # garbage times weight 0
    got, lasts, when, fed = [], [], [], []
    total = rows.shape[0] * unit.n_out

    async def load_and_feed(ctx):
        await _load_constants(ctx, _ports(unit), model, chunks, lanes)
        cycle = 0
        for row in rows:
            for k in range(chunks):
                while gaps and rng.random() < 0.3:
                    ctx.set(unit.rows.valid, 0)
                    await ctx.tick()
                ctx.set(unit.rows.payload, [int(v) for v in row[k * lanes : (k + 1) * lanes]])
                ctx.set(unit.rows.valid, 1)
                await ctx.tick().until(unit.rows.ready)
                cycle = now[0]
            fed.append(cycle)
            ctx.set(unit.rows.valid, 0)

    async def drain(ctx):
        for _ in _bounded():
            if len(got) >= total:
                break
            ready = not (stalls and rng.random() < 0.4)
            ctx.set(unit.out.ready, ready)
            await ctx.tick()
        ctx.set(unit.out.ready, 0)

    now = [0]  # cycles, counted by the monitor

    async def monitor(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(
            unit.out.valid, unit.out.ready, unit.out.payload
        ):
            now[0] += 1
            if valid and ready:
                got.append(payload.data)
                lasts.append(payload.last)
                when.append(now[0])
            if len(got) == total:
                break

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(load_and_feed)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    return np.array(got), lasts, when, fed


@pytest.mark.parametrize(
    "n_in,n_out,lanes,in_bits,lo,hi,acc_bits",
    [
        (32, 6, 8, 8, -127, 127, 27),  # value codes (tiny's d_model, narrower out)
        (24, 5, 24, 8, -(1 << 17), (1 << 17) - 1, 27),  # one chunk per channel, offset words
        (12, 3, 4, 13, -32767, 32767, 30),  # the output projection's 13-bit inputs
        (8, 4, 1, 8, -5, 300, 20),  # one lane, an asymmetric range
        (13, 3, 5, 8, -127, 127, 24),  # a padded last chunk
    ],
    ids=["value", "offsets", "output", "one-lane", "padded"],
)
def test_projection_unit_matches_the_model(n_in, n_out, lanes, in_bits, lo, hi, acc_bits):
    seed = n_in * 100 + n_out
    rng = np.random.default_rng(seed)
    unit, model = _unit_and_model(rng, n_in, n_out, lanes, in_bits, lo, hi, acc_bits)
    top = (1 << (in_bits - 1)) - 1
    rows = rng.integers(-top, top + 1, (5, n_in))
    rows[0] = top  # the largest products
    rows[1] = -top
    want = model(rows).reshape(-1)
    got, lasts, _, _ = _simulate(unit, model, rows, rng, gaps=True, stalls=True)
    assert np.array_equal(got, want), f"seed {seed}"
    assert lasts == [int((i + 1) % n_out == 0) for i in range(len(want))], f"seed {seed}"
    assert (want == lo).any() or (want == hi).any() or lo == -127  # saturation exercised


@pytest.mark.parametrize(
    "cfg,kind",
    [(CFG.replace(proj_lanes=8), "value"), (CFG.replace(proj_lanes=5), "offsets")],
    ids=["tiny-value", "tiny-offsets-padded"],
)
def test_projection_unit_throughput_and_latency(cfg, kind):
    """With the output always ready, one channel every ``chunks`` cycles; the first word
    leaves ``latency + 2`` cycles after its channel's last chunk starts (``chunks`` cycles
    after the row's last beat went in); the whole run takes what the cycle model
    (``sim.perf.predict_projection``) predicts, counted from the first beat's cycle."""
    rng = np.random.default_rng(7)
    unit = ProjectionUnit.of(cfg, kind)
    assert unit.latency == perf.projection_latency(cfg)
    top = (1 << (unit.in_bits - 1)) - 1
    weights = rng.integers(-127, 128, (unit.n_in, unit.n_out))
    gain = np.exp2(rng.uniform(-20, -8, unit.n_out))
    mult, shift = fused.requantizer(cfg, gain, "test")
    bias = rng.integers(-1000, 1000, unit.n_out)
    model = fused.Projection(weights, bias, mult, shift, unit.lo, unit.hi)
    rows = rng.integers(-top, top + 1, (4, unit.n_in))
    got, _, when, fed = _simulate(unit, model, rows, rng, gaps=False, stalls=False)
    assert np.array_equal(got, model(rows).reshape(-1))
    steady = np.diff(when)
    assert set(steady.tolist()) == {unit.chunks}, steady
    assert when[0] == fed[0] + unit.chunks + unit.latency + 2
    predicted = perf.predict_projection(cfg, len(rows), unit.n_out)
    assert when[-1] - fed[0] + unit.chunks == predicted["cycles"]


def test_projection_unit_refuses_bad_shapes():
    args = dict(n_in=32, n_out=4, lanes=4, in_bits=8, weight_bits=8, acc_bits=27, requant_bits=16)
    with pytest.raises(ValueError, match="lanes=0 is out of range: allowed >= 1"):
        ProjectionUnit(**{**args, "lanes": 0}, lo=-127, hi=127)
    with pytest.raises(ValueError, match="the output range must hold 0"):
        ProjectionUnit(**args, lo=1, hi=127)
    with pytest.raises(ValueError, match="kind='keys' is not a projection"):
        ProjectionUnit.of(CFG, "keys")


@pytest.mark.parametrize(
    "cfg",
    [CFG.replace(proj_lanes=8), CFG.replace(lanes=4, proj_lanes=32)],
    ids=["tiny-proj8", "tiny-lanes4"],
)
def test_value_loader_writes_the_projected_map_as_buffer_words(cfg):
    """The value loader's ``load`` beats: every pixel of every level (raster order, the
    current shapes), head by head and chunk by chunk, carrying the value projection of the
    model (``sim.layer.Projection``), with random pauses on ``load``."""
    seed = cfg.lanes
    rng = np.random.default_rng(seed)
    dut = ValueLoader(cfg)
    unit = dut.projection
    shapes = [(3, 4), (2, 3)]
    pixels = sum(h * w for h, w in shapes)
    c, lanes, dh = cfg.d_model, cfg.lanes, cfg.head_dim
    weights = rng.integers(-127, 128, (c, c))
    mult, shift = fused.requantizer(cfg, np.exp2(rng.uniform(-11, -8, c)), "value")
    model = fused.Projection(weights, rng.integers(-3000, 3000, c), mult, shift, unit.lo, unit.hi)
    x = rng.integers(-127, 128, (pixels, c))
    value = model(x)
    want = []
    p = 0
    for level, (h, w) in enumerate(shapes):
        for py in range(h):
            for px in range(w):
                for head in range(cfg.heads):
                    for chunk in range(cfg.cycles_per_point):
                        lo = head * dh + chunk * lanes
                        want.append((level, px, py, head, chunk, list(value[p, lo : lo + lanes])))
                p += 1
    got = []
    rows = np.pad(x, ((0, 0), (0, unit.chunks * unit.lanes - c)))

    async def feed(ctx):
        ctx.set(dut.widths, [w for _, w in shapes])
        ctx.set(dut.heights, [h for h, _ in shapes])
        await _load_constants(ctx, _ports(dut), model, unit.chunks, unit.lanes)
        for row in rows:
            for k in range(unit.chunks):
                ctx.set(dut.x.payload, [int(v) for v in row[k * unit.lanes : (k + 1) * unit.lanes]])
                ctx.set(dut.x.valid, 1)
                await ctx.tick().until(dut.x.ready)
        ctx.set(dut.x.valid, 0)

    async def drain(ctx):
        for _ in _bounded():
            if len(got) >= len(want):
                break
            ready = rng.random() < 0.6
            ctx.set(dut.load.ready, ready)
            await ctx.tick()
        ctx.set(dut.load.ready, 0)

    async def monitor(ctx):
        async for _, _, valid, ready, beat in ctx.tick().sample(
            dut.load.valid, dut.load.ready, dut.load.payload
        ):
            if valid and ready:
                got.append((beat.level, beat.x, beat.y, beat.head, beat.chunk, list(beat.data)))
            if len(got) == len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    assert got == want, f"seed {seed}"
    assert (value == unit.hi).any() or (value == unit.lo).any(), "saturation not exercised"


def _random_projection(rng, unit, gain_log2):
    weights = rng.integers(-127, 128, (unit.n_in, unit.n_out))
    mult, shift = fused.requantizer(CFG, np.exp2(rng.uniform(*gain_log2, unit.n_out)), "test")
    bias = rng.integers(-3000, 3000, unit.n_out)
    return fused.Projection(weights, bias, mult, shift, unit.lo, unit.hi)


@pytest.mark.parametrize(
    "cfg",
    [CFG.replace(proj_lanes=8), CFG.replace(proj_lanes=32, points=3, levels=2)],
    ids=["tiny-proj8", "tiny-3points"],
)
def test_query_projector_assembles_the_jobs(cfg):
    """The query projector's jobs: per query, one per head in order, with its tag and
    reference point and the offset and logit words of the model's projections
    (``sim.layer.Projection``), with random gaps on the queries and pauses on the jobs."""
    seed = cfg.proj_lanes + cfg.points
    rng = np.random.default_rng(seed)
    dut = QueryProjector(cfg)
    off_model = _random_projection(rng, dut.offsets, (-4, 2))  # offsets saturate too
    log_model = _random_projection(rng, dut.logits, (-12, -6))
    nq, m, lv, p = 4, cfg.heads, cfg.levels, cfg.points
    queries = rng.integers(-127, 128, (nq, cfg.d_model))
    refs = [
        {
            "tag": int(rng.integers(0, 1 << 16)),
            "ref_x": [int(v) for v in rng.integers(0, 1 << 10, lv)],
            "ref_y": [int(v) for v in rng.integers(0, 1 << 10, lv)],
        }
        for _ in range(nq)
    ]
    offsets = off_model(queries).reshape(nq, m, lv, p, 2)
    logits = log_model(queries).reshape(nq, m, lv, p)
    want = [
        (
            refs[q]["tag"],
            h,
            refs[q]["ref_x"],
            refs[q]["ref_y"],
            offsets[q, h, ..., 0].tolist(),
            offsets[q, h, ..., 1].tolist(),
            logits[q, h].tolist(),
        )
        for q in range(nq)
        for h in range(m)
    ]
    assert (offsets == dut.offsets.hi).any() or (offsets == dut.offsets.lo).any()
    chunks, lanes = dut.offsets.chunks, dut.offsets.lanes
    rows = np.pad(queries, ((0, 0), (0, chunks * lanes - cfg.d_model)))
    got = []

    async def feed(ctx):
        await _load_constants(ctx, _ports(dut, "offsets_"), off_model, chunks, lanes)
        await _load_constants(ctx, _ports(dut, "logits_"), log_model, chunks, lanes)
        for q in range(nq):
            ctx.set(dut.refs.payload, refs[q])
            ctx.set(dut.refs.valid, 1)
            await ctx.tick().until(dut.refs.ready)
            ctx.set(dut.refs.valid, 0)
            for k in range(chunks):
                while rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.queries.payload, [int(v) for v in rows[q, k * lanes : (k + 1) * lanes]])
                ctx.set(dut.queries.valid, 1)
                await ctx.tick().until(dut.queries.ready)
                ctx.set(dut.queries.valid, 0)

    async def drain(ctx):
        for _ in _bounded():
            if len(got) >= len(want):
                break
            ctx.set(dut.jobs.ready, rng.random() < 0.5)
            await ctx.tick()
        ctx.set(dut.jobs.ready, 0)

    async def monitor(ctx):
        async for _, _, valid, ready, job in ctx.tick().sample(
            dut.jobs.valid, dut.jobs.ready, dut.jobs.payload
        ):
            if valid and ready:
                off_x = [[int(v) for v in level] for level in job.off_x]
                off_y = [[int(v) for v in level] for level in job.off_y]
                logit = [[int(v) for v in level] for level in job.logit]
                got.append(
                    (job.tag, job.head, list(job.ref_x), list(job.ref_y), off_x, off_y, logit)
                )
            if len(got) == len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    assert got == want, f"seed {seed}"


@pytest.mark.parametrize(
    "cfg",
    [CFG.replace(proj_lanes=8), CFG.replace(proj_lanes=5)],
    ids=["tiny-proj8", "tiny-proj5-padded"],
)
def test_output_projector_projects_each_query(cfg):
    """The output projector's words: per query (its heads from the core, in order), the
    model's output projection of its row of core words, with its tag and ``last``, with random
    gaps on the core's outputs and pauses on the words."""
    seed = 40 + cfg.proj_lanes
    rng = np.random.default_rng(seed)
    dut = OutputProjector(cfg)
    unit = dut.projection
    model = _random_projection(rng, unit, (-8, -4))
    nq, m, dh = 3, cfg.heads, cfg.head_dim
    top = (1 << (cfg.out_bits - 1)) - 1
    core = rng.integers(-top, top + 1, (nq, m * dh))
    tags = [int(t) for t in rng.integers(0, 1 << 16, nq)]
    words = model(core)
    want = [
        (tags[q], int(words[q, o]), int(o == cfg.d_model - 1))
        for q in range(nq)
        for o in range(cfg.d_model)
    ]
    got = []

    async def feed(ctx):
        await _load_constants(ctx, _ports(dut), model, unit.chunks, unit.lanes)
        for q in range(nq):
            for h in range(m):
                while rng.random() < 0.3:
                    await ctx.tick()
                values = [int(v) for v in core[q, h * dh : (h + 1) * dh]]
                ctx.set(dut.core_out.payload, {"tag": tags[q], "head": h, "values": values})
                ctx.set(dut.core_out.valid, 1)
                await ctx.tick().until(dut.core_out.ready)
                ctx.set(dut.core_out.valid, 0)

    async def drain(ctx):
        for _ in _bounded():
            if len(got) >= len(want):
                break
            ctx.set(dut.out.ready, rng.random() < 0.7)
            await ctx.tick()
        ctx.set(dut.out.ready, 0)

    async def monitor(ctx):
        async for _, _, valid, ready, word in ctx.tick().sample(
            dut.out.valid, dut.out.ready, dut.out.payload
        ):
            if valid and ready:
                got.append((word.tag, word.data, word.last))
            if len(got) == len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    assert got == want, f"seed {seed}"
    assert (words == unit.hi).any() or (words == unit.lo).any(), "saturation not exercised"


@pytest.mark.parametrize("proj_dsp", [True, False])
def test_projection_products_go_to_dsps_or_luts(proj_dsp, tmp_path):
    """On ECP5 the unit's products are MULT18X18D blocks, or with ``proj_dsp`` off generic
    multiplies (LUTs); the requantizing pieces are DSP blocks either way."""
    from gen.elaborate import generate

    cfg = CFG.replace(proj_lanes=8, proj_dsp=proj_dsp)
    pieces = -(-cfg.proj_acc_bits // 17)  # the accumulator in 17-bit pieces
    verilog = generate(cfg, tmp_path, block="projection", target="ecp5")["verilog"]
    blocks = Path(verilog).read_text().count("MULT18X18D #(")
    assert blocks == pieces + (cfg.proj_lanes if proj_dsp else 0)
