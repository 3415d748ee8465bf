"""Workloads: what one MSDA core invocation sees, a seeded DETR-like generator, and a file format.

A ``Workload`` holds the core's inputs for one image: the multi-scale ``value`` map
(Nv, M, Dh), level ``shapes`` (L, 2) as (H, W) and ``level_start``, per-query reference points
``ref`` (Nq, L, 2) normalized (x, y), ``offsets`` (Nq, M, L, P, 2) in pixels of each level and
attention ``logits`` (Nq, M, L*P). Probabilities are ``softmax(logits)`` per (query, head).

The file format is one ``.npz`` with exactly those arrays plus ``format`` (= "defa-workload")
and ``version`` (= 1). ``load`` validates everything and raises ValueError naming the array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.golden import level_start_of, sampling_locations, softmax

__all__ = [
    "FORMAT",
    "VERSION",
    "Workload",
    "decoder",
    "encoder",
    "fit_input",
    "for_config",
    "LayerInputs",
    "layer_inputs",
    "level_shapes",
    "level_strides",
    "load",
    "save",
]

FORMAT = "defa-workload"
VERSION = 1
_ARRAYS = ("value", "shapes", "level_start", "ref", "offsets", "logits")


@dataclass(frozen=True, eq=False)
class Workload:
    value: np.ndarray
    shapes: np.ndarray
    level_start: np.ndarray
    ref: np.ndarray
    offsets: np.ndarray
    logits: np.ndarray
    name: str = field(default="workload", compare=False)

    def __post_init__(self):
        validate(self)

    @property
    def queries(self) -> int:
        return self.ref.shape[0]

    @property
    def heads(self) -> int:
        return self.value.shape[1]

    @property
    def head_dim(self) -> int:
        return self.value.shape[2]

    @property
    def levels(self) -> int:
        return self.shapes.shape[0]

    @property
    def points(self) -> int:
        return self.offsets.shape[3]

    @property
    def probs(self) -> np.ndarray:
        """(Nq, M, L, P) softmax over the L*P logits of each (query, head)."""
        nq, m, lv, p = self.queries, self.heads, self.levels, self.points
        return softmax(self.logits.astype(np.float64)).reshape(nq, m, lv, p)

    @property
    def locations(self) -> np.ndarray:
        """(Nq, M, L, P, 2) normalized sampling locations."""
        return sampling_locations(
            self.ref.astype(np.float64), self.offsets.astype(np.float64), self.shapes
        )

    def describe(self) -> str:
        shapes = ", ".join(f"{h}x{w}" for h, w in self.shapes)
        return (
            f"{self.name}: {self.queries} queries, {self.heads} heads x {self.head_dim} ch, "
            f"{self.levels} levels ({shapes}), {self.points} points"
        )


def validate(w: Workload) -> None:
    """Raise ValueError unless ``w`` is a consistent, finite workload."""
    for name in _ARRAYS:
        a = getattr(w, name)
        if not isinstance(a, np.ndarray):
            raise ValueError(
                f"workload array {name!r} must be a numpy array, got {type(a).__name__}"
            )
    for name in ("shapes", "level_start"):
        a = getattr(w, name)
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"workload array {name!r} must have an integer dtype, got {a.dtype}")
    for name in ("value", "ref", "offsets", "logits"):
        a = getattr(w, name)
        if a.dtype not in (np.float32, np.float64):
            raise ValueError(f"workload array {name!r} must be float32 or float64, got {a.dtype}")
    if w.shapes.ndim != 2 or w.shapes.shape[1] != 2 or w.shapes.shape[0] < 1:
        raise ValueError(f"workload array 'shapes' must have shape (L>=1, 2), got {w.shapes.shape}")
    if np.any(w.shapes < 1):
        raise ValueError(f"workload array 'shapes' must be >= 1, got {w.shapes.tolist()}")
    lv = w.shapes.shape[0]
    expected = level_start_of(w.shapes)
    if w.level_start.shape != (lv,) or not np.array_equal(w.level_start, expected):
        raise ValueError(
            f"workload array 'level_start'={w.level_start.tolist()} is inconsistent with shapes: "
            f"expected {expected.tolist()}"
        )
    nv = int((w.shapes[:, 0] * w.shapes[:, 1]).sum())
    if w.value.ndim != 3 or w.value.shape[0] != nv:
        raise ValueError(
            f"workload array 'value' must have shape (Nv={nv}, heads, head_dim), "
            f"got {w.value.shape}"
        )
    m = w.value.shape[1]
    if w.ref.ndim != 3 or w.ref.shape[1:] != (lv, 2):
        raise ValueError(f"workload array 'ref' must have shape (Nq, L={lv}, 2), got {w.ref.shape}")
    nq = w.ref.shape[0]
    if w.offsets.ndim != 5 or w.offsets.shape[:3] != (nq, m, lv) or w.offsets.shape[4] != 2:
        raise ValueError(
            f"workload array 'offsets' must have shape (Nq={nq}, heads={m}, L={lv}, P, 2), "
            f"got {w.offsets.shape}"
        )
    p = w.offsets.shape[3]
    if w.logits.shape != (nq, m, lv * p):
        raise ValueError(
            f"workload array 'logits' must have shape (Nq={nq}, heads={m}, L*P={lv * p}), "
            f"got {w.logits.shape}"
        )
    for name in ("value", "ref", "offsets", "logits"):
        a = getattr(w, name)
        if not np.all(np.isfinite(a)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise ValueError(f"workload array {name!r} holds NaN or Inf (first at index {bad})")
    if w.ref.size and (w.ref.min() < 0 or w.ref.max() > 1):
        raise ValueError(
            f"workload array 'ref' must lie in [0, 1], got [{w.ref.min()}, {w.ref.max()}]"
        )


def save(w: Workload, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(w, name) for name in _ARRAYS}
    np.savez_compressed(
        path, format=np.array(FORMAT), version=np.array(VERSION), name=np.array(w.name), **arrays
    )
    return path


def load(path: str | Path) -> Workload:
    """Read and validate a workload file. Every defect raises ValueError naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _read(path, fh)
    except FileNotFoundError:
        raise ValueError(f"workload file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"workload file {str(path)!r} is a directory") from None


def _read(path: Path, fh) -> Workload:
    try:
        data = np.load(fh, allow_pickle=False)
        keys = set(data.files)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"workload file {str(path)!r} is not a readable .npz: {e}") from None
    with data:
        if "format" not in keys or str(data["format"]) != FORMAT:
            raise ValueError(f"workload file {str(path)!r} is not a {FORMAT} file")
        version = int(data["version"]) if "version" in keys else None
        if version != VERSION:
            raise ValueError(
                f"workload file {str(path)!r} has version {version}; supported: {VERSION}"
            )
        missing = [k for k in _ARRAYS if k not in keys]
        if missing:
            raise ValueError(f"workload file {str(path)!r} lacks arrays {missing}")
        extra = sorted(keys - set(_ARRAYS) - {"format", "version", "name"})
        if extra:
            raise ValueError(f"workload file {str(path)!r} has unknown arrays {extra}")
        try:
            arrays = {k: data[k] for k in _ARRAYS}
        except Exception as e:  # a damaged member
            raise ValueError(f"workload file {str(path)!r} has a damaged array: {e}") from None
        name = str(data["name"]) if "name" in keys else path.stem
    return Workload(name=name, **arrays)


