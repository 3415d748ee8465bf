"""Aggregator: joins the L level sums of each job, rounds once, saturates, emits in job order.

Contract: when every level has its next sum, ``out = sat((sum_l + 2**(s-1)) >> s)`` per
channel, ``s = coeff_bits - out_frac_bits``, saturated to ``out_bits`` (``sim.bittrue.core``);
the tag and head come with it. Output register: latency 1, throughput one job per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import level_sum_layout, output_layout

__all__ = ["Aggregator"]


class Aggregator(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        super().__init__(
            {
                "sums": In(stream.Signature(level_sum_layout(cfg, tag_bits))).array(cfg.levels),
                "outputs": Out(stream.Signature(output_layout(cfg, tag_bits))),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        all_valid = Signal()
        m.d.comb += all_valid.eq(Cat(*(s.valid for s in self.sums)).all())
        load = Signal()
        m.d.comb += load.eq(all_valid & (~self.outputs.valid | self.outputs.ready))
        for s in self.sums:
            m.d.comb += s.ready.eq(load)
        with m.If(self.outputs.ready):
            m.d.sync += self.outputs.valid.eq(0)
        out = self.outputs.payload
        shift = cfg.out_shift
        half = (1 << (shift - 1)) if shift else 0
        top = (1 << (cfg.out_bits - 1)) - 1
        wide = cfg.acc_bits + cfg.levels.bit_length()
        with m.If(load):
            m.d.sync += [
                self.outputs.valid.eq(1),
                out.tag.eq(self.sums[0].payload.tag),
                out.head.eq(self.sums[0].payload.head),
            ]
            for c in range(cfg.head_dim):
                total = Signal(signed(wide), name=f"total{c}")
                m.d.comb += total.eq(sum(s.payload.values[c] for s in self.sums))
                rounded = Signal(signed(wide), name=f"rounded{c}")
                m.d.comb += rounded.eq((total + half) >> shift)
                m.d.sync += out.values[c].eq(
                    Mux(rounded > top, top, Mux(rounded < -top - 1, -top - 1, rounded))
                )
        return m
