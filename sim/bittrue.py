"""Bit-true fixed-point model of the MSDA core: the contract the RTL matches bit for bit.

Every step below is integer arithmetic on the formats of ``gen.config.DefaConfig`` (F is
``coord_frac_bits``); "round" is always half up, ``(x + 2**(s-1)) >> s``.

1. Quantization at the boundary (what the projection units will hand over):
   ``ref_w = round(ref_x * W * 2**F)`` per level (unsigned), ``off = sat(round(off_x * 2**F))``
   in ``offset_bits`` (saturation is harmless: a saturated offset lands off every map),
   ``prob = round(p * 2**prob_bits)``, values ``v = clip(round(x / scale))`` in
   ``value_bits`` with one float scale per channel (or per head).
2. Coordinates: ``px = ref_w + off - 2**(F-1)``; ``x0 = px >> F`` (floor); ``fx = px & (2**F-1)``.
   Same for y. Corner k = (x0 + dx, y0 + dy), ordered (0,0), (1,0), (0,1), (1,1) as (dx, dy).
3. Weights: ``wx = (2**F - fx, fx)``, ``wy = (2**F - fy, fy)``;
   ``coeff_k = round(min(prob, 1.0) * wx * wy / 2**coeff_shift)`` (``coeff_bits`` fraction),
   0 for a corner off the map.
4. PAP: a point with ``prob < tau_p_q`` is dropped (all its coefficients 0, counted pruned).
   FWP: a masked pixel reads 0.
5. Accumulate ``sum coeff_k * v[pixel_k, head, ch]`` over all corners, points and levels of a
   (query, head) exactly (the config guarantees ``acc_bits`` never overflows), then one
   rounding by ``coeff_bits - out_frac_bits`` and saturation to ``out_bits``.
6. FWP importance counters: per pixel, the saturating sum of the coefficients of every kept
   sample (any head) that touches it, in ``importance_bits``.
7. FWP mask (``fwp_mask``): a pixel is kept iff ``importance * N * 2**T >= tau_f_q * S``, with
   S the sum of its level's (saturated) counters, N the level's pixel count and T
   ``tau_f_bits``: ``importance >= tau_f x mean``, exactly, in integers.
8. ``softmax``: when the core takes attention logits, their probabilities come from the
   fixed-point softmax below (``quantize_core(..., logits=...)``).

This module never imports ``rtl/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.config import DefaConfig
from sim.golden import level_start_of

__all__ = [
    "BitTrueResult",
    "QuantizedCore",
    "coefficients",
    "coordinates",
    "core",
    "corner_samples",
    "dequantize",
    "fwp_mask",
    "fwp_threshold",
    "quantize_core",
    "quantize_values",
    "exp_table",
    "quantize_logits",
    "recip_table",
    "round_shift",
    "sample_points",
    "softmax",
]

_CHUNK = 4096


def round_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """Round half up: ``(x + 2**(shift-1)) >> shift`` (identity for shift 0)."""
    if shift == 0:
        return x
    return (x + (1 << (shift - 1))) >> shift


def _round_to_int(x: np.ndarray, frac_bits: int) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) * (1 << frac_bits) + 0.5).astype(np.int64)


def _require_finite(name: str, array: np.ndarray):
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} holds NaN or Inf (first at index {tuple(int(i) for i in bad)})")


def _require_range(name: str, array: np.ndarray, lo: float, hi: float):
    if array.size and (array.min() < lo or array.max() > hi):
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}], got values in "
            f"[{float(array.min())}, {float(array.max())}]"
        )


def quantize_values(cfg: DefaConfig, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """value (Nv, M, Dh) float -> (q int, scale (M, Dh) float) with ``value ~ q * scale``.

    The scale maps the largest magnitude of each channel (``value_scale="channel"``) or head
    (``"head"``) to the largest code; an all-zero channel gets scale 1.
    """
    value = np.asarray(value, dtype=np.float64)
    _require_finite("value", value)
    peak = np.abs(value).max(axis=0) if value.shape[0] else np.zeros(value.shape[1:])
    if cfg.value_scale == "head":
        peak = np.broadcast_to(peak.max(axis=1, keepdims=True), peak.shape)
    scale = np.where(peak > 0, peak / cfg.value_max, 1.0)
    q = np.clip(np.floor(value / scale + 0.5), -cfg.value_max, cfg.value_max).astype(np.int64)
    return q, scale


@dataclass(frozen=True)
class QuantizedCore:
    """Integer inputs of the core (see the module docstring for the formats)."""

    value: np.ndarray  # (Nv, M, Dh) int64 codes
    scale: np.ndarray  # (M, Dh) float64
    shapes: np.ndarray  # (L, 2) int64, (H, W)
    level_start: np.ndarray  # (L,) int64
    ref_w: np.ndarray  # (Nq, L, 2) int64: (ref_x*W, ref_y*H), F fraction bits
    offsets: np.ndarray  # (Nq, M, L, P, 2) int64 offset words
    probs: np.ndarray  # (Nq, M, L, P) int64
    logits: np.ndarray | None = None  # (Nq, M, L, P) int64 logit words, when given

    @property
    def queries(self) -> int:
        return self.probs.shape[0]


def quantize_core(
    cfg: DefaConfig,
    value: np.ndarray,
    shapes,
    level_start,
    ref: np.ndarray,
    offsets: np.ndarray,
    probs: np.ndarray | None = None,
    *,
    logits: np.ndarray | None = None,
) -> QuantizedCore:
    """Check and quantize float core inputs.

    value (Nv, M, Dh); ref (Nq, L, 2) in [0, 1]; offsets (Nq, M, L, P, 2) in pixels; and
    either probs (Nq, M, L, P) in [0, 1], or attention logits (Nq, M, L*P), which are
    quantized and put through the bit-true ``softmax`` (kept in ``QuantizedCore.logits``).
    Raises ValueError naming the first bad input.
    """
    if (probs is None) == (logits is None):
        raise ValueError("give either probs or logits to quantize_core, not both or neither")
    shapes = np.asarray(shapes, dtype=np.int64)
    level_start = np.asarray(level_start, dtype=np.int64)
    cfg.check_shapes(shapes)
    m, dh, lv, p = cfg.heads, cfg.head_dim, cfg.levels, cfg.points
    value = np.asarray(value)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    if value.shape != (nv, m, dh):
        raise ValueError(
            f"value must have shape (Nv={nv}, heads={m}, head_dim={dh}), got {value.shape}"
        )
    ref, offsets = (np.asarray(a, dtype=np.float64) for a in (ref, offsets))
    nq = ref.shape[0] if ref.ndim else 0
    if logits is not None:
        logits = np.asarray(logits, dtype=np.float64)
        weights_check = ("logits", logits, (nq, m, lv * p))
    else:
        probs = np.asarray(probs, dtype=np.float64)
        weights_check = ("probs", probs, (nq, m, lv, p))
    for name, array, want in (
        ("ref", ref, (nq, lv, 2)),
        ("offsets", offsets, (nq, m, lv, p, 2)),
        weights_check,
    ):
        if array.shape != want:
            raise ValueError(f"{name} must have shape {want}, got {array.shape}")
        _require_finite(name, array)
    _require_range("ref", ref, 0.0, 1.0)
    logits_q = None
    if logits is not None:
        logits_q = quantize_logits(cfg, logits).reshape(nq, m, lv, p)
        prob_q = softmax(cfg, logits_q.reshape(nq, m, lv * p)).reshape(nq, m, lv, p)
    else:
        _require_range("probs", probs, 0.0, 1.0)
        prob_q = _round_to_int(probs, cfg.prob_bits)
    expected_start = level_start_of(shapes)
    if not np.array_equal(level_start, expected_start):
        raise ValueError(
            f"level_start={level_start.tolist()} is inconsistent with shapes: "
            f"expected {expected_start.tolist()}"
        )
    value_q, scale = quantize_values(cfg, value)
    f = cfg.coord_frac_bits
    wh = np.stack([shapes[:, 1], shapes[:, 0]], -1).astype(np.float64)  # (L, 2) as (W, H)
    ref_w = _round_to_int(ref * wh[None], f)
    off_q = np.clip(_round_to_int(offsets, f), cfg.offset_min, cfg.offset_max)
    return QuantizedCore(value_q, scale, shapes, level_start, ref_w, off_q, prob_q, logits_q)


def coordinates(cfg: DefaConfig, ref_w: np.ndarray, offset: np.ndarray):
    """One axis: ``(i0, frac)`` with ``px = ref_w + offset - 0.5`` = ``i0 + frac / 2**F``."""
    f = cfg.coord_frac_bits
    px = ref_w + offset - (1 << (f - 1))
    return px >> f, px & ((1 << f) - 1)


def coefficients(cfg: DefaConfig, prob, fx, fy, valid) -> np.ndarray:
    """Per-corner coefficients ``(..., 4)``; ``valid`` (..., 4) zeroes off-map corners."""
    one = 1 << cfg.coord_frac_bits
    prob, fx, fy = (np.asarray(a, dtype=np.int64) for a in (prob, fx, fy))
    prob = np.minimum(prob, cfg.prob_one)  # a probability word above 1.0 counts as 1.0
    wx = np.stack([one - fx, fx, one - fx, fx], -1)
    wy = np.stack([one - fy, one - fy, fy, fy], -1)
    coeff = round_shift(prob[..., None] * wx * wy, cfg.coeff_shift)
    return np.where(valid, coeff, 0)


@dataclass(frozen=True)
class BitTrueResult:
    out: np.ndarray  # (Nq, M, Dh) int64 output words
    importance: np.ndarray  # (Nv,) int64 saturated FWP counters
    points_kept: int
    points_pruned: int
    points_off_map: int  # kept points with no corner on the map

    def dequantize(self, cfg: DefaConfig, scale: np.ndarray) -> np.ndarray:
        return dequantize(cfg, self.out, scale)


def dequantize(cfg: DefaConfig, out: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Output words (Nq, M, Dh) -> float (Nq, M*Dh)."""
    real = out * scale[None] / (1 << cfg.out_frac_bits)
    return real.reshape(out.shape[0], -1)


