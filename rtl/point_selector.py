"""Point selector: issues the kept points of each level entry to the sampler, one per
accepted transfer, skipping pruned points at no cost.

Contract: for an entry with k kept points (k >= 1), exactly k points leave on ``points`` in
point order, the last with ``tag`` = 1 (the job's last point at this level), all others with
``tag`` = 0. The head entry is held in this unit's registers: it is taken from ``entries``
(whose payload may be combinational, e.g. an ``Inbox`` without output register) when nothing
is held or together with the held entry's last point, and its first point leaves the cycle
after (latency 1); the next entry's first point follows the previous entry's last point in
the next cycle (throughput one point per cycle). An entry without kept points (the dispatcher
never queues one) is taken and dropped.

Timing: ``points`` is driven by registers alone (payload, ``valid``, ``tag``); ``entries.ready``
is one gate over this unit's registers and ``points.ready``: no path from the entry's payload
to its own pop.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import entry_layout, point_layout

__all__ = ["PointSelector"]


def _exactly_one(bits):
    """1 when exactly one of ``bits`` is set (plain logic, no adder)."""
    n = len(bits)
    return Cat(*(bits[i] & ~Cat(bits[:i], bits[i + 1 : n]).any() for i in range(n))).any()


class PointSelector(wiring.Component):
    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        super().__init__(
            {
                "entries": In(stream.Signature(entry_layout(cfg))),
                "points": Out(stream.Signature(point_layout(cfg, tag_bits=1))),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        npts = cfg.points
        m = Module()
        entry = Signal(entry_layout(cfg), name="entry")  # the held entry
        held = Signal()  # an entry is held (with a point left)
        remaining = Signal(npts)  # its points not yet issued
        last = Signal()  # exactly one is left
        # The lowest remaining point (a priority choice over a register).
        select = Signal(npts)  # one-hot
        for p in range(npts):
            m.d.comb += select[p].eq(remaining[p] & ~remaining[:p].any() if p else remaining[0])

        point = self.points.payload
        m.d.comb += [
            point.ref_x.eq(entry.ref_x),
            point.ref_y.eq(entry.ref_y),
            point.head.eq(entry.head),
            point.tag.eq(last),
            self.points.valid.eq(held),
        ]
        for p in range(npts):
            with m.If(select[p]):
                m.d.comb += [
                    point.off_x.eq(entry.off_x[p]),
                    point.off_y.eq(entry.off_y[p]),
                    point.prob.eq(entry.prob[p]),
                ]
        take = Signal()
        m.d.comb += [
            take.eq(held & self.points.ready),
            self.entries.ready.eq(~held | (self.points.ready & last)),
        ]
        after = Signal(npts)  # the remaining points after this one
        m.d.comb += after.eq(remaining & ~select)
        with m.If(take):
            m.d.sync += [remaining.eq(after), last.eq(_exactly_one(after))]
            with m.If(last):
                m.d.sync += held.eq(0)
        with m.If(self.entries.valid & self.entries.ready):
            keep = self.entries.payload.keep
            m.d.sync += [
                entry.eq(self.entries.payload),
                remaining.eq(keep),
                last.eq(_exactly_one(keep)),
                held.eq(keep.any()),
            ]
        return m
