"""Float golden model of multi-scale deformable attention (NumPy, float64 or float32).

``msda_core`` is the operator of ``torch-ms-deform-attn`` / ``grid_sample`` (bilinear, zero
padding, ``align_corners=False``) for one image (no batch axis). ``msda_layer`` adds the value,
offset, attention and output projections and the softmax, as Deformable DETR's
``MSDeformAttn``. Both prunings of DEFA are options:

* PAP (``tau_p``): points with probability < tau_p are dropped; the rest keep their probability
  (no renormalization).
* FWP (``pixel_mask``): masked pixels read as zero. ``pixel_importance`` and ``fwp_mask``
  compute the mask: importance = sum over samples of prob x bilinear weight of each pixel,
  masked where importance < tau_f x mean importance of the pixel's level.

This module never imports ``rtl/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LayerParams",
    "corners",
    "fwp_mask",
    "level_start_of",
    "msda_core",
    "msda_layer",
    "pixel_importance",
    "sampling_locations",
    "softmax",
]

#: queries per chunk: bounds the memory of the gathered corner values.
_CHUNK = 4096


def level_start_of(shapes) -> np.ndarray:
    shapes = np.asarray(shapes, dtype=np.int64)
    areas = shapes[:, 0] * shapes[:, 1]
    return np.concatenate([[0], np.cumsum(areas)[:-1]]).astype(np.int64)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def sampling_locations(ref: np.ndarray, offsets: np.ndarray, shapes) -> np.ndarray:
    """Normalized locations ``ref + offset / (W, H)``.

    ref (Nq, L, 2) normalized (x, y); offsets (Nq, M, L, P, 2) in pixels of each level.
    """
    shapes = np.asarray(shapes)
    normalizer = np.stack([shapes[:, 1], shapes[:, 0]], -1).astype(offsets.dtype)
    return ref[:, None, :, None, :] + offsets / normalizer[None, None, :, None, :]


def corners(loc_x: np.ndarray, loc_y: np.ndarray, height: int, width: int):
    """The four bilinear corners of normalized locations on an ``height x width`` map.

    Returns ``(index, weight)``, each of shape ``loc.shape + (4,)``, corners ordered
    (x0,y0), (x1,y0), (x0,y1), (x1,y1). Off-map corners get weight 0 and index 0.
    """
    px = loc_x * width - 0.5
    py = loc_y * height - 0.5
    x0 = np.floor(px)
    y0 = np.floor(py)
    fx = px - x0
    fy = py - y0
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    xs = np.stack([x0, x0 + 1, x0, x0 + 1], -1)
    ys = np.stack([y0, y0, y0 + 1, y0 + 1], -1)
    wx = np.stack([1 - fx, fx, 1 - fx, fx], -1)
    wy = np.stack([1 - fy, 1 - fy, fy, fy], -1)
    valid = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    weight = np.where(valid, wx * wy, 0.0)
    index = np.where(valid, ys * width + xs, 0)
    return index, weight


def msda_core(
    value: np.ndarray,
    shapes,
    level_start,
    sampling_locations: np.ndarray,
    attention_weights: np.ndarray,
    *,
    tau_p: float | None = None,
    pixel_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Multi-scale deformable attention core.

    value (Nv, M, Dh); shapes (L, 2) as (H, W); level_start (L,);
    sampling_locations (Nq, M, L, P, 2) normalized (x, y); attention_weights (Nq, M, L, P).
    Returns (Nq, M*Dh) in the dtype of ``value``.
    """
    shapes = np.asarray(shapes, dtype=np.int64)
    level_start = np.asarray(level_start, dtype=np.int64)
    nv, heads, head_dim = value.shape
    nq = sampling_locations.shape[0]
    probs = attention_weights
    if tau_p is not None:
        probs = np.where(probs < tau_p, 0.0, probs).astype(value.dtype)
    if pixel_mask is not None:
        value = np.where(np.asarray(pixel_mask, bool)[:, None, None], value, 0).astype(value.dtype)
    # (M, Nv, Dh): per-head gathers are then contiguous rows.
    by_head = np.ascontiguousarray(value.transpose(1, 0, 2))
    head_ix = np.arange(heads)[None, :, None, None]
    out = np.zeros((nq, heads, head_dim), dtype=value.dtype)
    for lo in range(0, nq, _CHUNK):
        hi = min(nq, lo + _CHUNK)
        acc = out[lo:hi]
        for level, (height, width) in enumerate(shapes):
            loc = sampling_locations[lo:hi, :, level]  # (n, M, P, 2)
            index, weight = corners(loc[..., 0], loc[..., 1], int(height), int(width))
            coeff = (weight * probs[lo:hi, :, level, :, None]).astype(value.dtype)  # (n,M,P,4)
            n, _, npts, _ = index.shape
            rows = (index + level_start[level]).reshape(n, heads, npts * 4)
            gathered = by_head[head_ix[..., 0], rows]  # (n, M, P*4, Dh)
            acc += np.einsum("nmk,nmkd->nmd", coeff.reshape(n, heads, npts * 4), gathered)
    return out.reshape(nq, heads * head_dim)


