"""One frozen description of a defa accelerator: shape, buffers, number formats, thresholds.

This module imports nothing of the project; every other part reads it. Derived widths are
properties computed here and only here, so the bit-true model (``sim/``) and the RTL (``rtl/``)
agree on them by construction of the config, not by copying numbers.

Number formats (all fixed point, two's complement where signed):

* coordinates: a pixel coordinate ``px = ref*W + off - 0.5`` carries ``coord_frac_bits``
  fraction bits. Offsets (in pixels) are signed words of ``offset_bits`` bits with the same
  fraction; ``ref*W`` is precomputed per level, unsigned, same fraction.
* probabilities: unsigned, ``prob_bits`` fraction bits, 1.0 representable (``prob_bits + 1``
  bits wide).
* coefficients ``c_k = prob * w_k`` (w_k the bilinear corner weight): unsigned,
  ``coeff_bits`` fraction bits, 1.0 representable (``coeff_bits + 1`` bits wide).
* values: signed ``value_bits`` integers with a per-channel (or per-head) float scale.
* accumulators: signed ``acc_bits``; the config refuses a width that could overflow.
* core output: signed, ``out_frac_bits`` fraction bits in units of the value scale, saturated
  to ``out_bits``; one rounding (half up) from the accumulator.
* fused layer (``sim.layer``): the inputs x and query are signed ``act_bits`` codes with one
  recorded scale each; weights signed ``weight_bits`` codes with one scale per output channel;
  projections accumulate exactly in ``proj_acc_bits`` and round once, by a ``requant_bits``
  multiplier and a shift per output channel; the layer's output words are signed
  ``layer_out_bits`` with one recorded scale.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DefaConfig",
    "PRESETS",
    "overrides_of",
    "parse_json",
    "parse_override",
    "preset",
    "resolve",
]

_INT_RANGES: dict[str, tuple[int, int]] = {
    "d_model": (1, 4096),
    "heads": (1, 64),
    "levels": (1, 8),
    "points": (1, 16),
    "lanes": (1, 1024),
    "coord_frac_bits": (1, 12),
    "offset_bits": (4, 24),
    "prob_bits": (4, 16),
    "coeff_bits": (4, 20),
    "value_bits": (2, 16),
    "weight_bits": (2, 16),
    "act_bits": (2, 16),
    "proj_lanes": (1, 4096),
    "requant_bits": (4, 24),
    "layer_out_bits": (4, 32),
    "acc_bits": (8, 64),
    "out_frac_bits": (0, 16),
    "importance_bits": (4, 32),
    "queue_depth": (2, 1024),
    "relay_stages": (0, 4),
    "logit_bits": (4, 32),
    "logit_frac_bits": (0, 16),
    "exp_frac_bits": (2, 12),
    "exp_bits": (4, 24),
    "recip_bits": (2, 14),
    "tau_f_bits": (2, 16),
    "addr_bits": (12, 64),
    "max_burst": (1, 256),
}
_MAX_SIDE = 4096


@dataclass(frozen=True)
class DefaConfig:
    """An accelerator. Construct from a preset with overrides: ``preset("tiny", lanes=4)``."""

    d_model: int = 256
    heads: int = 8
    levels: int = 4
    points: int = 4
    #: MAC lanes per level sampler; must divide ``head_dim``; ``head_dim // lanes`` cycles/point.
    lanes: int = 32
    #: buffer capacity per level, ``(height, width)`` in pixels; a workload's shapes must fit.
    max_shapes: tuple[tuple[int, int], ...] = ((100, 167), (50, 84), (25, 42), (13, 21))
    #: on-chip window per level when the maps live in external memory: a band of that many
    #: full-width rows (a power of two, at least 2) of one head's channels; empty: every
    #: level's whole map on chip (loaded through ``load``).
    window_rows: tuple[int, ...] = ()
    #: external memory (AXI4): byte address width, and the longest burst in beats of one
    #: buffer word (``lanes * value_bits`` bits, the bus width).
    addr_bits: int = 32
    max_burst: int = 16
    coord_frac_bits: int = 8
    offset_bits: int = 18
    prob_bits: int = 12
    coeff_bits: int = 12
    value_bits: int = 8
    #: fused layer: weights of the four projections (one scale per output channel)
    weight_bits: int = 8
    #: fused layer: the input map x and the queries as signed codes (one scale per tensor)
    act_bits: int = 8
    #: fused layer: width of each output channel's requantization multiplier
    requant_bits: int = 16
    #: fused layer: the output projection's words (one scale per tensor)
    layer_out_bits: int = 16
    #: fused layer: products per cycle of each projection unit (a row of ``d_model`` inputs
    #: takes ``ceil(d_model / proj_lanes)`` cycles per output channel)
    proj_lanes: int = 32
    #: fused layer: the projection units' products on DSP blocks (False: LUT multipliers,
    #: leaving the DSPs to the samplers and softmax; the requantizing products stay on DSPs)
    proj_dsp: bool = True
    acc_bits: int = 32
    out_frac_bits: int = 4
    #: per-pixel FWP importance counter width (saturating), in units of 2**-coeff_bits.
    importance_bits: int = 16
    #: ``"channel"`` or ``"head"``: granularity of the value scales.
    value_scale: str = "channel"
    #: PAP: points with probability < tau_p are dropped (no renormalization).
    tau_p: float = 0.02
    #: FWP: pixels with importance < tau_f * (mean importance of their level) are masked.
    tau_f: float = 0.1
    #: fraction bits of the tau_f CSR (``tau_f_q = round(tau_f * 2**tau_f_bits)``).
    tau_f_bits: int = 8
    #: depth of each per-level point queue.
    queue_depth: int = 16
    #: register stages added to each crossing into the aggregator (the level sums and the
    #: dispatcher's descriptors, which cross the chip), beyond the sender's and the receiver's
    #: own registers: each adds a cycle to the beat and a cycle to its credit's return (the
    #: credit counts grow by two per stage, so throughput holds).
    relay_stages: int = 1
    #: softmax: attention logits are signed ``logit_bits`` words with ``logit_frac_bits``
    #: fraction; exponents are resolved to ``2**-exp_frac_bits`` (a table of that many
    #: entries per octave) with ``exp_bits`` bits; the sum is normalized to ``recip_bits``
    #: bits for a reciprocal table.
    #: the core takes attention logits and computes the softmax itself (DEFA's fused
    #: softmax); False: it takes probabilities.
    softmax: bool = True
    logit_bits: int = 16
    logit_frac_bits: int = 8
    exp_frac_bits: int = 8
    exp_bits: int = 15
    recip_bits: int = 10

    def __post_init__(self):
        # Freeze list-valued input (from JSON or the CLI) into tuples so configs hash and compare.
        if isinstance(self.max_shapes, list | tuple):
            shapes = tuple(tuple(s) if isinstance(s, list | tuple) else s for s in self.max_shapes)
            object.__setattr__(self, "max_shapes", shapes)
        if isinstance(self.window_rows, list):
            object.__setattr__(self, "window_rows", tuple(self.window_rows))
        self._validate()

    # -- validation ------------------------------------------------------------------------

    def _validate(self):
        for name, (lo, hi) in _INT_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name}={value} is out of range: allowed [{lo}, {hi}]")
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by heads={self.heads}: "
                f"allowed d_model in multiples of {self.heads}"
            )
        if self.head_dim % self.lanes:
            raise ValueError(
                f"lanes={self.lanes} must divide head_dim={self.head_dim} (d_model/heads): "
                f"allowed {_divisors(self.head_dim)}"
            )
        self._validate_shapes()
        self._validate_window()
        for name in ("tau_p", "tau_f"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"{name}={value} is out of range: allowed [0, 1)")
        if not isinstance(self.proj_dsp, bool):
            raise ValueError(f"proj_dsp must be true or false, got {self.proj_dsp!r}")
        if not isinstance(self.softmax, bool):
            raise ValueError(f"softmax must be true or false, got {self.softmax!r}")
        if self.value_scale not in ("channel", "head"):
            raise ValueError(
                f"value_scale={self.value_scale!r} is not allowed: use 'channel' or 'head'"
            )
        if self.queue_depth & (self.queue_depth - 1):
            raise ValueError(f"queue_depth={self.queue_depth} must be a power of two in [2, 1024]")
        need = self.min_offset_int_bits
        if self.offset_bits - self.coord_frac_bits < need:
            raise ValueError(
                f"coord_frac_bits={self.coord_frac_bits} leaves "
                f"offset_bits={self.offset_bits} with "
                f"{self.offset_bits - self.coord_frac_bits} integer bits; the largest level side "
                f"{self.max_side} needs {need}: allowed coord_frac_bits <= "
                f"{self.offset_bits - need} (or raise offset_bits)"
            )
        shift = self.prob_bits + 2 * self.coord_frac_bits - self.coeff_bits
        if shift < 0:
            raise ValueError(
                f"coeff_bits={self.coeff_bits} is wider than prob x weight carries "
                f"(prob_bits + 2*coord_frac_bits = {self.prob_bits + 2 * self.coord_frac_bits}): "
                f"allowed coeff_bits <= {self.prob_bits + 2 * self.coord_frac_bits}"
            )
        if self.out_frac_bits > self.coeff_bits:
            raise ValueError(
                f"out_frac_bits={self.out_frac_bits} is wider than the accumulator fraction "
                f"coeff_bits={self.coeff_bits}: allowed [0, {self.coeff_bits}]"
            )
        if self.acc_bits < self.min_acc_bits:
            raise ValueError(
                f"acc_bits={self.acc_bits} can overflow: {self.levels}x{self.points} points of "
                f"{self.value_bits}-bit values x {self.coeff_bits + 1}-bit coefficients need "
                f"{self.min_acc_bits}: allowed [{self.min_acc_bits}, 64]"
            )
        if self.logit_frac_bits >= self.logit_bits:
            raise ValueError(
                f"logit_frac_bits={self.logit_frac_bits} is not narrower than the word "
                f"logit_bits={self.logit_bits}: allowed [0, {self.logit_bits - 1}]"
            )
        if self.prob_bits > self.exp_bits:
            raise ValueError(
                f"prob_bits={self.prob_bits} is finer than the exponentials carry "
                f"(exp_bits={self.exp_bits}): allowed prob_bits <= exp_bits"
            )
        if self.recip_bits > self.exp_bits:
            raise ValueError(
                f"recip_bits={self.recip_bits} is wider than exp_bits={self.exp_bits}: "
                f"allowed [2, {self.exp_bits}]"
            )
        if self.tau_f_q >= 1 << self.tau_f_bits:
            raise ValueError(
                f"tau_f={self.tau_f} rounds to 1.0 with tau_f_bits={self.tau_f_bits}: allowed "
                f"tau_f < {((1 << self.tau_f_bits) - 0.5) / (1 << self.tau_f_bits)} "
                f"(or raise tau_f_bits)"
            )
        if self.proj_acc_bits + self.requant_bits > 62:
            raise ValueError(
                f"requant_bits={self.requant_bits} with {self.proj_acc_bits}-bit projection "
                f"accumulators (d_model={self.d_model}, act_bits={self.act_bits}, "
                f"weight_bits={self.weight_bits}, out_bits={self.out_bits}) exceeds the "
                f"62-bit requantization product: allowed requant_bits <= "
                f"{62 - self.proj_acc_bits}"
            )
        if self.importance_bits < self.coeff_bits + 1:
            raise ValueError(
                f"importance_bits={self.importance_bits} cannot hold one full coefficient: "
                f"allowed [{self.coeff_bits + 1}, 32]"
            )

    def _validate_shapes(self):
        shapes = self.max_shapes
        if not isinstance(shapes, tuple) or len(shapes) != self.levels:
            n = len(shapes) if isinstance(shapes, tuple) else shapes
            raise ValueError(
                f"max_shapes must list one (height, width) per level: levels={self.levels}, "
                f"got {n} shapes"
            )
        for level, shape in enumerate(shapes):
            if not (isinstance(shape, tuple) and len(shape) == 2):
                raise ValueError(f"max_shapes[{level}]={shape!r} must be a (height, width) pair")
            for axis, side in zip(("height", "width"), shape, strict=True):
                if isinstance(side, bool) or not isinstance(side, int):
                    raise ValueError(
                        f"max_shapes[{level}] {axis} must be an integer in [1, {_MAX_SIDE}], "
                        f"got {side!r}"
                    )
                if not 1 <= side <= _MAX_SIDE:
                    raise ValueError(
                        f"max_shapes[{level}] {axis}={side} is out of range: "
                        f"allowed [1, {_MAX_SIDE}]"
                    )

    def _validate_window(self):
        rows = self.window_rows
        if not isinstance(rows, tuple) or len(rows) not in (0, self.levels):
            n = len(rows) if isinstance(rows, tuple) else rows
            raise ValueError(
                f"window_rows must be empty (whole maps on chip) or list one band height per "
                f"level: levels={self.levels}, got {n}"
            )
        for level, r in enumerate(rows):
            if isinstance(r, bool) or not isinstance(r, int) or r < 2 or r & (r - 1) or r > 4096:
                raise ValueError(
                    f"window_rows[{level}]={r!r} is not allowed: a power of two in [2, 4096]"
                )
        if rows:
            word = self.lanes * self.value_bits
            if word < 8 or word > 1024 or word & (word - 1):
                raise ValueError(
                    f"lanes={self.lanes} x value_bits={self.value_bits} = {word}-bit words: "
                    f"the memory bus carries one buffer word per beat, allowed a power of two "
                    f"in [8, 1024] bits"
                )
            if self.max_burst * word // 8 > 4096:
                raise ValueError(
                    f"max_burst={self.max_burst} is out of range: allowed [1, "
                    f"{4096 * 8 // word}] beats of {word} bits (AXI4: 4 KB)"
                )

    def band_reach(self, level: int) -> int:
        """Rows of level ``level``'s band a point may pull it down to without waiting: the
        band's height less the rows fetched ahead (an eighth of it, at least one; none for a
        band of 2 rows). The band window and its model (``sim.band``) both use this."""
        rows = self.window_rows[level]
        return rows if rows < 4 else rows - max(1, rows // 8)

    @property
    def streamed(self) -> bool:
        """The maps live in external memory; each level keeps a band of rows on chip."""
        return bool(self.window_rows)

    def check_shapes(self, shapes) -> None:
        """Raise ValueError unless ``shapes`` (L x (H, W)) fit this accelerator's buffers."""
        shapes = [tuple(int(v) for v in s) for s in shapes]
        if len(shapes) != self.levels:
            raise ValueError(
                f"shapes has {len(shapes)} levels; this accelerator has levels={self.levels}"
            )
        for level, ((h, w), (mh, mw)) in enumerate(zip(shapes, self.max_shapes, strict=True)):
            if not (1 <= h <= mh and 1 <= w <= mw):
                raise ValueError(
                    f"shapes[{level}]=({h}, {w}) does not fit the level buffer: allowed height "
                    f"[1, {mh}], width [1, {mw}] (max_shapes[{level}])"
                )

    # -- derived quantities ----------------------------------------------------------------

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @property
    def cycles_per_point(self) -> int:
        return self.head_dim // self.lanes

    @property
    def points_per_head(self) -> int:
        return self.levels * self.points

    @property
    def max_side(self) -> int:
        return max(max(s) for s in self.max_shapes)

    @property
    def level_pixels(self) -> tuple[int, ...]:
        return tuple(h * w for h, w in self.max_shapes)

    @property
    def min_offset_int_bits(self) -> int:
        # A saturated offset must land off every map: 2**(int_bits-1) >= 2*max_side + 2.
        return (2 * self.max_side + 2).bit_length() + 1

    @property
    def offset_min(self) -> int:
        """Smallest offset word (raw, ``coord_frac_bits`` fraction)."""
        return -(1 << (self.offset_bits - 1))

    @property
    def offset_max(self) -> int:
        return (1 << (self.offset_bits - 1)) - 1

    @property
    def ref_bits(self) -> int:
        """Unsigned width of ``ref*W`` (0 <= ref <= 1) with ``coord_frac_bits`` fraction."""
        return (self.max_side << self.coord_frac_bits).bit_length()

    @property
    def coord_bits(self) -> int:
        """Signed width of ``px = ref*W + off - 0.5``: never overflows."""
        return max(self.ref_bits + 1, self.offset_bits) + 1

    @property
    def index_bits(self) -> tuple[int, ...]:
        """Per level: signed width of the integer corner coordinate x0 or y0."""
        return tuple(self.coord_bits - self.coord_frac_bits for _ in self.max_shapes)

    @property
    def prob_one(self) -> int:
        return 1 << self.prob_bits

    @property
    def coeff_one(self) -> int:
        return 1 << self.coeff_bits

    @property
    def coeff_shift(self) -> int:
        """Right shift (with half-up rounding) from prob x w_x x w_y to a coefficient."""
        return self.prob_bits + 2 * self.coord_frac_bits - self.coeff_bits

    @property
    def product_bits(self) -> int:
        """Signed width of one coefficient x value product."""
        return self.value_bits + self.coeff_bits + 1

    @property
    def min_acc_bits(self) -> int:
        # Each point's four rounded coefficients sum to at most 1.0 + 2 ulp; the magnitude of a
        # value is at most 2**(value_bits-1); levels*points such points per (query, head).
        bound = self.points_per_head * (self.coeff_one + 2) * (1 << (self.value_bits - 1))
        return bound.bit_length() + 1

    @property
    def out_shift(self) -> int:
        return self.coeff_bits - self.out_frac_bits

    @property
    def out_bits(self) -> int:
        """Signed width of a core output word (saturating)."""
        return self.value_bits + self.out_frac_bits + 1

    @property
    def proj_acc_bits(self) -> int:
        """Signed width of a projection's accumulator: ``d_model`` products of the widest input
        (``act_bits`` codes, or the core's ``out_bits`` words into the output projection) and
        ``weight_bits`` weights, plus a bias of at most the same magnitude."""
        widest = max(self.act_bits, self.out_bits)
        bound = 2 * self.d_model * (1 << (widest - 1)) * (1 << (self.weight_bits - 1))
        return bound.bit_length() + 1

    @property
    def value_max(self) -> int:
        return (1 << (self.value_bits - 1)) - 1

    @property
    def tau_p_q(self) -> int:
        """tau_p in probability units (``prob_q < tau_p_q`` is pruned)."""
        return math.floor(self.tau_p * self.prob_one + 0.5)

    @property
    def tau_f_q(self) -> int:
        """tau_f in ``2**-tau_f_bits`` units, as the CSR holds it."""
        return math.floor(self.tau_f * (1 << self.tau_f_bits) + 0.5)

    @property
    def buffer_bits(self) -> int:
        """Total level-buffer storage, in bits: whole maps of every head, or with
        ``window_rows`` a band of rows of one head per level (and one pixel's patch)."""
        if self.streamed:
            pixels = sum(
                r * w + 1 for r, (_, w) in zip(self.window_rows, self.max_shapes, strict=True)
            )
            return pixels * self.head_dim * self.value_bits
        return sum(self.level_pixels) * self.d_model * self.value_bits

    # -- overrides and serialization -------------------------------------------------------

    def replace(self, **overrides: Any) -> DefaConfig:
        """A copy with ``overrides`` applied (validated). Unknown names raise ValueError."""
        names = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in names:
                raise ValueError(f"unknown config parameter {key!r}: allowed {sorted(names)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["max_shapes"] = [list(s) for s in self.max_shapes]
        d["window_rows"] = list(self.window_rows)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: str | None = None) -> DefaConfig:
        """The config ``data`` describes: its parameters applied on top of a preset, the one
        it records under ``"preset"`` (as ``defa config`` writes it), else ``base``, else
        ``detr`` (the dataclass defaults). A partial dict keeps the preset's other values."""
        return resolve(data, base)[1]

    @classmethod
    def from_json(cls, text: str, base: str | None = None) -> DefaConfig:
        return cls.from_dict(parse_json(text), base)

    def describe(self) -> str:
        return (
            f"d_model={self.d_model} heads={self.heads} levels={self.levels} "
            f"points={self.points} lanes={self.lanes} max_shapes={list(self.max_shapes)}"
        )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


