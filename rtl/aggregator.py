"""Aggregator: joins the L level sums of each job, rounds once, saturates, emits in job order.

Contract: when every level has its next sum, ``out = sat((sum_l + 2**(s-1)) >> s)`` per
channel, ``s = coeff_bits - out_frac_bits``, saturated to ``out_bits`` (``sim.bittrue.core``);
the tag and head come with it. Throughput one job per cycle; latency ``Aggregator.latency(cfg)``
(5 for up to 4 levels) when the output queue is empty: input register, the sum (a tree, a
register every two levels), the rounding, the saturation into the output queue (two cycles).
The pipeline never stalls (no enable on its registers): a job is joined only while fewer than
``Aggregator.queue_depth_of(cfg)`` are in flight, so ``outputs.ready`` low fills the queue
and then holds the level sums back.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.credit_queue import CreditQueue
from rtl.layouts import level_sum_layout, output_layout
from rtl.stages import Stages, tree_stages

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

    @staticmethod
    def latency(cfg: DefaConfig) -> int:
        return 1 + tree_stages(cfg.levels) + 1 + 2

    #: jobs the output queue holds: the pipeline's depth and two, so that credits never
    #: throttle an aggregator whose output is taken every cycle
    @staticmethod
    def queue_depth_of(cfg: DefaConfig) -> int:
        return Aggregator.latency(cfg) + 2

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        out_shape = self.outputs.payload.shape()
        m.submodules.queue = queue = CreditQueue(out_shape, self.queue_depth_of(cfg))
        wiring.connect(m, queue.out, wiring.flipped(self.outputs))
        load = Signal()
        m.d.comb += [
            load.eq(Cat(*(s.valid for s in self.sums)).all() & queue.room),
            queue.enter.eq(load),
        ]
        for s in self.sums:
            m.d.comb += s.ready.eq(load)
        st = Stages(m)
        shift = cfg.out_shift
        half = (1 << (shift - 1)) if shift else 0
        top = (1 << (cfg.out_bits - 1)) - 1
        wide = signed(cfg.acc_bits + cfg.levels.bit_length())
        first = self.sums[0].payload
        out = Signal(out_shape)
        for c in range(cfg.head_dim):
            parts = [
                st.reg(s.payload.values[c], signed(cfg.acc_bits), f"part{level}_{c}")
                for level, s in enumerate(self.sums)
            ]
            total, _ = st.tree(parts, lambda a, b: a + b, wide, f"total{c}_")
            value = st.reg((total + half) >> shift, wide, f"rounded{c}")
            m.d.comb += out.values[c].eq(
                Mux(value > top, top, Mux(value < -top - 1, -top - 1, value))
            )
        stages = self.latency(cfg) - 2  # the queue's two cycles
        valid = [st.reg(load, 1, "valid0")]
        tag = [st.reg(first.tag, first.tag.shape(), "tag0")]
        head = [st.reg(first.head, first.head.shape(), "head0")]
        for i in range(1, stages):
            valid.append(st.reg(valid[-1], 1, f"valid{i}"))
            tag.append(st.reg(tag[-1], tag[-1].shape(), f"tag{i}"))
            head.append(st.reg(head[-1], head[-1].shape(), f"head{i}"))
        m.d.comb += [
            out.tag.eq(tag[-1]),
            out.head.eq(head[-1]),
            queue.w_data.eq(out),
            queue.w_en.eq(valid[-1]),
        ]
        return m
