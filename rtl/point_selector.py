"""Point selector: issues the kept points of each level entry to the sampler, one per
accepted transfer, skipping pruned points at no cost.

Contract: for an entry with k kept points (k >= 1), exactly k points leave on ``points`` in
point order, the last with ``tag`` = 1 (the job's last point at this level), all others with
``tag`` = 0; the entry is popped together with its last point, so the next entry's first
point can follow in the next cycle (throughput one point per cycle). Combinational: no
latency, no storage besides the mask of points already issued.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import entry_layout, point_layout

__all__ = ["PointSelector"]


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
        entry = self.entries.payload
        issued = Signal(npts)  # points of the head entry already sent
        remaining = Signal(npts)
        m.d.comb += remaining.eq(entry.keep & ~issued)
        # The lowest remaining point (a priority choice, plain logic: no carry chain between
        # the entry and its pop), and whether it is the last one.
        select = Signal(npts)  # one-hot
        for p in range(npts):
            m.d.comb += select[p].eq(remaining[p] & ~remaining[:p].any() if p else remaining[0])
        is_last = Signal()
        m.d.comb += is_last.eq(~(remaining & ~select).any())

        point = self.points.payload
        m.d.comb += [
            point.ref_x.eq(entry.ref_x),
            point.ref_y.eq(entry.ref_y),
            point.head.eq(entry.head),
            point.tag.eq(is_last),
        ]
        for p in range(npts):
            with m.If(select[p]):
                m.d.comb += [
                    point.off_x.eq(entry.off_x[p]),
                    point.off_y.eq(entry.off_y[p]),
                    point.prob.eq(entry.prob[p]),
                ]
        # An entry is popped with its last point, so a valid entry with a kept point always has
        # one left: valid does not wait for the selection logic.
        m.d.comb += self.points.valid.eq(self.entries.valid & entry.keep.any())
        take = self.points.valid & self.points.ready
        # An entry without kept points (the dispatcher never queues one) is dropped, not stuck.
        m.d.comb += self.entries.ready.eq(
            (take & is_last) | (self.entries.valid & ~entry.keep.any())
        )
        with m.If(take):
            m.d.sync += issued.eq(0)
            with m.If(~is_last):
                m.d.sync += issued.eq(issued | select)
        return m