_DETR = DefaConfig()

PRESETS: dict[str, DefaConfig] = {
    # Fast tests: every feature, small everything.
    "tiny": _DETR.replace(
        d_model=32,
        heads=2,
        levels=2,
        points=2,
        lanes=16,
        max_shapes=((9, 11), (5, 6)),
        offset_bits=14,
        importance_bits=16,
        queue_depth=4,
    ),
    # Sized for an ECP5-85F (ULX3S): 4 levels, buffers of 1360 pixels x 128 channels of int8
    # (174 KB of the 468 KB of block RAM), 8 lanes per sampler; accumulators exactly as wide
    # as 16 points need (min_acc_bits: the level-sum queues are distributed RAM); queues of 8
    # jobs (with the credits' round trip 11 entries and 13 sums: one LUT RAM deep, half the
    # LUT RAM of 16 at 0.3% more cycles on PAP workloads, none dense). No relays into the
    # aggregator: routed, they cost more than they cut (3 seeds at speed 6: 87.4 / 87.7 /
    # 80.1 MHz without, 81.7 / 83.5 / 85.5 with one; 3.4k flip-flops fewer).
    "fpga": _DETR.replace(
        d_model=128,
        heads=4,
        levels=4,
        points=4,
        lanes=8,
        max_shapes=((32, 32), (16, 16), (8, 8), (4, 4)),
        offset_bits=16,
        acc_bits=25,
        queue_depth=8,
        relay_stages=0,
    ),
    # Deformable DETR encoder at 800x1333 (ASIC-class): the maps in external memory, bands of
    # 32/16/16/16 rows of one head's 32 channels on chip (246 KB; whole maps: 5.7 MB)
    "detr": _DETR.replace(window_rows=(32, 16, 16, 16)),
}


