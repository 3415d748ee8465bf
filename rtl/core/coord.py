"""Coordinate unit: a sampling point's integer corner and fraction on one level, no division.

Contract (``coord_frac_bits`` = F):

* ``px = ref_x + off_x - 2**(F-1)`` (``ref_x`` is ``ref * W`` precomputed, ``off_x`` the offset in
  pixels, both with F fraction bits); ``x0 = floor(px / 2**F)``, ``fx = px mod 2**F``; the same
  for y with ``ref_y``, ``off_y`` and the height.
* ``valid`` bit k (corner k = 2*dy + dx at (x0 + dx, y0 + dy)) is 1 when the corner lies on the
  ``width x height`` map.
* Latency 3: the position (one add of three terms) registered with the map's last index;
  then the corner, the fraction and each bound's compare registered; then the corner and
  the fraction again beside the ANDs of the compares (one LUT per corner), all on cycles
  where ``en`` is high (they hold otherwise). Throughput one point per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import side_bits
from rtl.lib.stages import copy_register

__all__ = ["CoordinateUnit"]


class CoordinateUnit(wiring.Component):
    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        f = cfg.coord_frac_bits
        index = signed(cfg.coord_bits - f)
        super().__init__(
            {
                "en": In(1),
                "ref_x": In(unsigned(cfg.ref_bits)),
                "ref_y": In(unsigned(cfg.ref_bits)),
                "off_x": In(signed(cfg.offset_bits)),
                "off_y": In(signed(cfg.offset_bits)),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "x0": Out(index),
                "y0": Out(index),
                "fx": Out(unsigned(f)),
                "fy": Out(unsigned(f)),
                "valid": Out(4),
            }
        )

    latency = 3

    def elaborate(self, platform):
        cfg = self._cfg
        f = cfg.coord_frac_bits
        m = Module()
        in_range = {}
        for axis, ref, off, size, i0, frac in (
            ("x", self.ref_x, self.off_x, self.width, self.x0, self.fx),
            ("y", self.ref_y, self.off_y, self.height, self.y0, self.fy),
        ):
            pos = Signal(signed(cfg.coord_bits), name=f"p{axis}")
            # the position again for the bounds' compares (kept apart): each register feeds
            # either the compares or the corner and fraction registers, not both
            pos_cmp = copy_register(signed(cfg.coord_bits), name=f"p{axis}_cmp")
            size_r = Signal.like(size, name=f"{axis}_size")
            inner = Signal(signed(len(size) + 1), name=f"{axis}_inner")  # size - 1
            with m.If(self.en):
                m.d.sync += [
                    pos.eq(ref + off - (1 << (f - 1))),
                    pos_cmp.eq(ref + off - (1 << (f - 1))),
                    size_r.eq(size),
                    inner.eq(size - 1),
                ]
            size = size_r
            lo = Signal(signed(cfg.coord_bits - f), name=f"{axis}0_next")
            lo_cmp = Signal(signed(cfg.coord_bits - f), name=f"{axis}0_cmp")
            m.d.comb += [lo.eq(pos >> f), lo_cmp.eq(pos_cmp >> f)]
            # corner 0 at lo, corner 1 at lo + 1: its four bounds, each compare registered
            bounds = Signal(4, name=f"{axis}_bounds")
            lo_r = Signal.like(lo, name=f"{axis}0_r")
            frac_r = Signal.like(frac, name=f"f{axis}_r")
            with m.If(self.en):
                m.d.sync += [
                    bounds.eq(Cat(lo_cmp >= 0, lo_cmp < size, lo_cmp >= -1, lo_cmp < inner)),
                    lo_r.eq(lo),
                    frac_r.eq(pos[:f]),
                    i0.eq(lo_r),
                    frac.eq(frac_r),
                ]
            in_range[axis] = (bounds[0] & bounds[1], bounds[2] & bounds[3])
        with m.If(self.en):
            for k in range(4):
                dx, dy = k & 1, k >> 1
                m.d.sync += self.valid[k].eq(in_range["x"][dx] & in_range["y"][dy])
        return m