# -- the synthetic generator ---------------------------------------------------------------


def level_strides(levels: int) -> tuple[int, ...]:
    """The backbone strides of ``levels`` levels: 8, 16, 32, ..."""
    return tuple(8 << i for i in range(levels))


def level_shapes(input_hw: tuple[int, int], strides=(8, 16, 32, 64)) -> np.ndarray:
    """Feature-map shapes of a backbone with the given strides (ceil division, as ResNet)."""
    h, w = input_hw
    if h < 1 or w < 1:
        raise ValueError(f"input_hw={input_hw} must be positive")
    return np.array([[math.ceil(h / s), math.ceil(w / s)] for s in strides], dtype=np.int64)


def _values(rng, shapes, heads, head_dim, outlier_rate, outlier_gain, smooth):
    """Value maps: per-channel scales (log-normal), spatially smooth plus noise, rare outliers."""
    channels = heads * head_dim
    chan_scale = np.exp(rng.normal(0.0, 0.5, channels))
    value = _smooth_maps(rng, shapes, channels, smooth) * chan_scale
    outliers = rng.random(value.shape) < outlier_rate
    value = np.where(outliers, value * outlier_gain, value)
    return value.reshape(-1, heads, head_dim)


def _smooth_maps(rng, shapes, channels, smooth):
    """Unit-variance maps (Nv, channels), spatially smooth plus noise."""
    maps = []
    for h, w in shapes:
        base = rng.standard_normal((h, w, channels))
        # A cheap low-pass: average with shifted copies, so neighbours are correlated.
        for _ in range(smooth):
            base = (
                base + np.roll(base, 1, 0) + np.roll(base, 1, 1) + np.roll(base, (1, 1), (0, 1))
            ) / 2
        base /= base.std() + 1e-12
        maps.append(base.reshape(h * w, channels))
    return np.concatenate(maps)