def preset(name: str, **overrides: Any) -> DefaConfig:
    """The preset ``name`` with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: allowed {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def parse_json(text: str) -> dict[str, Any]:
    """A config file's text as a dict; ValueError names what is wrong with it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"config JSON is malformed: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
    return data


def resolve(data: dict[str, Any], base: str | None = None) -> tuple[str, DefaConfig]:
    """(preset name, config) of a config dict: its parameters on top of the preset it records
    under ``"preset"``, else ``base``, else ``detr``. A dict that records one preset while the
    caller asks for another is refused: the result would silently be neither."""
    if not isinstance(data, dict):
        raise ValueError(f"a config must be a JSON object, got {type(data).__name__}")
    data = dict(data)
    recorded = data.pop("preset", None)
    if recorded is not None and not isinstance(recorded, str):
        raise ValueError(f"config 'preset' must be a preset name: allowed {sorted(PRESETS)}")
    if recorded is not None and base is not None and recorded != base:
        raise ValueError(
            f"the config file records preset {recorded!r} but preset {base!r} was asked "
            f'for: drop --preset, or remove "preset" from the file to apply it on {base!r}'
        )
    name = recorded or base or "detr"
    return name, preset(name, **data)


def overrides_of(name: str, cfg: DefaConfig) -> dict[str, Any]:
    """The parameters in which ``cfg`` differs from preset ``name`` (JSON values)."""
    base, mine = preset(name).to_dict(), cfg.to_dict()
    return {k: v for k, v in mine.items() if base[k] != v}


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one CLI ``key=value``; the value is JSON (``8``, ``0.05``, ``[[8,8],[4,4]]``)
    or else a bare string (``value_scale=head``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override {text!r} must look like key=value")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw.strip()
    return key, value
