"""The float golden model against independent oracles: the C++ kernel of torch-ms-deform-attn
(a standalone re-implementation of the original MSDeformAttn kernel), transformers' pure-PyTorch
op and its Deformable DETR attention layer; the two oracles are also checked against each
other."""

import os

import numpy as np
import oracles
import pytest
from hypothesis import given
from hypothesis import strategies as st
from needs import oracle

from sim import golden

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = oracle("torch")
ms_deform_attn = oracle("torch_ms_deform_attn").ms_deform_attn

SHAPE_SETS = [
    [(7, 9), (3, 5), (1, 1)],  # odd widths, a 1x1 level
    [(1, 1)],
    [(1, 13), (13, 1)],  # single row, single column
    [(16, 16), (8, 8), (4, 4), (2, 2)],
    [(25, 42), (13, 21), (7, 11), (4, 6)],  # the scaled encoder of the core issue
    [(5, 3), (2, 7), (1, 2)],
]


def _case(rng, shapes, heads, head_dim, queries, points, spread=(-0.3, 1.3)):
    shapes = np.array(shapes, dtype=np.int64)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = rng.standard_normal((nv, heads, head_dim))
    loc = rng.uniform(*spread, (queries, heads, len(shapes), points, 2))
    weights = rng.uniform(0, 1, (queries, heads, len(shapes), points))
    return value, shapes, golden.level_start_of(shapes), loc, weights


def _oracle(value, shapes, level_start, loc, weights, dtype):
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a[None])).to(dtype)  # noqa: E731
    out = ms_deform_attn(
        t(value), torch.from_numpy(shapes), torch.from_numpy(level_start), t(loc), t(weights)
    )
    return out[0].double().numpy()


def _rel(got, want):
    return np.linalg.norm(got - want) / np.linalg.norm(want)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape_set", range(len(SHAPE_SETS)))
def test_core_matches_cpp_kernel_fp64_and_fp32(seed, shape_set):
    rng = np.random.default_rng(1000 * shape_set + seed)
    heads, head_dim = [(1, 3), (2, 5), (8, 32)][seed]
    case = _case(rng, SHAPE_SETS[shape_set], heads, head_dim, queries=17, points=3)
    want64 = _oracle(*case, torch.float64)
    got64 = golden.msda_core(*case)
    assert np.abs(got64 - want64).max() <= 1e-10 * max(1.0, np.abs(want64).max()), f"seed {seed}"
    got32 = golden.msda_core(*(a.astype(np.float32) if a.dtype == np.float64 else a for a in case))
    want32 = _oracle(*case, torch.float32)
    assert got32.dtype == np.float32
    assert _rel(got32.astype(np.float64), want32) <= 1e-5, f"seed {seed}"


@pytest.mark.parametrize("shape_set", range(len(SHAPE_SETS)))
def test_the_two_oracles_agree(shape_set):
    """torch-ms-deform-attn (a standalone re-implementation of the original kernel) against
    transformers' pure-PyTorch op (grid_sample): written apart, they must agree, so neither
    is trusted alone."""
    op = oracle("transformers.models.deformable_detr.modeling_deformable_detr")
    rng = np.random.default_rng(77 + shape_set)
    value, shapes, level_start, loc, weights = _case(rng, SHAPE_SETS[shape_set], 4, 8, 19, 3)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a[None]))  # noqa: E731
    pure = op.MultiScaleDeformableAttention()(
        t(value),
        torch.from_numpy(shapes),
        [tuple(s) for s in shapes.tolist()],
        torch.from_numpy(level_start),
        t(loc),
        t(weights),
        64,
    )[0].numpy()
    kernel = _oracle(value, shapes, level_start, loc, weights, torch.float64)
    assert np.abs(pure.reshape(kernel.shape) - kernel).max() <= 1e-10 * max(
        1.0, np.abs(kernel).max()
    )


def test_core_on_pixel_borders_and_map_edges():
    """Locations exactly on pixel centres, on the half-pixel lines between them, on the map
    edges and just outside (where only part of the corners contribute)."""
    rng = np.random.default_rng(7)
    shapes = np.array([(6, 9), (3, 4)])
    ls = golden.level_start_of(shapes)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = rng.standard_normal((nv, 2, 4))
    grid = np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 8.0, 8.5, 9.0, -0.5, -1.0, 9.5])
    xs = (grid + 0.5) / 9  # px = grid for level 0
    ys = (grid[::-1] + 0.5) / 6
    loc = np.stack(np.broadcast_arrays(xs[:, None], ys[None, :]), -1).reshape(-1, 2)
    nq = loc.shape[0]
    loc = np.broadcast_to(loc[:, None, None, None, :], (nq, 2, 2, 1, 2)).copy()
    weights = rng.uniform(0, 1, (nq, 2, 2, 1))
    want = _oracle(value, shapes, ls, loc, weights, torch.float64)
    got = golden.msda_core(value, shapes, ls, loc, weights)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_core_by_hand():
    """One sample between four pixels of a 2x2 map, and one off the map."""
    value = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1)  # row-major (y, x)
    shapes, ls = np.array([[2, 2]]), np.array([0])
    # px = 0.25*2*... choose px = 0.5, py = 0.25: loc = (px+0.5)/2, (py+0.5)/2
    loc = np.array([[[[[0.5, 0.375]]]], [[[[1.5, 1.5]]]]])
    weights = np.array([[[[0.5]]], [[[1.0]]]])
    out = golden.msda_core(value, shapes, ls, loc, weights)
    top = 0.5 * 1 + 0.5 * 2
    bottom = 0.5 * 3 + 0.5 * 4
    assert out[0, 0] == pytest.approx(0.5 * (0.75 * top + 0.25 * bottom))
    assert out[1, 0] == 0.0


