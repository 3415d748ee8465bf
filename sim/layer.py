"""Bit-true model of the fused MSDA layer: the four projections around the core (DEFA's fused
attention PEs), the contract the projection RTL matches bit for bit.

Formats (A = ``act_bits``, W = ``weight_bits``, B = ``requant_bits``, F = ``coord_frac_bits``;
"round" is half up, as everywhere in ``sim.bittrue``):

1. Activations: the input map x and the queries (positional embeddings already added) are
   quantized with one scale per channel recorded by calibration (``calibrate``: the largest
   magnitude seen maps to the largest code): ``a[i] = clip(round(x[i] / s[i]), -(2**(A-1)-1),
   2**(A-1)-1)``. Beyond the calibrated range an activation saturates.
2. Weights: a projection's input scales fold into its float weights, ``W'[i, o] = W[i, o] *
   s[i]``, so its accumulator counts in units of ``s_w[o]``, the scale of output channel o:
   ``s_w[o] = max|W'[:, o]| / (2**(W-1)-1)`` (1 for an all-zero column), ``w = round(W' /
   s_w)``.
3. A projection: ``acc[o] = sum_i a[i] * w[i, o] + bias[o]``, exact in ``proj_acc_bits``,
   with ``bias[o] = round(b[o] / s_w[o])``; then one rounding to the output format:
   ``y[o] = sat(round_shift(acc[o] * mult[o], shift[o]))``, where ``mult[o] * 2**-shift[o]``
   is ``s_w[o] / s_out[o]`` with ``mult`` in ``[2**(B-1), 2**B)`` (the shift is capped at
   ``proj_acc_bits + B``, so for a gain below ``2**-(proj_acc_bits + 1)`` ``mult`` is smaller;
   every output of such a channel rounds to 0 whatever ``mult`` is).
4. Output formats: the value projection gives value codes (``value_bits``, the recorded
   per-channel or per-head value scale ``s_v``); the offset projection offset words
   (``offset_bits``, ``2**-F`` pixels, saturating); the attention projection logit words
   (``logit_bits``, ``2**-logit_frac_bits``, saturating).
5. Core: ``sim.bittrue.core`` on those words: the bit-true softmax of the logit words, PAP,
   and FWP: a masked pixel's value projection is skipped (its codes read 0).
6. Output projection: its inputs are the core's output words (``out_bits``; a word stands for
   ``word * s_v[c] / 2**out_frac_bits``: that is its input scale, folded as in 2); its output
   words are ``layer_out_bits`` wide with one recorded scale.

This module never imports ``rtl/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gen.config import DefaConfig
from sim import bittrue, golden
from sim.workload import LayerInputs

__all__ = [
    "LayerResult",
    "LayerScales",
    "Projection",
    "QuantizedLayer",
    "calibrate",
    "layer",
    "quantize_activations",
    "quantize_layer",
    "requantizer",
]


def _peak(array: np.ndarray, axis=None) -> np.ndarray:
    return np.abs(np.asarray(array, dtype=np.float64)).max(axis=axis, initial=0.0)


def _scale_of(peak, top: int):
    """A scale that maps ``peak`` to the code ``top`` (1 for a zero peak)."""
    peak = np.asarray(peak, dtype=np.float64)
    return np.where(peak > 0, peak / top, 1.0)


def quantize_activations(cfg: DefaConfig, name: str, array: np.ndarray, scale: np.ndarray):
    """Float activations (N, C) -> signed ``act_bits`` codes with the recorded per-channel
    ``scale`` (C,) (saturating). ``name`` names the input in errors (NaN, Inf)."""
    array = np.asarray(array, dtype=np.float64)
    bittrue._require_finite(name, array)
    top = (1 << (cfg.act_bits - 1)) - 1
    return np.clip(np.floor(array / scale + 0.5), -top, top).astype(np.int64)


def requantizer(cfg: DefaConfig, gain: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(mult, shift) per channel with ``mult * 2**-shift`` = ``gain`` to ``requant_bits``
    bits: ``mult`` in ``[2**(B-1), 2**B)``, ``0 <= shift <= proj_acc_bits + B`` (at the cap,
    for a gain below ``2**-(proj_acc_bits + 1)``, ``mult`` is smaller and every product rounds
    to 0). A gain too large for a shift of 0 (at least ``2**(B-1)``) is refused: the output
    format is finer than the accumulator."""
    gain = np.asarray(gain, dtype=np.float64)
    b = cfg.requant_bits
    if not np.all(np.isfinite(gain) & (gain > 0)):
        raise ValueError(f"{name}: requantization gains must be finite and positive")
    cap = cfg.proj_acc_bits + b  # |acc * mult| < 2**(cap - 1): a shift of cap rounds it to 0
    exponent = np.floor(np.log2(gain)).astype(np.int64)
    shift = b - 1 - exponent
    if shift.min() < 0:
        o = int(np.argmin(shift))
        raise ValueError(
            f"{name} channel {o}: requantization gain {float(gain[o]):.6g} needs a negative "
            f"shift with requant_bits={b}: allowed gains below {2.0 ** (b - 1):g} (the output "
            f"format is finer than the accumulator: check the recorded scales)"
        )
    shift = np.minimum(shift, cap)
    mult = np.floor(gain * np.exp2(shift.astype(np.float64)) + 0.5).astype(np.int64)
    over = mult >= 1 << b  # rounding reached 2**B: one bit less of shift
    mult = np.where(over, mult >> 1, mult)
    shift = np.where(over, shift - 1, shift)
    return mult, shift