def _offsets(rng, nq, heads, levels, points, spread):
    """Deformable-DETR-like offsets: a ring of directions per head scaled by the point index,
    times a per-level spread (pixels), plus Gaussian jitter."""
    theta = np.arange(heads) * (2 * np.pi / heads)
    ring = np.stack([np.cos(theta), np.sin(theta)], -1)
    ring = ring / np.abs(ring).max(-1, keepdims=True)
    ring = ring[:, None, None, :] * np.arange(1, points + 1)[None, None, :, None]
    spread = np.asarray(spread, dtype=np.float64)[None, None, :, None, None]
    jitter = rng.standard_normal((nq, heads, levels, points, 2))
    return (ring[None] + jitter) * spread


def _logits(rng, nq, heads, levels, points, spread, level_bias):
    logits = rng.standard_normal((nq, heads, levels, points)) * spread
    logits = logits + np.asarray(level_bias, dtype=np.float64)[None, None, :, None]
    return logits.reshape(nq, heads, levels * points)


def _spread(offset_spread, strides, base):
    """Default offset spread (pixels) per level: ``base`` at the finest, shrinking with level."""
    if offset_spread is None:
        return tuple(base / (1 + 0.5 * i) for i in range(len(strides)))
    return tuple(offset_spread)


def _check_common(heads, head_dim, points, strides, offset_spread, level_bias):
    if heads < 1 or head_dim < 1 or points < 1:
        raise ValueError(
            f"heads, head_dim and points must be >= 1, got {heads}, {head_dim}, {points}"
        )
    if len(offset_spread) != len(strides):
        raise ValueError(
            f"offset_spread needs one entry per level ({len(strides)}), got {len(offset_spread)}"
        )
    if level_bias is not None and len(level_bias) != len(strides):
        raise ValueError(
            f"level_bias needs one entry per level ({len(strides)}), got {len(level_bias)}"
        )


