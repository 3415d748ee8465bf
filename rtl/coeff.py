"""Corner-weight / coefficient unit: a point's four bilinear weights times its probability,
delivered per buffer bank.

Contract (F = ``coord_frac_bits``):

* ``w = (dx ? fx : 2**F - fx) * (dy ? fy : 2**F - fy)`` for corner k = 2*dy + dx;
  ``coeff = (min(prob, 2**prob_bits) * w + 2**(s-1)) >> s`` with ``s = coeff_shift``
  (round half up), ``coeff_bits`` fraction bits; 0 for a corner whose ``valid`` bit is 0.
* Output ``coeff[b]`` is the coefficient of the corner held by bank b = 2*(y mod 2) + (x mod 2):
  the corner with dx = bx xor (x0 mod 2), dy = by xor (y0 mod 2). Inputs ``x_odd``, ``y_odd`` are
  the low bits of x0 and y0.
* Latency 2 (product of the weights, then times the probability), advancing on cycles where
  ``en`` is high. Throughput one point per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig

__all__ = ["CoefficientUnit"]


class CoefficientUnit(wiring.Component):
    latency = 2

    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        f = cfg.coord_frac_bits
        super().__init__(
            {
                "en": In(1),
                "prob": In(unsigned(cfg.prob_bits + 1)),
                "fx": In(unsigned(f)),
                "fy": In(unsigned(f)),
                "x_odd": In(1),
                "y_odd": In(1),
                "valid": In(4),
                "coeff": Out(data.ArrayLayout(unsigned(cfg.coeff_bits + 1), 4)),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        f = cfg.coord_frac_bits
        one = 1 << f
        m = Module()

        prob = Signal(unsigned(cfg.prob_bits + 1))
        m.d.comb += prob.eq(Mux(self.prob > cfg.prob_one, cfg.prob_one, self.prob))
        wx = (Signal(unsigned(f + 1), name="wx0"), Signal(unsigned(f + 1), name="wx1"))
        wy = (Signal(unsigned(f + 1), name="wy0"), Signal(unsigned(f + 1), name="wy1"))
        m.d.comb += [wx[0].eq(one - self.fx), wx[1].eq(self.fx)]
        m.d.comb += [wy[0].eq(one - self.fy), wy[1].eq(self.fy)]

        # Stage 1: per bank, the weight of the corner that bank holds.
        prob_1 = Signal.like(prob)
        weight_1 = [Signal(unsigned(2 * f + 2), name=f"weight{b}") for b in range(4)]
        valid_1 = Signal(4)
        with m.If(self.en):
            m.d.sync += prob_1.eq(prob)
            for b in range(4):
                bx, by = b & 1, b >> 1
                dx = Signal(name=f"dx{b}")
                dy = Signal(name=f"dy{b}")
                m.d.comb += [dx.eq(self.x_odd ^ bx), dy.eq(self.y_odd ^ by)]
                m.d.sync += [
                    weight_1[b].eq(Mux(dx, wx[1], wx[0]) * Mux(dy, wy[1], wy[0])),
                    valid_1[b].eq(
                        Mux(
                            dy,
                            Mux(dx, self.valid[3], self.valid[2]),
                            Mux(dx, self.valid[1], self.valid[0]),
                        )
                    ),
                ]

        # Stage 2: times the probability, one rounding.
        shift = cfg.coeff_shift
        half = (1 << (shift - 1)) if shift else 0
        with m.If(self.en):
            for b in range(4):
                scaled = (prob_1 * weight_1[b] + half) >> shift
                m.d.sync += self.coeff[b].eq(Mux(valid_1[b], scaled, 0))
        return m
