"""The bit-true fused layer (``sim.layer``): its float error against transformers'
``DeformableDetrMultiscaleDeformableAttention`` (weights from a seeded initialization and from
a model transformers builds from a config), its integer steps against plain rational
arithmetic, and clear errors for bad inputs."""

import dataclasses
from fractions import Fraction

import numpy as np
import oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.config import preset
from sim import bittrue, golden
from sim import layer as fused
from sim.workload import layer_inputs

#: default formats on a small Deformable DETR: 4 heads of 16 channels, 3 levels of 4 points
SMALL = preset(
    "detr",
    d_model=64,
    heads=4,
    levels=3,
    points=4,
    lanes=4,
    window_rows=(),
    max_shapes=((9, 13), (5, 7), (3, 4)),
)
SMALL_HW, SMALL_STRIDES = (72, 104), (8, 16, 32)
#: detr's shape (256 channels, 8 heads, 4 levels of 4 points) on a 128x160 image
DETR_SMALL = preset("detr", window_rows=(), max_shapes=((16, 20), (8, 10), (4, 5), (2, 3)))


def _inputs(cfg, kind, seed, hw, strides):
    queries = 300 if kind == "decoder" else None
    return layer_inputs(
        kind, input_hw=hw, strides=strides, d_model=cfg.d_model, queries=queries, seed=seed
    )


def _rel(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def _params(cfg, weights, seed):
    if weights == "seeded":
        return golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    return oracles.params_of(
        oracles.built_layer(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    )


def _calibrated(cfg, params, kind, hw, strides, seed):
    """Scales recorded on eight seeded inputs (seeds seed+1 .. seed+8) of the same model."""
    samples = [_inputs(cfg, kind, seed + 1 + i, hw, strides) for i in range(8)]
    scales = fused.calibrate(cfg, params, samples)
    return scales, fused.quantize_layer(cfg, params, scales)


@pytest.mark.parametrize("weights", ["seeded", "transformers-built"])
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize(
    "cfg,hw,strides",
    [(SMALL, SMALL_HW, SMALL_STRIDES), (DETR_SMALL, (128, 160), (8, 16, 32, 64))],
    ids=["64ch", "256ch"],
)
def test_layer_is_within_three_percent_of_transformers(cfg, hw, strides, kind, weights):
    """Scales recorded on eight inputs, the layer run on another (activations past the
    calibrated range saturate, as they would in use); rel-L2 of the dequantized output
    against transformers' layer (float64) with the same float weights <= 0.03."""
    seed = 11
    params = _params(cfg, weights, seed)
    scales, ql = _calibrated(cfg, params, kind, hw, strides, seed)
    run = _inputs(cfg, kind, seed, hw, strides)
    got = fused.layer(cfg, ql, run).dequantize(scales)
    want = oracles.run(oracles.layer_with(params), run.query, run.ref, run.x, run.shapes)
    rel = _rel(got, want)
    print(f"{cfg.d_model}ch {kind} {weights}: rel-L2 {rel:.4f} (seed {seed})")
    assert rel <= 0.03, f"rel-L2 {rel:.4f} (seed {seed})"


def test_intermediates_approximate_the_float_layer():
    """Each projection's words, read back in their units, are close to the float projection,
    and the probabilities to the float softmax."""
    cfg, seed = SMALL, 3
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    scales, ql = _calibrated(cfg, params, "decoder", SMALL_HW, SMALL_STRIDES, seed)
    run = _inputs(cfg, "decoder", seed, SMALL_HW, SMALL_STRIDES)
    r = fused.layer(cfg, ql, run)
    value = (run.x @ params.value_w + params.value_b).reshape(r.value.shape)
    assert _rel(r.value * scales.value, value) < 0.03
    offsets = (run.query @ params.offset_w + params.offset_b).reshape(r.offsets.shape)
    assert _rel(r.offsets / (1 << cfg.coord_frac_bits), offsets) < 0.03
    logits = (run.query @ params.attention_w + params.attention_b).reshape(r.logits.shape)
    assert _rel(r.logits / (1 << cfg.logit_frac_bits), logits) < 0.03
    got = bittrue.softmax(cfg, r.logits) / (1 << cfg.prob_bits)
    assert np.abs(got - golden.softmax(logits)).max() < 0.02


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(1, 4),
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 5),
)
def test_projection_matches_rational_arithmetic(data, rows, n_in, n_out):
    """``Projection`` against Fractions: round half up of ``(a @ w + bias) * mult / 2**shift``,
    then saturation."""
    ints = lambda lo, hi, n: data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))  # noqa: E731
    a = np.array(ints(-127, 127, rows * n_in)).reshape(rows, n_in)
    w = np.array(ints(-127, 127, n_in * n_out)).reshape(n_in, n_out)
    bias = np.array(ints(-5000, 5000, n_out))
    mult = np.array(ints(1, 65535, n_out))
    shift = np.array(ints(0, 30, n_out))
    lo, hi = -data.draw(st.integers(1, 300)), data.draw(st.integers(1, 300))
    got = fused.Projection(w, bias, mult, shift, lo, hi)(a)
    for i in range(rows):
        for o in range(n_out):
            acc = sum(int(a[i, k]) * int(w[k, o]) for k in range(n_in)) + int(bias[o])
            exact = Fraction(acc * int(mult[o]), 2 ** int(shift[o]))
            rounded = (exact + Fraction(1, 2)).__floor__()
            assert got[i, o] == min(max(rounded, lo), hi), (i, o)


