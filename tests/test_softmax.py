"""The fixed-point softmax: the bit-true model against float softmax, and the RTL unit
against the bit-true model, bit for bit, under backpressure."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from gen.config import preset
from rtl.core.softmax import SoftmaxUnit
from sim import bittrue, golden


@pytest.mark.parametrize("spread", [0.1, 1.0, 3.0, 10.0, 40.0])
def test_bittrue_softmax_is_close_to_float(spread):
    cfg = preset("detr")
    rng = np.random.default_rng(int(spread * 10))
    logits = rng.standard_normal((5000, cfg.points_per_head)) * spread
    got = bittrue.softmax(cfg, bittrue.quantize_logits(cfg, logits)) / cfg.prob_one
    want = golden.softmax(logits)
    assert np.abs(got - want).max() <= 2.5e-3, f"spread {spread}"
    assert np.abs(got.sum(-1) - 1).max() <= 4e-3


def test_bittrue_softmax_edges():
    cfg = preset("detr")
    n = cfg.points_per_head
    equal = bittrue.softmax(cfg, np.zeros((1, n), np.int64))
    assert np.all(equal == round(cfg.prob_one / n))
    top = (1 << (cfg.logit_bits - 1)) - 1
    one_hot = np.full((1, n), -top - 1)
    one_hot[0, 3] = top
    probs = bittrue.softmax(cfg, one_hot)
    assert probs[0, 3] == cfg.prob_one and probs.sum() == cfg.prob_one
    assert bittrue.quantize_logits(cfg, [1e9, -1e9, 0.5]).tolist() == [top, -top - 1, 128]
    with pytest.raises(ValueError, match="logits holds NaN"):
        bittrue.quantize_logits(cfg, [np.nan])


@pytest.mark.parametrize("name", ["detr", "tiny"])
def test_softmax_unit_matches_bittrue(name):
    cfg = preset(name)
    n = cfg.points_per_head
    rng = np.random.default_rng(7)
    top = (1 << (cfg.logit_bits - 1)) - 1
    rows = [
        rng.normal(0, s, n) * (1 << cfg.logit_frac_bits) for s in rng.choice([0.3, 2, 8, 50], 150)
    ]
    logits = np.clip(np.round(rows), -top - 1, top).astype(np.int64)
    logits[0] = 0  # all equal
    logits[1] = top  # all at the maximum
    logits[2] = -top - 1
    logits[3, :] = -top - 1
    logits[3, -1] = top
    want = bittrue.softmax(cfg, logits)
    tau = cfg.tau_p_q  # PAP's keep bits come with the probabilities
    assert 0 < tau < cfg.prob_one
    dut = SoftmaxUnit(cfg)
    got = []

    async def producer(ctx):
        ctx.set(dut.tau_p, tau)
        for i, row in enumerate(logits):
            while rng.random() < 0.2:
                await ctx.tick()
            ctx.set(dut.logits.payload, {"tag": i & 0xFF, "values": [int(v) for v in row]})
            ctx.set(dut.logits.valid, 1)
            await ctx.tick().until(dut.logits.ready)
            ctx.set(dut.logits.valid, 0)

    async def consumer(ctx):
        while len(got) < len(logits):
            ready = rng.random() < 0.7
            ctx.set(dut.probs.ready, ready)
            _, _, valid, p = await ctx.tick().sample(dut.probs.valid, dut.probs.payload)
            if valid and ready:
                got.append((p.tag, [int(v) for v in p.values], int(p.keep)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    for i, (tag, values, keep) in enumerate(got):
        assert tag == i & 0xFF
        assert values == want[i].tolist(), f"row {i}: logits {logits[i].tolist()}"
        assert keep == sum(int(v >= tau) << k for k, v in enumerate(want[i])), f"row {i} keep"
    kept = sum(bin(k).count("1") for *_, k in got)
    assert 0 < kept < len(got) * n  # tau prunes some points, not all