def encoder(
    *,
    input_hw=(800, 1333),
    strides=(8, 16, 32, 64),
    heads=8,
    head_dim=32,
    points=4,
    seed=0,
    offset_spread=None,
    logit_spread=1.0,
    level_bias=None,
    outlier_rate=1e-4,
    outlier_gain=4.0,
    smooth=2,
    dtype=np.float32,
    queries: int | None = None,
) -> Workload:
    """An encoder layer: one query per pixel of every level, reference points on the pixel
    grid of the query's own level (the same normalized point for all levels).
    ``queries`` keeps only a seeded random subset of that many queries."""
    offset_spread = _spread(offset_spread, strides, 2.0)
    _check_common(heads, head_dim, points, strides, offset_spread, level_bias)
    rng = np.random.default_rng(seed)
    shapes = level_shapes(input_hw, strides)
    levels = len(strides)
    centers = []
    for h, w in shapes:
        ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
        centers.append(np.stack([xs.ravel(), ys.ravel()], -1))
    ref = np.concatenate(centers)
    if queries is not None:
        if not 1 <= queries <= ref.shape[0]:
            raise ValueError(f"queries={queries} is out of range: allowed [1, {ref.shape[0]}]")
        ref = ref[np.sort(rng.choice(ref.shape[0], queries, replace=False))]
    nq = ref.shape[0]
    ref = np.repeat(ref[:, None, :], levels, axis=1)
    value = _values(rng, shapes, heads, head_dim, outlier_rate, outlier_gain, smooth)
    offsets = _offsets(rng, nq, heads, levels, points, offset_spread)
    logits = _logits(rng, nq, heads, levels, points, logit_spread, level_bias or [0.0] * levels)
    return Workload(
        value=value.astype(dtype),
        shapes=shapes,
        level_start=level_start_of(shapes),
        ref=ref.astype(dtype),
        offsets=offsets.astype(dtype),
        logits=logits.astype(dtype),
        name=f"encoder-{input_hw[0]}x{input_hw[1]}-seed{seed}",
    )


def decoder(
    *,
    queries=300,
    input_hw=(800, 1333),
    strides=(8, 16, 32, 64),
    heads=8,
    head_dim=32,
    points=4,
    seed=0,
    offset_spread=None,
    logit_spread=1.5,
    level_bias=None,
    outlier_rate=1e-4,
    outlier_gain=4.0,
    smooth=2,
    dtype=np.float32,
) -> Workload:
    """A decoder layer: ``queries`` object queries with reference points anywhere in (0, 1)."""
    offset_spread = _spread(offset_spread, strides, 4.0)
    _check_common(heads, head_dim, points, strides, offset_spread, level_bias)
    if queries < 1:
        raise ValueError(f"queries={queries} must be >= 1")
    rng = np.random.default_rng(seed)
    shapes = level_shapes(input_hw, strides)
    levels = len(strides)
    ref = rng.random((queries, 1, 2))
    ref = np.repeat(ref, levels, axis=1)
    value = _values(rng, shapes, heads, head_dim, outlier_rate, outlier_gain, smooth)
    offsets = _offsets(rng, queries, heads, levels, points, offset_spread)
    logits = _logits(
        rng, queries, heads, levels, points, logit_spread, level_bias or [0.0] * levels
    )
    return Workload(
        value=value.astype(dtype),
        shapes=shapes,
        level_start=level_start_of(shapes),
        ref=ref.astype(dtype),
        offsets=offsets.astype(dtype),
        logits=logits.astype(dtype),
        name=f"decoder-{queries}q-seed{seed}",
    )


@dataclass(frozen=True, eq=False)
class LayerInputs:
    """What one fused layer reads (``sim.layer``): the multi-scale input map ``x`` (Nv, C),
    the ``query`` rows (Nq, C) with their positional embeddings already added, reference
    points ``ref`` (Nq, L, 2) normalized (x, y), and the level ``shapes`` (L, 2)."""

    x: np.ndarray
    query: np.ndarray
    ref: np.ndarray
    shapes: np.ndarray
    name: str = "layer"