def pixel_importance(
    shapes,
    level_start,
    sampling_locations: np.ndarray,
    attention_weights: np.ndarray,
    *,
    tau_p: float | None = None,
) -> np.ndarray:
    """FWP importance of every pixel (Nv,): sum of prob x bilinear weight over all samples
    (all queries, heads and points) that touch it. Pruned points (PAP) do not count."""
    shapes = np.asarray(shapes, dtype=np.int64)
    level_start = np.asarray(level_start, dtype=np.int64)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    probs = attention_weights
    if tau_p is not None:
        probs = np.where(probs < tau_p, 0.0, probs)
    importance = np.zeros(nv, dtype=np.float64)
    for level, (height, width) in enumerate(shapes):
        loc = sampling_locations[:, :, level]
        index, weight = corners(loc[..., 0], loc[..., 1], int(height), int(width))
        contrib = weight * probs[:, :, level, :, None]
        importance += np.bincount(
            (index + level_start[level]).ravel(), weights=contrib.ravel(), minlength=nv
        )
    return importance


def fwp_mask(importance: np.ndarray, shapes, level_start, tau_f: float) -> np.ndarray:
    """Pixels kept by FWP (bool, Nv): importance >= tau_f x mean importance of the level."""
    if not 0.0 <= tau_f < 1.0:
        raise ValueError(f"tau_f={tau_f} is out of range: allowed [0, 1)")
    keep = np.ones(importance.shape, dtype=bool)
    for (height, width), start in zip(np.asarray(shapes), np.asarray(level_start), strict=True):
        part = importance[start : start + height * width]
        keep[start : start + height * width] = part >= tau_f * part.mean()
    return keep


@dataclass(frozen=True)
class LayerParams:
    """Weights of one MSDeformAttn layer, in ``x @ W + b`` orientation (W is in x out).

    value: (C, C); offset: (C, M*L*P*2) ordered (head, level, point, xy);
    attention: (C, M*L*P) ordered (head, level, point); output: (C, C).
    """

    heads: int
    levels: int
    points: int
    value_w: np.ndarray
    value_b: np.ndarray
    offset_w: np.ndarray
    offset_b: np.ndarray
    attention_w: np.ndarray
    attention_b: np.ndarray
    output_w: np.ndarray
    output_b: np.ndarray

    @property
    def d_model(self) -> int:
        return self.value_w.shape[0]

    @classmethod
    def random(
        cls, d_model: int, heads: int, levels: int, points: int, seed: int, dtype=np.float64
    ):
        """Deformable-DETR-like initialization: offsets start on a ring of directions per
        head growing with the point index; everything else small and random."""
        rng = np.random.default_rng(seed)
        c = d_model

        def dense(n_in, n_out, scale):
            return (rng.standard_normal((n_in, n_out)) * scale / np.sqrt(n_in)).astype(dtype)

        theta = np.arange(heads) * (2 * np.pi / heads)
        grid = np.stack([np.cos(theta), np.sin(theta)], -1)
        grid = grid / np.abs(grid).max(-1, keepdims=True)
        grid = np.tile(grid[:, None, None, :], (1, levels, points, 1))
        grid *= np.arange(1, points + 1)[None, None, :, None]
        return cls(
            heads=heads,
            levels=levels,
            points=points,
            value_w=dense(c, c, 1.0),
            value_b=(rng.standard_normal(c) * 0.1).astype(dtype),
            offset_w=dense(c, heads * levels * points * 2, 0.5),
            offset_b=grid.reshape(-1).astype(dtype),
            attention_w=dense(c, heads * levels * points, 1.0),
            attention_b=(rng.standard_normal(heads * levels * points) * 0.1).astype(dtype),
            output_w=dense(c, c, 1.0),
            output_b=(rng.standard_normal(c) * 0.1).astype(dtype),
        )


def msda_layer(
    params: LayerParams,
    query: np.ndarray,
    ref: np.ndarray,
    x: np.ndarray,
    shapes,
    level_start,
    *,
    tau_p: float | None = None,
    pixel_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Full MSDeformAttn layer: query (Nq, C) with positions already added, ref (Nq, L, 2)
    normalized, x (Nv, C) flattened multi-scale input. Returns (Nq, C)."""
    m, lv, p = params.heads, params.levels, params.points
    nq, c = query.shape
    value = (x @ params.value_w + params.value_b).reshape(x.shape[0], m, c // m)
    offsets = (query @ params.offset_w + params.offset_b).reshape(nq, m, lv, p, 2)
    logits = (query @ params.attention_w + params.attention_b).reshape(nq, m, lv * p)
    probs = softmax(logits).reshape(nq, m, lv, p)
    loc = sampling_locations(ref, offsets, shapes)
    core = msda_core(value, shapes, level_start, loc, probs, tau_p=tau_p, pixel_mask=pixel_mask)
    return core @ params.output_w + params.output_b
