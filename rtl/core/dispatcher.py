"""Dispatcher: splits each (query, head) job into per-level entries, pruning points (PAP).

Contract:

* A job is accepted (``jobs.ready``, a register's decision) while every level's entry crossing
  and the descriptor crossing have credit; throughput one job per cycle.
* PAP: point (l, p) is kept when the job's ``keep[l]`` bit p is set (``prob >= tau_p``,
  decided by the source: the softmax compares as its probabilities enter its output queue, so
  no compare lies between the job's registers and the crossings' valid copies here). A pruned
  point never reaches a level unit: it costs no sampler cycle, no buffer read.
* Each accepted job leaves from registers: the next cycle to level l, only when a point was
  kept there, an entry (its P points and keep mask) on ``entries[l]``, and the cycle after to
  the aggregator a descriptor (tag, head, ``empty`` = per level no point kept) on
  ``descriptors``. Both are registered crossings (``rtl.lib.inbox``): the receivers' inboxes hold
  ``entry_depth_of(cfg)`` entries and ``descriptor_depth_of(cfg)`` descriptors, the credits
  are counted here (``Credits``). An accepted job takes an entry credit at every level; a level
  where it kept nothing gets that credit back two cycles later.
* ``accepted`` (a register) pulses the cycle after a job was accepted; ``kept`` and ``pruned``
  are then the numbers of its kept and pruned points (two counts side by side, from
  registers).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import DESC_GROUP, descriptor_layout, entry_layout, job_layout
from rtl.core.sampler import Sampler
from rtl.lib.credits import Credits
from rtl.lib.inbox import crossing, send
from rtl.lib.stages import copy_register

__all__ = ["Dispatcher"]


class Dispatcher(wiring.Component):
    #: entries a level unit's inbox holds: the queue depth and the credit round trip (an entry
    #: accepted in cycle a is readable at a+3, its credit back at the earliest at a+5)
    @staticmethod
    def entry_depth_of(cfg: DefaConfig) -> int:
        return cfg.queue_depth + 3

    #: descriptors the aggregator's inbox holds: the queue depth and the round trip through a
    #: level (entry crossing, the point selector's register and its crossing into the
    #: sampler's inbox, sampler, sum crossing, the join
    #: and the credit's return, the sum's and the credit's relays) and the
    #: descriptor's own extra stage
    @staticmethod
    def descriptor_depth_of(cfg: DefaConfig) -> int:
        return cfg.queue_depth + Sampler.latency_of(cfg) + 14 + 2 * cfg.relay_stages

    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        self._tag_bits = tag_bits
        lv = cfg.levels
        super().__init__(
            {
                "jobs": In(stream.Signature(job_layout(cfg, tag_bits, probs=True, keep=True))),
                "entries": Out(crossing(entry_layout(cfg))).array(lv),
                "descriptors": Out(crossing(descriptor_layout(cfg, tag_bits), DESC_GROUP)),
                "accepted": Out(1),
                "kept": Out(range(cfg.points_per_head + 1)),
                "pruned": Out(range(cfg.points_per_head + 1)),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        job = self.jobs.payload

        m.submodules.descriptor_credits = desc_credits = Credits(self.descriptor_depth_of(cfg))
        rooms = [desc_credits.room_next]
        entry_credits = []
        for level in range(cfg.levels):
            credits = Credits(self.entry_depth_of(cfg))
            m.submodules[f"entry_credits{level}"] = credits
            entry_credits.append(credits)
            rooms.append(credits.room_next)
        room = Signal(init=1)  # every count has room: one register (the source's ready)
        accept = Signal()
        m.d.sync += room.eq(Cat(*rooms).all())
        m.d.comb += [
            accept.eq(self.jobs.valid & room),
            self.jobs.ready.eq(room),
        ]

        empty = Signal(cfg.levels)
        for level, credits in enumerate(entry_credits):
            keep = job.keep[level]
            m.d.comb += empty[level].eq(~keep.any())
            link = self.entries[level]
            entry = link.payload
            head = copy_register(entry.head.shape(), name=f"head{level}")  # the level's own
            m.d.comb += entry.head.eq(head)
            m.d.sync += [
                head.eq(job.head),
                entry.ref_x.eq(job.ref_x[level]),
                entry.ref_y.eq(job.ref_y[level]),
                entry.off_x.eq(job.off_x[level]),
                entry.off_y.eq(job.off_y[level]),
                entry.prob.eq(job.prob[level]),
                entry.keep.eq(keep),
            ]
            send(m, link, accept & keep.any(), f"entry_valid{level}")
            refund = Signal(name=f"refund{level}")  # an empty level's credit, given back
            m.d.sync += refund.eq(accept & ~keep.any())
            m.d.comb += [
                credits.enter.eq(accept),
                credits.freed.eq(link.credit),
                credits.refund.eq(refund),
            ]

        # The descriptor leaves a cycle after the entries: first the job's tag, head and
        # empty bits in local registers, then the crossing's registers, with ``empty`` copied
        # once per EMPTY_GROUP channels for the aggregator (copies kept by synthesis), loaded
        # from a register.
        desc = self.descriptors.payload
        desc_tag = Signal.like(desc.tag, name="desc_tag")
        desc_head = copy_register(desc.head.shape(), name="desc_head")
        desc_empty = Signal(cfg.levels, name="desc_empty")
        desc_valid = Signal(name="desc_valid")
        send(m, self.descriptors, desc_valid, "desc_valid_out")
        m.d.sync += [
            desc_tag.eq(job.tag),
            desc_head.eq(job.head),
            desc_empty.eq(empty),
            desc_valid.eq(accept),
            desc.tag.eq(desc_tag),
            desc.head.eq(desc_head),
            desc.empty.eq(desc_empty),
            self.accepted.eq(accept),
        ]
        for k in range(len(desc.zero)):
            zero = copy_register(cfg.levels, name=f"zero{k}")
            m.d.comb += desc.zero[k].eq(zero)
            m.d.sync += zero.eq(desc_empty)
        for k in range(len(desc.join)):
            join = copy_register(cfg.levels, name=f"join{k}")
            m.d.comb += desc.join[k].eq(join)
            m.d.sync += join.eq(desc_empty)
        m.d.comb += [
            desc_credits.enter.eq(accept),
            desc_credits.freed.eq(self.descriptors.credit),
            self.kept.eq(
                sum(link.payload.keep[p] for link in self.entries for p in range(cfg.points))
            ),
            self.pruned.eq(
                sum(~link.payload.keep[p] for link in self.entries for p in range(cfg.points))
            ),
        ]
        return m