@dataclass(frozen=True)
class Projection:
    """One projection's integers: ``y = sat(round_shift((a @ weight + bias) * mult, shift))``
    per output channel, saturated to ``[lo, hi]``."""

    weight: np.ndarray  # (In, Out) int64 codes
    bias: np.ndarray  # (Out,) int64, accumulator units
    mult: np.ndarray  # (Out,) int64
    shift: np.ndarray  # (Out,) int64
    lo: int
    hi: int

    def accumulate(self, a: np.ndarray) -> np.ndarray:
        """The exact accumulators ``a @ weight + bias`` (int64; float64 BLAS where exact)."""
        a = np.asarray(a, dtype=np.int64)
        bound = np.abs(a).max(initial=0) * np.abs(self.weight).sum(axis=0).max(initial=0)
        if bound < 1 << 52:  # every partial sum an integer below 2**53: float64 is exact
            acc = (a.astype(np.float64) @ self.weight.astype(np.float64)).astype(np.int64)
        else:
            acc = a @ self.weight
        return acc + self.bias

    def __call__(self, a: np.ndarray) -> np.ndarray:
        acc = self.accumulate(a)
        rounded = (acc * self.mult + ((np.int64(1) << self.shift) >> 1)) >> self.shift
        return np.clip(rounded, self.lo, self.hi)

    @property
    def macs_per_row(self) -> int:
        return int(self.weight.size)


def _quantize_projection(
    cfg: DefaConfig, name: str, w: np.ndarray, b: np.ndarray, s_out, lo: int, hi: int
) -> Projection:
    """Weights ``w`` (their input scales folded in) per output channel, the bias in
    accumulator units and the requantizer to output scale ``s_out`` (per channel or one)."""
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    bittrue._require_finite(f"{name} weights", w)
    bittrue._require_finite(f"{name} bias", b)
    top = (1 << (cfg.weight_bits - 1)) - 1
    s_w = _scale_of(_peak(w, axis=0), top)
    weight = np.clip(np.floor(w / s_w + 0.5), -top, top).astype(np.int64)
    bias_f = np.floor(b / s_w + 0.5)  # s_w: one accumulator unit, per output channel
    limit = 1 << (cfg.proj_acc_bits - 2)
    if np.abs(bias_f).max(initial=0) >= limit:
        o = int(np.argmax(np.abs(bias_f)))
        raise ValueError(
            f"{name} bias of channel {o} is {float(bias_f[o]):.6g} accumulator units: beyond "
            f"the {cfg.proj_acc_bits}-bit accumulator (allowed magnitude < {limit}; the bias "
            f"outweighs every product: check the recorded input scales)"
        )
    mult, shift = requantizer(cfg, s_w / np.asarray(s_out, dtype=np.float64), name)
    return Projection(weight, bias_f.astype(np.int64), mult, shift, lo, hi)


@dataclass(frozen=True)
class LayerScales:
    """Scales recorded by calibration: per channel of x and of the queries (``(C,)``), of the
    value projection's output (``(M, Dh)``, the core's value scale), and one for the output."""

    x: np.ndarray
    query: np.ndarray
    value: np.ndarray
    out: float