def corner_samples(cfg: DefaConfig, height: int, width: int, ref_w, offsets, probs, keep):
    """The four corners of points on one ``height x width`` map.

    ref_w (..., 2) and offsets (..., 2) as (x, y) words, probs (...), keep (...) bool (False:
    pruned). Returns ``(index, coeff, valid)``, each (..., 4), corners ordered (0,0), (1,0),
    (0,1), (1,1) as (dx, dy): pixel indices ``y*W + x`` within the map (0 where off the map),
    coefficients (0 off the map or pruned), and on-map flags (False where pruned).
    """
    x0, fx = coordinates(cfg, ref_w[..., 0], offsets[..., 0])
    y0, fy = coordinates(cfg, ref_w[..., 1], offsets[..., 1])
    xs = np.stack([x0, x0 + 1, x0, x0 + 1], -1)
    ys = np.stack([y0, y0, y0 + 1, y0 + 1], -1)
    valid = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height) & keep[..., None]
    coeff = coefficients(cfg, probs, fx, fy, valid)
    return np.where(valid, ys * width + xs, 0), coeff, valid


def sample_points(
    cfg: DefaConfig, value_level, height: int, width: int, ref_w, offsets, probs, heads
):
    """What one level sampler emits: for N points, the un-rounded per-channel partial
    ``sum_k coeff_k * v[corner_k, head]`` (N, head_dim) int64.

    value_level (H*W, M, Dh) int codes of the level; ref_w (N, 2), offsets (N, 2), probs (N,),
    heads (N,) integer words as the hardware receives them.
    """
    ref_w, offsets, probs, heads = (
        np.asarray(a, dtype=np.int64) for a in (ref_w, offsets, probs, heads)
    )
    keep = np.ones(probs.shape, bool)
    index, coeff, _ = corner_samples(cfg, height, width, ref_w, offsets, probs, keep)
    corner_values = np.asarray(value_level, dtype=np.int64)[index, heads[:, None]]  # (N, 4, Dh)
    return np.einsum("nk,nkd->nd", coeff, corner_values)