@pytest.mark.parametrize("bits", [4, 16, 24])
def test_requantizer_is_within_one_part_in_two_to_the_bits(bits):
    cfg = SMALL.replace(requant_bits=bits)
    acc = cfg.proj_acc_bits
    gain = np.exp2(np.random.default_rng(bits).uniform(-acc - 1, bits - 1, 200))  # seed: bits
    mult, shift = fused.requantizer(cfg, gain, "test")
    assert mult.min() >= 1 << (bits - 1) and mult.max() < 1 << bits and shift.min() >= 0
    assert np.all(np.abs(mult * np.exp2(-shift.astype(float)) / gain - 1) <= 2.0**-bits)
    # below 2**-(acc+1) the shift is capped, and every accumulator rounds to 0
    tiny = np.exp2(-np.arange(acc + 2, acc + 2 * bits + 40, 3.7))
    mult, shift = fused.requantizer(cfg, tiny, "test")
    assert shift.max() <= acc + bits
    top = (1 << (acc - 1)) - 1
    project = fused.Projection(
        np.ones((1, tiny.size), np.int64),
        np.zeros(tiny.size, np.int64),
        mult,
        shift,
        -(1 << 40),
        1 << 40,
    )
    assert not project(np.array([[top], [-top]])).any()
    with pytest.raises(ValueError, match="test channel 1: .*allowed gains below"):
        fused.requantizer(cfg, np.array([1.0, 2.0**bits]), "test")
    with pytest.raises(ValueError, match="finite and positive"):
        fused.requantizer(cfg, np.array([np.nan]), "test")


def test_weights_are_quantized_per_output_channel():
    """Each weight within half a step of its float value (step: its column's largest
    magnitude over 127); an all-zero column (transformers' initial attention weights) gets
    codes 0 and a bias in its own units."""
    cfg = SMALL
    layer = oracles.built_layer(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed=0)
    params = oracles.params_of(layer)
    scales, ql = _calibrated(cfg, params, "encoder", SMALL_HW, SMALL_STRIDES, 0)
    for proj, w, s_in in (
        (ql.value, params.value_w, scales.x),
        (ql.offset, params.offset_w, scales.query),
    ):
        w = w * s_in[:, None]  # the input scales fold into the weights
        step = np.abs(w).max(axis=0) / 127
        step = np.where(step > 0, step, 1.0)
        assert np.all(np.abs(proj.weight * step - w) <= step / 2 + 1e-12)
        assert np.abs(proj.weight).max() <= 127
    assert not ql.attention.weight.any() and not ql.offset.weight.any()
    # the offsets are the bias alone: the ring of directions, in 2**-F pixel words
    words = ql.offset(np.zeros((1, cfg.d_model), dtype=np.int64))[0]
    assert np.array_equal(words, np.round(params.offset_b * (1 << cfg.coord_frac_bits)))