def calibrate(
    cfg: DefaConfig, params: golden.LayerParams, samples: Sequence[LayerInputs]
) -> LayerScales:
    """Record the scales from calibration runs of the float layer (``sim.golden``) on
    ``samples``: the largest magnitude over all of them of each channel of x and of the
    queries, of each value channel (or head, by ``value_scale``) and of the output maps to the
    largest code of its format. (A channel scale folds into the weights that read it: item 3
    of the module docstring.) Take several inputs: a peak seen once is a poor estimate."""
    _check_params(cfg, params)
    samples = list(samples)
    if not samples:
        raise ValueError("calibrate needs at least one sample (LayerInputs)")
    peaks = {"x": 0.0, "query": 0.0, "value": 0.0, "out": 0.0}
    for sample in samples:
        x, query, ref, shapes = _checked(cfg, sample)
        value = (x @ params.value_w + params.value_b).reshape(-1, cfg.heads, cfg.head_dim)
        out = golden.msda_layer(params, query, ref, x, shapes, golden.level_start_of(shapes))
        for name, peak in (
            ("x", _peak(x, axis=0)),
            ("query", _peak(query, axis=0)),
            ("value", _peak(value, axis=0)),
            ("out", _peak(out)),
        ):
            peaks[name] = np.maximum(peaks[name], peak)
    value = peaks["value"]
    if cfg.value_scale == "head":
        value = np.broadcast_to(value.max(axis=1, keepdims=True), value.shape)
    act_top = (1 << (cfg.act_bits - 1)) - 1
    return LayerScales(
        x=_scale_of(peaks["x"], act_top),
        query=_scale_of(peaks["query"], act_top),
        value=_scale_of(value, cfg.value_max),
        out=float(_scale_of(peaks["out"], (1 << (cfg.layer_out_bits - 1)) - 1)),
    )


def _checked(cfg: DefaConfig, inputs: LayerInputs):
    """(x, query, ref, shapes) of ``inputs`` as float64 / int64, every shape and value
    checked against ``cfg``; ValueError names the first bad one."""
    shapes = np.asarray(inputs.shapes, dtype=np.int64)
    cfg.check_shapes(shapes)
    c, lv = cfg.d_model, cfg.levels
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    x, query, ref = (np.asarray(a, dtype=np.float64) for a in (inputs.x, inputs.query, inputs.ref))
    nq = query.shape[0] if query.ndim == 2 else -1
    for name, array, want in (
        ("query", query, (nq, c)),
        ("ref", ref, (nq, lv, 2)),
        ("x", x, (nv, c)),
    ):
        if array.shape != want:
            raise ValueError(f"{name} must have shape {want}, got {array.shape}")
        bittrue._require_finite(name, array)
    bittrue._require_range("ref", ref, 0.0, 1.0)
    return x, query, ref, shapes


def _check_params(cfg: DefaConfig, params: golden.LayerParams):
    got = (params.d_model, params.heads, params.levels, params.points)
    want = (cfg.d_model, cfg.heads, cfg.levels, cfg.points)
    if got != want:
        raise ValueError(
            f"layer weights are for (d_model, heads, levels, points)={got}; this accelerator "
            f"has {want}"
        )


@dataclass(frozen=True)
class QuantizedLayer:
    """The integers the accelerator loads for one layer (weights, biases, requantizers) and
    the scales they were made with."""

    scales: LayerScales
    value: Projection
    offset: Projection
    attention: Projection
    output: Projection


def quantize_layer(
    cfg: DefaConfig, params: golden.LayerParams, scales: LayerScales
) -> QuantizedLayer:
    """Quantize a float layer's weights for this accelerator with the recorded ``scales``."""
    _check_params(cfg, params)
    s_v = np.asarray(scales.value, dtype=np.float64).reshape(-1)  # (C,)
    logit_top = (1 << (cfg.logit_bits - 1)) - 1
    out_top = (1 << (cfg.layer_out_bits - 1)) - 1
    folded = params.output_w * (s_v / (1 << cfg.out_frac_bits))[:, None]
    return QuantizedLayer(
        scales=scales,
        value=_quantize_projection(
            cfg,
            "value projection",
            params.value_w * scales.x[:, None],
            params.value_b,
            s_v,
            -cfg.value_max,
            cfg.value_max,
        ),
        offset=_quantize_projection(
            cfg,
            "offset projection",
            params.offset_w * scales.query[:, None],
            params.offset_b,
            2.0**-cfg.coord_frac_bits,
            cfg.offset_min,
            cfg.offset_max,
        ),
        attention=_quantize_projection(
            cfg,
            "attention projection",
            params.attention_w * scales.query[:, None],
            params.attention_b,
            2.0**-cfg.logit_frac_bits,
            -logit_top - 1,
            logit_top,
        ),
        output=_quantize_projection(
            cfg, "output projection", folded, params.output_b, scales.out, -out_top, out_top
        ),
    )