def _random_case(seed):
    rng = np.random.default_rng(seed)
    return _case(rng, [(5, 7), (3, 2), (1, 1)], 2, 3, queries=9, points=2)


@given(seed=st.integers(0, 2**32 - 1))
def test_pap_with_zero_threshold_equals_dense(seed):
    case = _random_case(seed)
    np.testing.assert_array_equal(golden.msda_core(*case, tau_p=0.0), golden.msda_core(*case))


@given(seed=st.integers(0, 2**32 - 1), tau=st.floats(0.0, 1.0))
def test_pap_drops_exactly_the_points_below_threshold(seed, tau):
    value, shapes, ls, loc, weights = _random_case(seed)
    kept = np.where(weights < tau, 0.0, weights)
    want = _oracle(value, shapes, ls, loc, kept, torch.float64)
    got = golden.msda_core(value, shapes, ls, loc, weights, tau_p=tau)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1))
def test_all_ones_fwp_mask_equals_dense_and_mask_reads_zero(seed):
    value, shapes, ls, loc, weights = _random_case(seed)
    ones = np.ones(value.shape[0], bool)
    dense = golden.msda_core(value, shapes, ls, loc, weights)
    np.testing.assert_array_equal(
        golden.msda_core(value, shapes, ls, loc, weights, pixel_mask=ones), dense
    )
    mask = np.random.default_rng(seed).random(value.shape[0]) < 0.5
    zeroed = np.where(mask[:, None, None], value, 0.0)
    want = _oracle(zeroed, shapes, ls, loc, weights, torch.float64)
    got = golden.msda_core(value, shapes, ls, loc, weights, pixel_mask=mask)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_pixel_importance_is_the_gradient_of_the_output_wrt_the_value():
    """Independent check of FWP importance: with one channel and all-ones values, the output is
    linear in each pixel, and d(sum of outputs)/d(value[pixel]) = sum of prob x weight over the
    samples touching it; torch autograd computes that through the C++ kernel."""
    value, shapes, ls, loc, weights = _random_case(11)
    nv = value.shape[0]
    v = torch.ones((1, nv, 2, 1), dtype=torch.float64, requires_grad=True)
    out = ms_deform_attn(
        v,
        torch.from_numpy(shapes),
        torch.from_numpy(ls),
        torch.from_numpy(loc[None]),
        torch.from_numpy(weights[None]),
    )
    out.sum().backward()
    want = v.grad[0, :, :, 0].sum(-1).numpy()  # summed over heads
    got = golden.pixel_importance(shapes, ls, loc, weights)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_fwp_mask_rule():
    importance = np.array([0.0, 1.0, 2.0, 5.0, 0.1, 0.3])
    shapes, ls = np.array([[2, 2], [1, 2]]), np.array([0, 4])
    keep = golden.fwp_mask(importance, shapes, ls, tau_f=0.6)  # thresholds 1.2 and 0.12
    assert keep.tolist() == [False, False, True, True, False, True]
    assert golden.fwp_mask(importance, shapes, ls, tau_f=0.0).all()
    with pytest.raises(ValueError, match="tau_f=1.5.*allowed"):
        golden.fwp_mask(importance, shapes, ls, tau_f=1.5)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_layer_matches_transformers(dtype, tol):
    d_model, heads, levels, points = 64, 4, 3, 4
    shapes = np.array([(9, 13), (5, 7), (3, 4)])
    ls = golden.level_start_of(shapes)
    nv, nq = int((shapes[:, 0] * shapes[:, 1]).sum()), 23
    params = golden.LayerParams.random(d_model, heads, levels, points, seed=3, dtype=dtype)
    rng = np.random.default_rng(4)
    query = rng.standard_normal((nq, d_model)).astype(dtype)
    x = rng.standard_normal((nv, d_model)).astype(dtype)
    ref = rng.uniform(0, 1, (nq, levels, 2)).astype(dtype)
    want = oracles.run(oracles.layer_with(params, dtype), query, ref, x, shapes)
    got = golden.msda_layer(params, query, ref, x, shapes, ls)
    assert got.dtype == dtype
    assert _rel(got.astype(np.float64), want) <= tol
