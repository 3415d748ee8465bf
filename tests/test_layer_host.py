"""The host's images of a fused-layer run (fpga/layer_host.py): sizes from the manifest, words
where the layouts put them, and clear errors for what does not fit."""

import numpy as np
import pytest
from amaranth._unused import MustUse
from configs import ODD

from fpga.layer_host import LayerRun
from gen.elaborate import BLOCKS
from sim import golden, perf
from sim import layer as fused
from sim.workload import layer_inputs


def _silence(obj, seen=None):
    """Mark ``obj`` and every elaboratable it holds as meant to go unused (Amaranth warns, at
    garbage collection, about components built and never elaborated)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or not isinstance(obj, MustUse):
        return
    seen.add(id(obj))
    obj._MustUse__silence = True
    for value in vars(obj).values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            _silence(item, seen)


@pytest.fixture(scope="module")
def setup():
    cfg = ODD
    top, extra = BLOCKS["layer_top"](cfg, 0)
    _silence(top)  # built for its manifest entry, never elaborated
    manifest = {"config": cfg.to_dict(), "tag_bits": top.tag_bits, **extra}
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, 5)
    strides = tuple(8 << i for i in range(cfg.levels))
    make = lambda s: layer_inputs(  # noqa: E731
        "decoder", input_hw=(16, 48), strides=strides, d_model=cfg.d_model, queries=3, seed=s
    )
    ql = fused.quantize_layer(cfg, params, fused.calibrate(cfg, params, [make(6)]))
    inputs = make(5)
    return cfg, manifest, ql, inputs, fused.layer(cfg, ql, inputs)


def test_images_follow_the_manifest(setup):
    cfg, manifest, ql, inputs, model = setup
    run = LayerRun(manifest)
    mem = manifest["layer_memory"]
    beats = {name: r["beats"] for name, r in mem["records"].items()}
    word = mem["word_bytes"]
    consts = run.constants_image(ql)
    const_beats = sum(c["count"] * beats[c["kind"]] for c in mem["constants"])
    assert len(consts) == const_beats * word
    assert const_beats == perf.layer_constant_beats(cfg)  # the cycle model's constants phase
    # the value projection's first weight word: input channels 0.. of output channel 0
    first = int.from_bytes(consts[: beats["value_w"] * word], "little")
    lane0 = first & 0xFF
    assert (lane0 - 256 if lane0 > 127 else lane0) == ql.value.weight[0, 0]
    nv, nq = model.x.shape[0], model.query.shape[0]
    assert len(run.x_image(model.x)) == nv * run.chunks * beats["x"] * word
    queries = run.query_image(model.query, model.core_inputs.ref_w)
    assert len(queries) == nq * (beats["ref"] + run.chunks * beats["query"]) * word
    plan = run.plan(ql, model.x, model.query, model.core_inputs.ref_w, inputs.shapes, base=5)
    addrs = [a for a, _ in plan.regions]
    assert all(a % word == 0 for a in addrs) and addrs == sorted(addrs)
    assert plan.registers["X_BASE"] >= plan.registers["CONST_BASE"] + len(consts)
    assert plan.out_base >= plan.registers["QUERY_BASE"] + len(queries)
    h, w = inputs.shapes[1]
    assert plan.registers["SHAPE1"] == h << 16 | w
    # outputs: words of layer_out_bits, channel 0 lowest, signed
    bits = cfg.layer_out_bits
    row = np.arange(cfg.d_model) - cfg.d_model // 2
    raw = sum((int(v) & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(row))
    got = run.outputs(raw.to_bytes(run.out_bytes, "little"), 1)
    assert got.tolist() == [row.tolist()]


def test_bad_runs_are_refused(setup):
    cfg, manifest, ql, inputs, model = setup
    with pytest.raises(ValueError, match="layer_memory"):
        LayerRun({"config": manifest["config"], "tag_bits": 16})
    run = LayerRun(manifest)
    ref_w = model.core_inputs.ref_w
    with pytest.raises(ValueError, match="queries=0"):
        run.plan(ql, model.x, model.query[:0], ref_w[:0], inputs.shapes)
    with pytest.raises(ValueError, match="pixels"):
        run.plan(ql, model.x[1:], model.query, ref_w, inputs.shapes)
    with pytest.raises(ValueError, match="ref_w"):
        run.query_image(model.query, ref_w[:1])
    with pytest.raises(ValueError, match="does not fit"):
        run.x_image(np.full_like(model.x, 1 << 10))
    with pytest.raises(ValueError, match="d_model=24"):
        run.x_image(model.x[:, 1:])
    with pytest.raises(ValueError, match="float64"):
        run.query_image(model.query.astype(float), ref_w)


def test_layer_top_refuses_output_words_that_straddle_beats():
    """The store packs whole words into the bus word (lanes * value_bits)."""
    from rtl.layer.layer_top import LayerTop

    with pytest.raises(ValueError, match=r"layer_out_bits=12 must divide the bus word"):
        LayerTop(ODD.replace(layer_out_bits=12))
