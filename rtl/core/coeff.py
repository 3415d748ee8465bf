"""Corner-weight / coefficient unit: a point's four bilinear weights times its probability,
delivered per buffer bank.

Contract (F = ``coord_frac_bits``):

* ``w = (dx ? fx : 2**F - fx) * (dy ? fy : 2**F - fy)`` for corner k = 2*dy + dx;
  ``coeff = (min(prob, 2**prob_bits) * w + 2**(s-1)) >> s`` with ``s = coeff_shift``
  (round half up), ``coeff_bits`` fraction bits; 0 for a corner whose ``valid`` bit is 0.
* Output ``coeff[b]`` is the coefficient of the corner held by bank b = 2*(y mod 2) + (x mod 2):
  the corner with dx = bx xor (x0 mod 2), dy = by xor (y0 mod 2). Inputs ``x_odd``, ``y_odd`` are
  the low bits of x0 and y0.
* Latency ``CoefficientUnit.latency_of(cfg)`` (11 for F = 8), advancing on cycles where ``en``
  is high; throughput one point per cycle. Products are shift-and-add trees with a register
  after every adder level, and only three of them per point: ``py = p*fy``, then
  ``c(1,1) = py*fx`` and ``c(1,0) = (p*2**F - py)*fx``; the other two corners are
  differences (``c(0,dy) = row_dy * 2**F - c(1,dy)``). All exact, one rounding at the end.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.lib.stages import Stages, copy_register, tree_stages

__all__ = ["CoefficientUnit"]


class CoefficientUnit(wiring.Component):
    @staticmethod
    def latency_of(cfg: DefaConfig) -> int:
        """Input register, p*fy, the row difference, the products with fx, the column
        differences, rounding, bank order."""
        return 1 + 2 * tree_stages(cfg.coord_frac_bits) + 4

    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        self.latency = self.latency_of(cfg)
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
        m = Module()
        st = Stages(m, self.en)
        pw = cfg.prob_bits + 1
        wide = unsigned(pw + 2 * f + 1)

        def times(value, bits, name):
            """value * bits as a tree of shifted copies (one per bit of ``bits``)."""
            terms = [Mux(bits[i], value << i, 0) for i in range(f)]
            return st.tree(terms, lambda a, b: a + b, wide, name)

        prob = st.reg(Mux(self.prob > cfg.prob_one, cfg.prob_one, self.prob), pw, "prob")
        fx = st.reg(self.fx, f, "fx")
        fy = st.reg(self.fy, f, "fy")
        odd = st.reg(Cat(self.x_odd, self.y_odd), 2, "odd")
        valid = st.reg(self.valid, 4, "valid")
        # Rows: p*fy and p*(2**F - fy).
        row1, stages = times(prob, fy, "row1_")
        prob = st.delay(prob, stages, "prob")
        row0 = st.reg((prob << f) - row1, wide, "row0")
        row1 = st.reg(row1, wide, "row1")
        fx = st.delay(fx, stages, "fx")
        # fx's last register once per product (kept apart by synthesis): each bit selects a
        # full-width term in one tree, not in both
        fx_own = []
        for name in ("fx10", "fx11"):
            copy = copy_register(f, name=name)
            with m.If(self.en):
                m.d.sync += copy.eq(fx)
            fx_own.append(copy)
        # Columns: c(1, dy) = row_dy * fx, c(0, dy) = row_dy * 2**F - c(1, dy).
        c10, stages = times(row0, fx_own[0], "c10_")
        c11, _ = times(row1, fx_own[1], "c11_")
        row0 = st.delay(row0, stages, "row0")
        row1 = st.delay(row1, stages, "row1")
        corner = [
            st.reg((row0 << f) - c10, wide, "c00"),
            st.reg(c10, wide, "c10"),
            st.reg((row1 << f) - c11, wide, "c01"),
            st.reg(c11, wide, "c11"),
        ]
        odd = st.delay(odd, 2 * stages + 2, "odd")
        valid = st.delay(valid, 2 * stages + 2, "valid")
        # One rounding per corner (a corner whose valid bit is 0 is 0), then the corners in
        # bank order (bank b holds dx = bx ^ x odd, dy = by ^ y odd): an adder, then a select.
        shift = cfg.coeff_shift
        half = (1 << (shift - 1)) if shift else 0
        rounded = [
            st.reg(
                (Mux(valid[j], corner[j], 0) + half) >> shift,
                unsigned(cfg.coeff_bits + 1),
                f"rounded{j}",
            )
            for j in range(4)
        ]
        odd = st.delay(odd, 1, "odd_r")
        with m.If(self.en):
            for b in range(4):
                k = Signal(2, name=f"corner{b}")
                m.d.comb += k.eq(b ^ odd)
                with m.Switch(k):
                    for j in range(4):
                        with m.Case(j):
                            m.d.sync += self.coeff[b].eq(rounded[j])
        return m
