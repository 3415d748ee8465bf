"""Aggregator: joins the L level sums of each job, rounds once, saturates, emits in job order.

Contract: the dispatcher's ``descriptors`` (tag, head, which levels kept no point) and each
level's ``sums`` arrive over registered crossings into inboxes here
(``Dispatcher.descriptor_depth_of(cfg)`` descriptors, ``Accumulator.sum_depth_of(cfg)`` sums
per level), their credits returned through registers. A job is joined when its descriptor
and the sums of its non-empty levels are all readable (an empty level counts as zero):
``out = sat((sum_l + 2**(s-1)) >> s)`` per channel, ``s = coeff_bits - out_frac_bits``,
saturated to ``out_bits`` (``sim.bittrue.core``); the tag and head come with it. Throughput
one job per cycle; latency ``Aggregator.latency(cfg)`` (6 for 2 levels, 7 for 3 or 4) when
the output queue is empty: input register, the sum (a tree, a register after every level),
the rounding, the out-of-range flag (with the sign and low bits), the saturating select into
the output queue (two cycles). The pipeline never stalls
(no enable on its registers): a job is joined only while fewer than
``Aggregator.queue_depth_of(cfg)`` are in flight, so ``outputs.ready`` low fills the queue
and then holds the level sums back. Both crossings into the aggregator carry
``cfg.relay_stages`` relays (``Inbox(relay=...)``): the levels sit apart on the chip.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.accumulator import Accumulator
from rtl.core.dispatcher import Dispatcher
from rtl.core.layouts import (
    DESC_GROUP,
    EMPTY_GROUP,
    SUM_GROUP,
    descriptor_layout,
    join_copies_of,
    level_sum_layout,
    output_layout,
)
from rtl.lib.credit_queue import CreditQueue
from rtl.lib.inbox import Inbox, crossing
from rtl.lib.stages import Stages, copy_register, tree_stages

__all__ = ["Aggregator"]


class Aggregator(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        super().__init__(
            {
                "descriptors": In(crossing(descriptor_layout(cfg, tag_bits), DESC_GROUP)),
                "sums": In(crossing(level_sum_layout(cfg), SUM_GROUP)).array(cfg.levels),
                "outputs": Out(stream.Signature(output_layout(cfg, tag_bits))),
            }
        )

    @staticmethod
    def latency(cfg: DefaConfig) -> int:
        return 1 + tree_stages(cfg.levels) + 2 + 2

    #: jobs the output queue holds: the pipeline's depth and three, so that credits never
    #: throttle an aggregator whose output is taken every cycle
    @staticmethod
    def queue_depth_of(cfg: DefaConfig) -> int:
        return Aggregator.latency(cfg) + 3

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        out_shape = self.outputs.payload.shape()
        copies = join_copies_of(cfg)
        m.submodules.queue = queue = CreditQueue(
            out_shape, self.queue_depth_of(cfg), room_copies=copies
        )
        wiring.connect(m, queue.out, wiring.flipped(self.outputs))
        m.submodules.descriptor_inbox = desc_inbox = Inbox(
            self.descriptors.payload.shape(),
            Dispatcher.descriptor_depth_of(cfg),
            valid_copies=copies,
            relay=cfg.relay_stages,
            address_group=DESC_GROUP,
        )
        wiring.connect(m, wiring.flipped(self.descriptors), desc_inbox.link)
        desc = desc_inbox.out.payload
        sums, inboxes = [], []
        for level, link in enumerate(self.sums):
            # a level sum is wide and registered here (the input register): no output register
            inbox = Inbox(
                level_sum_layout(cfg),
                Accumulator.sum_depth_of(cfg),
                registered_output=False,
                valid_copies=copies,
                relay=cfg.relay_stages,
                slice_takes=True,
                address_group=SUM_GROUP,  # pointer and valid copies per group: the adders spread
            )
            m.submodules[f"sum_inbox{level}"] = inbox
            wiring.connect(m, wiring.flipped(link), inbox.link)
            sums.append(inbox.out)
            inboxes.append(inbox)
        # The join, decided in ``copies`` places at once from copies of the same registers
        # (valids, the descriptor's empty bits, the queue's room): copy k steers level k's sum
        # inbox, copy L the descriptor inbox, copy L + 1 the output queue and the pipeline,
        # copy L + 2 + j the read pointer of slice j in every level's sum inbox (``slice_takes``:
        # slice j of all levels feeds the same channels' adders), so no one net reaches all of
        # them. The copies agree in every cycle.
        load = []
        for k in range(copies):
            decision = Signal(name=f"load{k}")
            m.d.comb += decision.eq(
                desc_inbox.valid_copies[k]
                & Cat(
                    *(
                        inbox.valid_copies[k] | desc.join[k][level]
                        for level, inbox in enumerate(inboxes)
                    )
                ).all()
                & queue.room_copies[k]
            )
            load.append(decision)
        m.d.comb += [
            desc_inbox.out.ready.eq(load[cfg.levels]),
            queue.enter.eq(load[cfg.levels + 1]),
        ]
        for level, s in enumerate(sums):
            m.d.comb += s.ready.eq(load[level] & ~desc.join[level][level])
        # copy k of every input follows decision k (all equal): each place's decision and the
        # copies it reads form one cluster, with no net from one place to the others
        for k in range(copies):
            m.d.comb += [
                desc_inbox.ready_copies[k].eq(load[k]),
                queue.enter_copies[k].eq(load[k]),
                *(
                    inbox.ready_copies[k].eq(load[k] & ~desc.join[k][level])
                    for level, inbox in enumerate(inboxes)
                ),
            ]
        st = Stages(m)
        shift = cfg.out_shift
        half = (1 << (shift - 1)) if shift else 0
        top = (1 << (cfg.out_bits - 1)) - 1
        wide = signed(cfg.acc_bits + cfg.levels.bit_length())
        out = Signal(out_shape)
        # The input register takes each level's sum as read and, beside it, each channel's
        # copy of the descriptor's zero bits (kept: one per channel and level, loaded from the
        # descriptor's copy for its group of EMPTY_GROUP channels); the first adder level
        # selects 0 for a level without a kept point. No zero bit reaches the input registers
        # (it became their synchronous reset, a net across the aggregator), no copy reaches
        # more than its channel's adders, and the sum's latency is the same.
        for c in range(cfg.head_dim):
            zero = copy_register(cfg.levels, name=f"zero{c}")
            m.d.sync += zero.eq(desc.zero[c // EMPTY_GROUP])
            parts = [
                Mux(zero[level], 0, st.reg(s.payload[c], signed(cfg.acc_bits), f"part{level}_{c}"))
                for level, s in enumerate(sums)
            ]
            total, _ = st.tree(parts, lambda a, b: a + b, wide, f"total{c}_")
            value = st.reg((total + half) >> shift, wide, f"rounded{c}")
            # saturation without a compare: out of range iff the bits from out_bits - 1 up
            # are not all equal, registered with the sign and the low bits; then one select
            # into the queue's write
            high = value[cfg.out_bits - 1 :]
            over = st.reg(high.any() & ~high.all(), 1, f"over{c}")
            negative = st.reg(value[-1], 1, f"negative{c}")
            low = st.reg(value[: cfg.out_bits], signed(cfg.out_bits), f"low{c}")
            m.d.comb += out.values[c].eq(Mux(over, Mux(negative, -top - 1, top), low))
        stages = self.latency(cfg) - 2  # the queue's two cycles
        valid = [st.reg(load[cfg.levels + 1], 1, "valid0")]
        tag = [st.reg(desc.tag, desc.tag.shape(), "tag0")]
        head = [st.reg(desc.head, desc.head.shape(), "head0")]
        for i in range(1, stages):
            if i < stages - 1:  # the last stage's enable is the queue's (w_en_next)
                valid.append(st.reg(valid[-1], 1, f"valid{i}"))
            tag.append(st.reg(tag[-1], tag[-1].shape(), f"tag{i}"))
            head.append(st.reg(head[-1], head[-1].shape(), f"head{i}"))
        m.d.comb += [
            out.tag.eq(tag[-1]),
            out.head.eq(head[-1]),
            queue.w_data.eq(out),
            queue.w_en_next.eq(valid[-1]),
        ]
        return m
