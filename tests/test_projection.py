"""The projection unit (``rtl/layer/projection.py``) in the Amaranth simulator against the
bit-true layer model's projection (``sim.layer.Projection``), written apart from the same
contract: bit-exact words, order, ``last``, throughput and latency."""

from pathlib import Path

import numpy as np
import pytest
from stream_sim import beats_of, collect, constant_ports, load_constants, send

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


def _simulate(unit, model, rows, rng, *, gaps: bool, stalls: bool):
    """Load the unit's memories, stream ``rows`` in (with random gaps), take the words out
    (with random pauses); returns (words, lasts, cycle of each word, cycle each row's last
    beat went in)."""
    chunks, lanes = unit.chunks, unit.lanes
    pad = chunks * lanes - unit.n_in  # the last chunk's codes past n_in, weights 0
    rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=99)  # garbage times weight 0
    fed, now = [], [0]

    async def load_and_feed(ctx):
        await load_constants(ctx, constant_ports(unit), model, chunks, lanes)
        gap = (lambda: rng.random() < 0.3) if gaps else None
        for row in rows:
            await send(ctx, unit.rows, beats_of(row, lanes), gap)
            fed.append(now[0])

    words, when = collect(
        unit,
        [load_and_feed],
        unit.out,
        rows.shape[0] * unit.n_out,
        ready=lambda: not (stalls and rng.random() < 0.4),
        record=lambda word: (word.data, word.last),
        now=now,
    )
    return np.array([w for w, _ in words]), [last for _, last in words], when, fed


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
    """The value loader's ``load`` beats: every kept pixel of every level (raster order, the
    current shapes), head by head and chunk by chunk, carrying the value projection of the
    model (``sim.layer.Projection``), with random pauses on ``load``. The mask probes are
    answered as the core does (in order, four cycles after they are taken, taken at random):
    each pixel is asked once, in order, and an FWP-masked pixel (a third of them, the first
    one included) gets no word."""
    seed = cfg.lanes
    rng = np.random.default_rng(seed)
    dut = ValueLoader(cfg)
    unit = dut.projection
    shapes = [(3, 4), (2, 3)]
    pixels = sum(h * w for h, w in shapes)
    keep = rng.random(pixels) > 0.33
    keep[0] = False
    c, lanes, dh = cfg.d_model, cfg.lanes, cfg.head_dim
    weights = rng.integers(-127, 128, (c, c))
    mult, shift = fused.requantizer(cfg, np.exp2(rng.uniform(-11, -8, c)), "value")
    model = fused.Projection(weights, rng.integers(-3000, 3000, c), mult, shift, unit.lo, unit.hi)
    x = rng.integers(-127, 128, (pixels, c))
    value = model(x)
    want, places = [], []
    p = 0
    for level, (h, w) in enumerate(shapes):
        for py in range(h):
            for px in range(w):
                places.append((level, px, py))
                for head in range(cfg.heads):
                    for chunk in range(cfg.cycles_per_point):
                        lo = head * dh + chunk * lanes
                        if keep[p]:
                            want.append(
                                (level, px, py, head, chunk, list(value[p, lo : lo + lanes]))
                            )
                p += 1
    asked = []

    async def feed(ctx):
        ctx.set(dut.widths, [w for _, w in shapes])
        ctx.set(dut.heights, [h for h, _ in shapes])
        await load_constants(ctx, constant_ports(dut), model, unit.chunks, unit.lanes)
        await send(ctx, dut.x, [beat for row in x for beat in beats_of(row, unit.lanes)])

    async def core(ctx):
        due = []  # (cycle, keep) answers in flight
        cycle = 0
        while len(asked) < pixels or due:
            ready = bool(rng.random() < 0.7)
            ctx.set(dut.probe.ready, ready)
            answer = due and due[0][0] == cycle
            ctx.set(dut.probe_keep.valid, bool(answer))
            ctx.set(dut.probe_keep.payload, int(due[0][1]) if answer else 0)
            if answer:
                due.pop(0)
            if ready and ctx.get(dut.probe.valid):
                probe = ctx.get(dut.probe.payload)
                asked.append((probe.level, probe.x, probe.y))
                due.append((cycle + 4, keep[len(asked) - 1] if len(asked) <= pixels else 1))
            await ctx.tick()
            cycle += 1
        ctx.set(dut.probe_keep.valid, 0)

    got, _ = collect(
        dut,
        [feed, core],
        dut.load,
        len(want),
        ready=lambda: rng.random() < 0.6,
        record=lambda b: (b.level, b.x, b.y, b.head, b.chunk, list(b.data)),
    )
    assert asked == places, f"seed {seed}"
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

    async def feed(ctx):
        await load_constants(ctx, constant_ports(dut, "offsets_"), off_model, chunks, lanes)
        await load_constants(ctx, constant_ports(dut, "logits_"), log_model, chunks, lanes)
        for q in range(nq):
            await send(ctx, dut.refs, [refs[q]])
            await send(ctx, dut.queries, beats_of(queries[q], lanes), lambda: rng.random() < 0.3)

    def record(job):
        off_x = [[int(v) for v in level] for level in job.off_x]
        off_y = [[int(v) for v in level] for level in job.off_y]
        logit = [[int(v) for v in level] for level in job.logit]
        return (job.tag, job.head, list(job.ref_x), list(job.ref_y), off_x, off_y, logit)

    got, _ = collect(
        dut, [feed], dut.jobs, len(want), ready=lambda: rng.random() < 0.5, record=record
    )
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

    async def feed(ctx):
        await load_constants(ctx, constant_ports(dut), model, unit.chunks, unit.lanes)
        beats = [
            {"tag": tags[q], "head": h, "values": [int(v) for v in core[q, h * dh : (h + 1) * dh]]}
            for q in range(nq)
            for h in range(m)
        ]
        await send(ctx, dut.core_out, beats, lambda: rng.random() < 0.3)

    got, _ = collect(
        dut,
        [feed],
        dut.out,
        len(want),
        ready=lambda: rng.random() < 0.7,
        record=lambda word: (word.tag, word.data, word.last),
    )
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