def test_fwp_mask_skips_the_value_projection_and_pap_the_samples():
    cfg, seed = SMALL, 5
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    scales, ql = _calibrated(cfg, params, "encoder", SMALL_HW, SMALL_STRIDES, seed)
    run = _inputs(cfg, "encoder", seed, SMALL_HW, SMALL_STRIDES)
    args = (cfg, ql, run)
    dense = fused.layer(*args)
    nv, c = run.x.shape
    assert dense.macs["value"] == (nv * c * c, 0)
    ones = fused.layer(*args, pixel_mask=np.ones(nv, dtype=bool))
    assert np.array_equal(ones.out, dense.out)
    mask = np.random.default_rng(seed).random(nv) < 0.7  # seed 5
    masked = fused.layer(*args, pixel_mask=mask)
    assert not masked.value[~mask].any()
    assert np.array_equal(masked.value[mask], dense.value[mask])
    assert masked.macs["value"] == (int(mask.sum()) * c * c, int((~mask).sum()) * c * c)
    assert not np.array_equal(masked.out, dense.out)
    pruned = fused.layer(*args, pap=True)
    kept, skipped = pruned.macs["sampling"]
    assert skipped == pruned.core.points_pruned * 4 * cfg.head_dim > 0
    assert kept + skipped == dense.macs["sampling"][0]
    zero = fused.layer(cfg.replace(tau_p=0.0), *args[1:], pap=True)
    assert np.array_equal(zero.out, dense.out)


def test_bad_inputs_name_the_parameter():
    cfg = SMALL
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, 1)
    scales, ql = _calibrated(cfg, params, "decoder", SMALL_HW, SMALL_STRIDES, 1)
    run = _inputs(cfg, "decoder", 1, SMALL_HW, SMALL_STRIDES)
    x = run.x.copy()
    x[3, 5] = np.nan
    bad = lambda **kw: dataclasses.replace(run, **kw)  # noqa: E731
    with pytest.raises(ValueError, match=r"x holds NaN or Inf \(first at index \(3, 5\)\)"):
        fused.layer(cfg, ql, bad(x=x))
    with pytest.raises(ValueError, match=r"query must have shape \(300, 64\)"):
        fused.layer(cfg, ql, bad(query=run.query[:, :10]))
    with pytest.raises(ValueError, match=r"ref must lie in \[0.0, 1.0\]"):
        fused.layer(cfg, ql, bad(ref=run.ref + 1.5))
    with pytest.raises(ValueError, match="pixel_mask must be a bool array"):
        fused.layer(cfg, ql, run, pixel_mask=np.ones(3))
    with pytest.raises(ValueError, match="does not fit the level buffer"):
        fused.layer(cfg, ql, bad(shapes=np.array([(10, 13), (5, 7), (3, 4)])))
    with pytest.raises(ValueError, match="at least one sample"):
        fused.calibrate(cfg, params, [])
    other = golden.LayerParams.random(32, 4, 3, 4, 1)
    with pytest.raises(ValueError, match=r"\(d_model, heads, levels, points\)=\(32, 4, 3, 4\)"):
        fused.quantize_layer(cfg, other, scales)
    huge_bias = golden.LayerParams(**{**params.__dict__, "value_b": params.value_b * 1e9})
    with pytest.raises(ValueError, match="value projection bias of channel .* accumulator"):
        fused.quantize_layer(cfg, huge_bias, scales)
    with pytest.raises(ValueError, match="requant_bits=24 .* allowed requant_bits <= "):
        preset("detr", act_bits=16, weight_bits=16, requant_bits=24)
    with pytest.raises(ValueError, match=r"act_bits=17 is out of range: allowed \[2, 16\]"):
        preset("detr", act_bits=17)