def _sine_embedding(points: np.ndarray, d_model: int) -> np.ndarray:
    """DETR's sine positional embedding of normalized (x, y) points (N, 2): d_model/2 channels
    per axis, sin and cos at geometric frequencies (temperature 10000, scale 2*pi)."""
    half = d_model // 2
    freq = 10000.0 ** (2 * (np.arange(half) // 2) / max(half, 1))
    parts = []
    for axis in (1, 0):  # y first, as DETR
        angle = points[:, axis, None] * 2 * np.pi / freq
        parts.append(np.where(np.arange(half) % 2 == 0, np.sin(angle), np.cos(angle)))
    pos = np.concatenate(parts, -1)
    return np.pad(pos, ((0, 0), (0, d_model - pos.shape[1])))


def layer_inputs(
    kind: str = "encoder",
    *,
    input_hw=(800, 1333),
    strides=(8, 16, 32, 64),
    d_model=256,
    queries: int | None = None,
    seed=0,
    model_seed=0,
    smooth=2,
) -> LayerInputs:
    """A seeded Deformable-DETR-like layer input: ``seed`` draws the image, ``model_seed`` what
    belongs to the network (each channel's scale, log-normal, and the level embeddings), so
    inputs of one model share their statistics (as calibration assumes). ``x``: smooth feature
    maps times the channel scales. ``encoder``: one query per pixel of every level
    (``queries`` keeps a seeded subset), the pixel's features plus the sine embedding of its
    centre and a level embedding, reference points on the pixel grid of the query's own level.
    ``decoder``: ``queries`` (default 300) object queries, random content plus the sine
    embedding of a reference point anywhere in (0, 1)."""
    if kind not in ("encoder", "decoder"):
        raise ValueError(f"kind={kind!r} is not allowed: use 'encoder' or 'decoder'")
    if not isinstance(d_model, int) or d_model < 2:
        raise ValueError(f"d_model={d_model!r} is out of range: allowed an integer >= 2")
    rng, model = np.random.default_rng(seed), np.random.default_rng(model_seed)
    shapes = level_shapes(input_hw, strides)
    levels = len(strides)
    chan_scale = np.exp(model.normal(0.0, 0.5, d_model))
    level_embed = model.standard_normal((levels, d_model))
    x = _smooth_maps(rng, shapes, d_model, smooth) * chan_scale
    if kind == "encoder":
        centers, level_of = [], []
        for level, (h, w) in enumerate(shapes):
            ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
            centers.append(np.stack([xs.ravel(), ys.ravel()], -1))
            level_of.append(np.full(h * w, level))
        centers, level_of = np.concatenate(centers), np.concatenate(level_of)
        query = x + _sine_embedding(centers, d_model) + level_embed[level_of]
        pick = np.arange(len(centers))
        if queries is not None:
            if not 1 <= queries <= len(centers):
                raise ValueError(f"queries={queries} is out of range: allowed [1, {len(centers)}]")
            pick = np.sort(rng.choice(len(centers), queries, replace=False))
        query, ref = query[pick], centers[pick]
    else:
        queries = 300 if queries is None else queries
        if not isinstance(queries, int) or queries < 1:
            raise ValueError(f"queries={queries!r} is out of range: allowed an integer >= 1")
        ref = rng.random((queries, 2))
        query = rng.standard_normal((queries, d_model)) + _sine_embedding(ref, d_model)
    ref = np.repeat(ref[:, None, :], levels, axis=1)
    return LayerInputs(x, query, ref, shapes, f"{kind}-layer-{input_hw[0]}x{input_hw[1]}-s{seed}")


def fit_input(max_shapes) -> tuple[int, int]:
    """The largest image whose stride-8,16,32,... maps fit ``max_shapes`` (L x (H, W))."""
    strides = level_strides(len(max_shapes))
    h = min(mh * s for (mh, _), s in zip(max_shapes, strides, strict=True))
    w = min(mw * s for (_, mw), s in zip(max_shapes, strides, strict=True))
    return h, w


def for_config(cfg, kind: str = "encoder", *, input_hw=None, **kwargs) -> Workload:
    """A synthetic workload shaped for ``cfg`` (a ``DefaConfig``): its heads, head_dim, levels
    and points; by default the largest input its buffers hold. Raises ValueError if the
    level shapes do not fit."""
    if kind not in ("encoder", "decoder"):
        raise ValueError(f"kind={kind!r} is not allowed: use 'encoder' or 'decoder'")
    input_hw = tuple(input_hw) if input_hw is not None else fit_input(cfg.max_shapes)
    make = encoder if kind == "encoder" else decoder
    w = make(
        input_hw=input_hw,
        strides=level_strides(cfg.levels),
        heads=cfg.heads,
        head_dim=cfg.head_dim,
        points=cfg.points,
        **kwargs,
    )
    cfg.check_shapes(w.shapes)
    return w
