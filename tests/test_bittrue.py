"""The bit-true model: exact against a scalar re-statement of its contract, within its error
bound of the float model, and strict about its inputs."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gen.config import preset
from gen.demo import rel_l2
from sim import bittrue, golden
from sim import workload as wl


def _scalar_core(cfg, qc, pap=False, pixel_mask=None):
    """A plain-Python, one-sample-at-a-time statement of the contract in sim/bittrue.py."""
    f = cfg.coord_frac_bits
    one = 1 << f
    nq, m, lv, p = qc.probs.shape
    out = np.zeros((nq, m, cfg.head_dim), dtype=np.int64)
    importance = [0] * qc.value.shape[0]
    tau = cfg.tau_p_q if pap else 0
    for q in range(nq):
        for h in range(m):
            acc = [0] * cfg.head_dim
            for level in range(lv):
                height, width = int(qc.shapes[level][0]), int(qc.shapes[level][1])
                for pt in range(p):
                    prob = int(qc.probs[q, h, level, pt])
                    if prob < tau:
                        continue
                    px = int(qc.ref_w[q, level, 0]) + int(qc.offsets[q, h, level, pt, 0]) - one // 2
                    py = int(qc.ref_w[q, level, 1]) + int(qc.offsets[q, h, level, pt, 1]) - one // 2
                    x0, y0 = math.floor(px / one), math.floor(py / one)
                    fx, fy = px - x0 * one, py - y0 * one
                    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                        x, y = x0 + dx, y0 + dy
                        if not (0 <= x < width and 0 <= y < height):
                            continue
                        wx = fx if dx else one - fx
                        wy = fy if dy else one - fy
                        num = prob * wx * wy
                        s = cfg.coeff_shift
                        coeff = (num + (1 << (s - 1))) // (1 << s) if s else num
                        pixel = int(qc.level_start[level]) + y * width + x
                        importance[pixel] += coeff
                        if pixel_mask is not None and not pixel_mask[pixel]:
                            continue
                        for c in range(cfg.head_dim):
                            acc[c] += coeff * int(qc.value[pixel, h, c])
            r = cfg.out_shift
            lim = 1 << (cfg.out_bits - 1)
            for c in range(cfg.head_dim):
                v = (acc[c] + (1 << (r - 1))) // (1 << r) if r else acc[c]
                out[q, h, c] = min(max(v, -lim), lim - 1)
    cap = (1 << cfg.importance_bits) - 1
    return out, np.array([min(v, cap) for v in importance])


def _small_case(cfg, seed, queries=7, offset_scale=3.0):
    rng = np.random.default_rng(seed)
    shapes = np.array(
        [(rng.integers(1, mh + 1), rng.integers(1, mw + 1)) for mh, mw in cfg.max_shapes]
    )
    ls = golden.level_start_of(shapes)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = rng.standard_normal((nv, cfg.heads, cfg.head_dim)) * rng.uniform(0.1, 3, cfg.head_dim)
    ref = rng.uniform(0, 1, (queries, cfg.levels, 2))
    offsets = rng.standard_normal((queries, cfg.heads, cfg.levels, cfg.points, 2)) * offset_scale
    logits = rng.standard_normal((queries, cfg.heads, cfg.levels * cfg.points)) * 2
    probs = golden.softmax(logits).reshape(queries, cfg.heads, cfg.levels, cfg.points)
    return value, shapes, ls, ref, offsets, probs


CONFIGS = {
    "tiny": preset("tiny"),
    "tiny-coarse": preset(
        "tiny",
        coord_frac_bits=3,
        prob_bits=6,
        coeff_bits=5,
        out_frac_bits=0,
        value_bits=4,
        acc_bits=16,
        offset_bits=9,
        tau_p=0.1,
    ),
    "tiny-head-scale": preset("tiny", value_scale="head", out_frac_bits=12, tau_p=0.05),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("pap", [False, True])
def test_vectorized_model_equals_scalar_contract(name, seed, pap):
    cfg = CONFIGS[name]
    case = _small_case(cfg, seed)
    qc = bittrue.quantize_core(cfg, *case)
    mask = np.random.default_rng(seed).random(qc.value.shape[0]) < 0.8
    for pixel_mask in (None, mask):
        got = bittrue.core(cfg, qc, pap=pap, pixel_mask=pixel_mask)
        want_out, want_importance = _scalar_core(cfg, qc, pap, pixel_mask)
        np.testing.assert_array_equal(got.out, want_out, err_msg=f"{name} seed {seed}")
        np.testing.assert_array_equal(
            got.importance, want_importance, err_msg=f"{name} seed {seed}"
        )


def test_quantization_of_the_boundary():
    cfg = preset("tiny")
    shapes = np.array([(9, 11), (5, 6)])
    ls = golden.level_start_of(shapes)
    value = np.zeros((9 * 11 + 5 * 6, 2, 16))
    value[0, 0, 0], value[1, 0, 0] = 2.0, -0.5  # channel 0 of head 0: scale 2/127
    ref = np.array([[[0.5, 0.25], [1.0, 0.0]]])
    offsets = np.zeros((1, 2, 2, 2, 2))
    offsets[0, 0, 0, 0] = (100.0, -100.0)  # saturates
    offsets[0, 0, 0, 1] = (0.3, -1.7)
    probs = np.full((1, 2, 2, 2), 0.25)
    qc = bittrue.quantize_core(cfg, value, shapes, ls, ref, offsets, probs)
    assert qc.value[0, 0, 0] == 127 and qc.value[1, 0, 0] == -32  # -31.75
    assert qc.scale[0, 0] == pytest.approx(2 / 127) and qc.scale[1, 3] == 1.0
    assert qc.ref_w[0, 0].tolist() == [5.5 * 256, 2.25 * 256]
    assert qc.ref_w[0, 1].tolist() == [6 * 256, 0]
    assert qc.offsets[0, 0, 0, 0].tolist() == [cfg.offset_max, cfg.offset_min]
    assert qc.offsets[0, 0, 0, 1].tolist() == [77, -435]  # 76.8 -> 77, -435.2 -> -435
    assert qc.probs[0, 0, 0, 0] == 1024


def test_saturated_offsets_land_off_every_map():
    cfg = preset("tiny")
    for ref_w in (0, cfg.max_side << cfg.coord_frac_bits):
        for off in (cfg.offset_min, cfg.offset_max):
            i0, _ = bittrue.coordinates(cfg, np.int64(ref_w), np.int64(off))
            assert i0 >= cfg.max_side or i0 + 1 < 0


def test_coefficients_of_a_full_probability_sum_to_one():
    cfg = preset("detr")
    rng = np.random.default_rng(0)
    fx, fy = (rng.integers(0, 1 << cfg.coord_frac_bits, 1000) for _ in range(2))
    coeff = bittrue.coefficients(cfg, np.full(1000, cfg.prob_one), fx, fy, np.ones((1000, 4), bool))
    assert np.all(np.abs(coeff.sum(-1) - cfg.coeff_one) <= 2)
    assert coeff.max() <= cfg.coeff_one


@given(seed=st.integers(0, 2**32 - 1))
def test_zero_threshold_pap_equals_dense(seed):
    cfg = preset("tiny", tau_p=0.0)
    qc = bittrue.quantize_core(cfg, *_small_case(cfg, seed))
    dense, pruned = bittrue.core(cfg, qc), bittrue.core(cfg, qc, pap=True)
    np.testing.assert_array_equal(dense.out, pruned.out)
    assert pruned.points_pruned == 0


@given(seed=st.integers(0, 2**32 - 1))
def test_all_ones_mask_equals_dense(seed):
    cfg = preset("tiny")
    qc = bittrue.quantize_core(cfg, *_small_case(cfg, seed))
    ones = np.ones(qc.value.shape[0], bool)
    np.testing.assert_array_equal(
        bittrue.core(cfg, qc).out, bittrue.core(cfg, qc, pixel_mask=ones).out
    )


@given(seed=st.integers(0, 2**32 - 1), pap=st.booleans())
def test_bittrue_within_its_bound_of_float(seed, pap):
    """Each output differs from the float model of the *quantized* inputs by at most the
    rounding the contract allows: 1/2 output ulp, plus per corner 1/2 coefficient ulp times
    |value|. (Coordinates and probabilities are exact after quantization.)"""
    cfg = preset("tiny")
    qc = bittrue.quantize_core(cfg, *_small_case(cfg, seed))
    got = bittrue.core(cfg, qc, pap=pap)
    f = 1 << cfg.coord_frac_bits
    shapes = qc.shapes
    wh = np.stack([shapes[:, 1], shapes[:, 0]], -1)[None, None, :, None, :]
    px = (qc.ref_w[:, None, :, None, :] + qc.offsets) / f
    loc = px / wh  # the float model's px = loc*W - 0.5 then equals the quantized px - 0.5
    probs = qc.probs / cfg.prob_one
    if pap:
        probs = np.where(qc.probs < cfg.tau_p_q, 0.0, probs)
    want = golden.msda_core(qc.value.astype(np.float64), shapes, qc.level_start, loc, probs)
    want = want.reshape(got.out.shape) * (1 << cfg.out_frac_bits)
    corners = cfg.levels * cfg.points * 4
    bound = 0.5 + corners * 0.5 * cfg.value_max * (1 << cfg.out_frac_bits) / cfg.coeff_one + 1e-9
    assert np.abs(got.out - want).max() <= bound, f"seed {seed}"


@pytest.mark.parametrize("seed", [0, 1])
def test_default_formats_reach_the_error_target_on_synthetic_workloads(seed):
    """rel-L2 of the dequantized bit-true core vs the float core <= 0.015 (default formats)."""
    cfg = preset("detr")
    for w in (
        wl.encoder(input_hw=(200, 334), seed=seed),
        wl.decoder(queries=300, input_hw=(400, 667), seed=seed),
    ):
        qc = bittrue.quantize_core(cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets, w.probs)
        got = bittrue.core(cfg, qc).dequantize(cfg, qc.scale)
        want = golden.msda_core(
            w.value.astype(np.float64), w.shapes, w.level_start, w.locations, w.probs
        )
        err = rel_l2(got, want)
        print(f"{w.name}: rel-L2 {err:.5f}")
        assert err <= 0.015, f"{w.name}: rel-L2 {err}"


def test_outputs_saturate_instead_of_wrapping():
    cfg = preset("tiny")
    shapes = np.array([(1, 1), (1, 1)])
    value = np.full((2, 2, 16), 1.0)
    ref = np.full((1, 2, 2), 0.5)
    probs = np.ones((1, 2, 2, 2))  # four points at probability 1: output 4x the largest value
    qc = bittrue.quantize_core(
        cfg, value, shapes, golden.level_start_of(shapes), ref, np.zeros((1, 2, 2, 2, 2)), probs
    )
    out = bittrue.core(cfg, qc).out
    assert np.all(out == (1 << (cfg.out_bits - 1)) - 1)


BAD_INPUTS = [
    ("value", lambda c: c[0].__setitem__((0, 0, 0), np.nan), "value holds NaN"),
    ("ref", lambda c: c[3].__setitem__((0, 0, 0), 1.5), r"ref must lie in \[0.0, 1.0\]"),
    ("ref-inf", lambda c: c[3].__setitem__((0, 0, 0), np.inf), "ref holds NaN or Inf"),
    ("offsets", lambda c: c[4].__setitem__((0, 0, 0, 0, 0), -np.inf), "offsets holds NaN or Inf"),
    ("probs", lambda c: c[5].__setitem__((0, 0, 0, 0), 1.01), r"probs must lie in \[0.0, 1.0\]"),
    (
        "probs-neg",
        lambda c: c[5].__setitem__((0, 0, 0, 0), -0.01),
        r"probs must lie in \[0.0, 1.0\]",
    ),
]


@pytest.mark.parametrize("name,spoil,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_are_refused(name, spoil, message):
    cfg = preset("tiny")
    case = list(_small_case(cfg, 0))
    spoil(case)
    with pytest.raises(ValueError, match=message):
        bittrue.quantize_core(cfg, *case)


def test_bad_shapes_are_refused():
    cfg = preset("tiny")
    value, shapes, ls, ref, offsets, probs = _small_case(cfg, 0)
    with pytest.raises(ValueError, match="does not fit the level buffer"):
        bittrue.quantize_core(cfg, value, shapes * 10, ls, ref, offsets, probs)
    with pytest.raises(ValueError, match="level_start.*inconsistent"):
        bittrue.quantize_core(cfg, value, shapes, ls + 1, ref, offsets, probs)
    with pytest.raises(ValueError, match="value must have shape"):
        bittrue.quantize_core(cfg, value[:-1], shapes, ls, ref, offsets, probs)
    with pytest.raises(ValueError, match="offsets must have shape"):
        bittrue.quantize_core(cfg, value, shapes, ls, ref, offsets[:, :1], probs)
    qc = bittrue.quantize_core(cfg, value, shapes, ls, ref, offsets, probs)
    with pytest.raises(ValueError, match="pixel_mask must be a bool array"):
        bittrue.core(cfg, qc, pixel_mask=np.ones(3, bool))


@pytest.mark.parametrize("seed", range(6))
def test_fwp_mask_is_the_float_rule_in_integers(seed):
    """bittrue.fwp_mask keeps exactly the pixels golden.fwp_mask keeps at the same tau_f (a
    multiple of 2**-tau_f_bits, so both compare the same rational numbers), counters drawn so
    that ties with the threshold occur."""
    rng = np.random.default_rng(seed)
    cfg = preset("tiny", tau_f_bits=int(rng.integers(2, 12)))
    shapes = np.array([(int(rng.integers(1, 10)), int(rng.integers(1, 12))), (1, 1)])
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    importance = rng.integers(0, 8, nv) * int(rng.integers(1, 5000))
    for tau_f_q in (0, 1, int(rng.integers(0, 1 << cfg.tau_f_bits)), (1 << cfg.tau_f_bits) - 1):
        keep = bittrue.fwp_mask(cfg, importance, shapes, tau_f_q)
        tau = tau_f_q / (1 << cfg.tau_f_bits)
        # Exact rationals: importance >= tau * sum / n  <=>  importance * n * 2**T >= tau_q * sum;
        # the float rule agrees wherever it is not within rounding of a tie.
        want = np.ones(nv, dtype=bool)
        start = 0
        for h, w in shapes:
            n = int(h * w)
            part = [int(v) for v in importance[start : start + n]]
            total = sum(part)
            want[start : start + n] = [
                v * n * (1 << cfg.tau_f_bits) >= tau_f_q * total for v in part
            ]
            float_rule = np.array(part) >= tau * (total / n)
            ties = np.isclose(np.array(part, dtype=float), tau * total / n)
            np.testing.assert_array_equal(float_rule[~ties], want[start : start + n][~ties])
            start += n
        np.testing.assert_array_equal(keep, want, err_msg=f"seed {seed}, tau_f_q {tau_f_q}")
    assert bittrue.fwp_mask(cfg, importance, shapes, 0).all()
    assert bittrue.fwp_mask(cfg, np.zeros(nv, np.int64), shapes, 255 % (1 << cfg.tau_f_bits)).all()


def test_fwp_threshold_and_mask_refuse_bad_input():
    cfg = preset("tiny")
    with pytest.raises(ValueError, match=r"tau_f_q=256 is out of range: allowed \[0, 255\]"):
        bittrue.fwp_threshold(cfg, 10, 4, 256)
    with pytest.raises(ValueError, match=r"pixels=0 is out of range"):
        bittrue.fwp_threshold(cfg, 10, 0)
    with pytest.raises(ValueError, match=r"importance must have shape \(7,\)"):
        bittrue.fwp_mask(cfg, np.zeros(6), [(2, 3), (1, 1)])
    assert bittrue.fwp_threshold(cfg, 100, 10, 128) == 5  # 0.5 x mean 10
    assert bittrue.fwp_threshold(cfg, 101, 10, 128) == 6  # 0.5 x 10.1, rounded up
    assert bittrue.fwp_threshold(cfg, 1000, 10, 0) == 0