def core(
    cfg: DefaConfig,
    qc: QuantizedCore,
    *,
    pap: bool = False,
    tau_p_q: int | None = None,
    pixel_mask: np.ndarray | None = None,
) -> BitTrueResult:
    """Run the bit-true core. ``pap`` prunes with ``cfg.tau_p``, or with ``tau_p_q`` (an
    integer threshold in probability units, as the CSR holds it) when given; ``pixel_mask``
    (Nv bool, True = kept) applies FWP."""
    value = qc.value
    nv = value.shape[0]
    if pixel_mask is not None:
        pixel_mask = np.asarray(pixel_mask)
        if pixel_mask.shape != (nv,) or pixel_mask.dtype != np.bool_:
            raise ValueError(
                f"pixel_mask must be a bool array of shape ({nv},), got "
                f"{pixel_mask.dtype} {pixel_mask.shape}"
            )
        value = np.where(pixel_mask[:, None, None], value, 0)
    if tau_p_q is None:
        tau_p_q = cfg.tau_p_q if pap else 0
    keep = qc.probs >= tau_p_q
    # Every partial sum is an integer below 2**(min_acc_bits-1) <= 2**53, so float64 (with BLAS)
    # is exact; past 53 bits fall back to int64.
    exact_float = cfg.min_acc_bits <= 53
    dtype = np.float64 if exact_float else np.int64
    by_head = np.ascontiguousarray(value.transpose(1, 0, 2)).astype(dtype)  # (M, Nv, Dh)
    nq, heads, head_dim = qc.queries, cfg.heads, cfg.head_dim
    head_ix = np.arange(heads)[None, :, None]
    acc = np.zeros((nq, heads, head_dim), dtype=dtype)
    importance = np.zeros(nv, dtype=np.int64)
    off_map = 0
    for lo in range(0, nq, _CHUNK):
        hi = min(nq, lo + _CHUNK)
        for level in range(cfg.levels):
            k = keep[lo:hi, :, level]
            height, width = (int(v) for v in qc.shapes[level])
            ref_w = np.broadcast_to(
                qc.ref_w[lo:hi, None, level, None], qc.offsets[lo:hi, :, level].shape
            )
            index, coeff, valid = corner_samples(
                cfg, height, width, ref_w, qc.offsets[lo:hi, :, level], qc.probs[lo:hi, :, level], k
            )
            index = index + qc.level_start[level]
            off_map += int((k & ~valid.any(-1)).sum())
            n = hi - lo
            rows = index.reshape(n, heads, -1)
            gathered = by_head[head_ix, rows]  # (n, M, P*4, Dh)
            weights = coeff.reshape(n, heads, 1, -1).astype(dtype)
            acc[lo:hi] += np.matmul(weights, gathered)[:, :, 0]
            importance += np.bincount(index.ravel(), weights=coeff.ravel(), minlength=nv).astype(
                np.int64
            )
    acc = acc.astype(np.int64)
    out = round_shift(acc, cfg.out_shift)
    lim = 1 << (cfg.out_bits - 1)
    out = np.clip(out, -lim, lim - 1)
    importance = np.minimum(importance, (1 << cfg.importance_bits) - 1)
    kept = int(keep.sum())
    return BitTrueResult(out, importance, kept, int(keep.size) - kept, off_map)