@dataclass(frozen=True)
class LayerResult:
    """Every intermediate of one bit-true layer run (integer words) and the MACs per phase."""

    x: np.ndarray  # (Nv, C) activation codes
    query: np.ndarray  # (Nq, C) activation codes
    value: np.ndarray  # (Nv, M, Dh) value codes (0 where FWP masked)
    offsets: np.ndarray  # (Nq, M, L, P, 2) offset words
    logits: np.ndarray  # (Nq, M, L*P) logit words
    core_inputs: bittrue.QuantizedCore  # what the core took (the cycle model's input)
    core: bittrue.BitTrueResult
    out: np.ndarray  # (Nq, C) output words
    macs: dict[str, tuple[int, int]]  # phase -> (done, skipped by FWP / PAP)

    def dequantize(self, scales: LayerScales) -> np.ndarray:
        return self.out * scales.out


def layer(
    cfg: DefaConfig,
    ql: QuantizedLayer,
    inputs: LayerInputs,
    *,
    pap: bool = False,
    pixel_mask: np.ndarray | None = None,
) -> LayerResult:
    """Run the bit-true layer on ``inputs`` (float x, queries and reference points: quantized
    with ``ql.scales``; everything after is integers). ``pap`` prunes with ``cfg.tau_p``;
    ``pixel_mask`` (Nv bool, True = kept) masks pixels (FWP)."""
    x, query, ref, shapes = _checked(cfg, inputs)
    level_start = golden.level_start_of(shapes)
    c, m, dh, lv, p = cfg.d_model, cfg.heads, cfg.head_dim, cfg.levels, cfg.points
    nv, nq = x.shape[0], query.shape[0]
    keep = np.ones(nv, dtype=bool)
    if pixel_mask is not None:
        keep = np.asarray(pixel_mask)
        if keep.shape != (nv,) or keep.dtype != np.bool_:
            raise ValueError(
                f"pixel_mask must be a bool array of shape ({nv},), got {keep.dtype} {keep.shape}"
            )
    x_q = quantize_activations(cfg, "x", x, ql.scales.x)
    query_q = quantize_activations(cfg, "query", query, ql.scales.query)

    value = np.zeros((nv, c), dtype=np.int64)
    value[keep] = ql.value(x_q[keep])  # a masked pixel skips the projection
    offsets = ql.offset(query_q).reshape(nq, m, lv, p, 2)
    logits = ql.attention(query_q).reshape(nq, m, lv * p)
    probs = bittrue.softmax(cfg, logits).reshape(nq, m, lv, p)

    wh = np.stack([shapes[:, 1], shapes[:, 0]], -1).astype(np.float64)
    ref_w = bittrue._round_to_int(ref * wh[None], cfg.coord_frac_bits)  # as quantize_core
    qc = bittrue.QuantizedCore(
        value=value.reshape(nv, m, dh),
        scale=np.asarray(ql.scales.value, dtype=np.float64).reshape(m, dh),
        shapes=shapes,
        level_start=level_start,
        ref_w=ref_w,
        offsets=offsets,
        probs=probs,
        logits=logits.reshape(nq, m, lv, p),
    )
    core = bittrue.core(cfg, qc, pap=pap, pixel_mask=None if pixel_mask is None else keep)
    out = ql.output(core.out.reshape(nq, c))

    kept_pixels = int(keep.sum())
    per_point = 4 * dh  # four corners, one head's channels
    macs = {
        "value": (kept_pixels * c * c, (nv - kept_pixels) * c * c),
        "query": (nq * ql.offset.macs_per_row + nq * ql.attention.macs_per_row, 0),
        "sampling": (core.points_kept * per_point, core.points_pruned * per_point),
        "output": (nq * c * c, 0),
    }
    return LayerResult(x_q, query_q, value.reshape(nv, m, dh), offsets, logits, qc, core, out, macs)