# -- FWP mask ---------------------------------------------------------------------------------


def fwp_threshold(cfg: DefaConfig, total: int, pixels: int, tau_f_q: int | None = None) -> int:
    """The smallest importance a pixel of a level keeps: ``ceil(tau_f_q * S / (N * 2**T))``
    for the level's counter sum S over N pixels (``importance >= threshold`` is the rule of
    the module docstring, step 7)."""
    if tau_f_q is None:
        tau_f_q = cfg.tau_f_q
    if not 0 <= tau_f_q < 1 << cfg.tau_f_bits:
        raise ValueError(
            f"tau_f_q={tau_f_q} is out of range: allowed [0, {(1 << cfg.tau_f_bits) - 1}]"
        )
    if pixels < 1:
        raise ValueError(f"pixels={pixels} is out of range: allowed >= 1")
    return -(-(tau_f_q * int(total)) // (pixels << cfg.tau_f_bits))


def fwp_mask(cfg: DefaConfig, importance: np.ndarray, shapes, tau_f_q: int | None = None):
    """Pixels kept by FWP (Nv bool) from the saturated importance counters of all levels."""
    shapes = np.asarray(shapes, dtype=np.int64)
    importance = np.asarray(importance, dtype=np.int64)
    starts = level_start_of(shapes)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    if importance.shape != (nv,):
        raise ValueError(f"importance must have shape ({nv},), got {importance.shape}")
    keep = np.ones(nv, dtype=bool)
    for (height, width), start in zip(shapes, starts, strict=True):
        n = int(height * width)
        part = importance[start : start + n]
        keep[start : start + n] = part >= fwp_threshold(cfg, int(part.sum()), n, tau_f_q)
    return keep


# -- softmax ---------------------------------------------------------------------------------

#: log2(e) with 16 fraction bits: exponents are computed in base 2.
LOG2E_BITS = 16
LOG2E_Q = round(np.log2(np.e) * (1 << LOG2E_BITS))


def quantize_logits(cfg: DefaConfig, logits: np.ndarray) -> np.ndarray:
    """Float logits -> signed ``logit_bits`` words with ``logit_frac_bits`` fraction
    (round half up, saturating)."""
    logits = np.asarray(logits, dtype=np.float64)
    _require_finite("logits", logits)
    top = (1 << (cfg.logit_bits - 1)) - 1
    return np.clip(_round_to_int(logits, cfg.logit_frac_bits), -top - 1, top)


def exp_table(cfg: DefaConfig) -> np.ndarray:
    """``round(2**exp_bits * 2**(-f / 2**exp_frac_bits))`` for every fraction f."""
    f = np.arange(1 << cfg.exp_frac_bits)
    return np.floor((1 << cfg.exp_bits) * 2.0 ** (-f / (1 << cfg.exp_frac_bits)) + 0.5).astype(
        np.int64
    )


def recip_table(cfg: DefaConfig) -> np.ndarray:
    """For a normalized sum ``mant`` in [2**M, 2**(M+1)) (M = recip_bits), the reciprocal of
    its interval's midpoint: ``round(2**(2M+1) / (2*mant + 1))``."""
    m = cfg.recip_bits
    mant = (1 << m) + np.arange(1 << m)
    return ((1 << (2 * m + 2)) // (2 * mant + 1) + 1) >> 1


def softmax(cfg: DefaConfig, logits_q: np.ndarray) -> np.ndarray:
    """The bit-true softmax over the last axis: logit words -> probability words
    (``prob_bits`` fraction). Steps (T = exp_frac_bits, X = exp_bits, M = recip_bits):

    1. ``d = max(l) - l``; ``t = round(d * log2(e))`` with T fraction bits
       (``LOG2E_Q`` has 16);
    2. ``e = EXP[t mod 2**T] >> (t >> T)`` (0 beyond X shifts); the largest logit gets 2**X;
    3. ``S = sum(e)``; with n the position of its leading one, ``mant = S >> (n - M)`` and
       ``r = RECIP[mant - 2**M]``;
    4. ``prob = min(round(e * r / 2**(M + n - prob_bits)), 2**prob_bits)``.
    """
    logit = np.asarray(logits_q, dtype=np.int64)
    t_shift = LOG2E_BITS + cfg.logit_frac_bits - cfg.exp_frac_bits
    d = logit.max(axis=-1, keepdims=True) - logit
    t = round_shift(d * LOG2E_Q, t_shift)
    t = np.minimum(t, (cfg.exp_bits + 1) << cfg.exp_frac_bits)
    e = exp_table(cfg)[t & ((1 << cfg.exp_frac_bits) - 1)] >> (t >> cfg.exp_frac_bits)
    total = e.sum(axis=-1, keepdims=True)
    n = np.floor(np.log2(total)).astype(np.int64)  # exact for integers below 2**53
    mant = total >> (n - cfg.recip_bits)
    r = recip_table(cfg)[mant - (1 << cfg.recip_bits)]
    shift = cfg.recip_bits + n - cfg.prob_bits  # >= 1: the config keeps prob_bits <= exp_bits
    prob = (e * r + (np.int64(1) << (shift - 1))) >> shift
    return np.minimum(prob, cfg.prob_one)
