"""Point selector: issues the kept points of each level entry to the sampler over a registered
crossing, one per cycle at most, skipping pruned points at no cost.

Contract: for an entry with k kept points (k >= 1), exactly k points leave on ``points`` in
point order, the last with ``tag`` = 1 (the job's last point at this level), all others with
``tag`` = 0. ``points`` is a crossing (``rtl.lib.inbox.crossing``) into an inbox of
``PointSelector.point_depth_of(cfg)`` points at the sampler: this unit counts its credits
itself, so no ready comes back from the sampler in the cycle it decides (the two sit at
opposite ends of a level's multipliers). The head entry is held in this unit's registers: it
is taken from ``entries`` (whose payload may be combinational, e.g. an ``Inbox`` without
output register) when nothing is held or together with the held entry's last point, and its
first point is issued the cycle after (a point is issued in a cycle with the entry held and a
credit; it is sent, valid and payload from registers, the cycle after). The next entry's first
point follows the previous entry's last point in the next cycle (one point per cycle while
credits last; ``point_depth_of`` covers the credits' round trip, so a sampler that takes a
point every cycle never waits on them). An entry without kept points (the dispatcher never
queues one) is taken and dropped.

Timing: ``entries.ready`` and ``entry_ready`` are gates over this unit's registers alone. The
held entry loads in slices of ``SLICE_BITS``, each by its own gate over its own copies of the
control registers, of the credit count's room and of ``entries.valid`` (``entry_valid``,
equal bits the inbox keeps: ``Inbox(valid_copies=PointSelector.slices_of(cfg))``), and
``entry_ready`` bit k (equal to ``entries.ready``) is slice k's decision, for the inbox's copy
k: no one net enables the whole entry.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import entry_layout, point_layout
from rtl.lib.credits import Credits
from rtl.lib.inbox import CREDIT_RETURN, CROSSING_LATENCY, SLICE_BITS, crossing, send, slices_of
from rtl.lib.stages import copy_register

__all__ = ["PointSelector"]


def _exactly_one(bits):
    """1 when exactly one of ``bits`` is set (plain logic, no adder)."""
    n = len(bits)
    return Cat(*(bits[i] & ~Cat(bits[:i], bits[i + 1 : n]).any() for i in range(n))).any()


class PointSelector(wiring.Component):
    #: slices of the held entry, each loaded by its own gate (and copies of ``entries.valid``)
    @staticmethod
    def slices_of(cfg: DefaConfig) -> int:
        return slices_of(entry_layout(cfg))

    #: points the sampler's inbox holds: the credits' round trip (issue to credit free
    #: again), so credits never throttle a sampler that takes a point every cycle
    @staticmethod
    def point_depth_of(cfg: DefaConfig) -> int:
        return CROSSING_LATENCY + CREDIT_RETURN

    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        super().__init__(
            {
                "entries": In(stream.Signature(entry_layout(cfg))),
                "entry_valid": In(self.slices_of(cfg)),
                "entry_ready": Out(self.slices_of(cfg)),
                "points": Out(crossing(point_layout(cfg, tag_bits=1))),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        npts = cfg.points
        m = Module()
        slices = self.slices_of(cfg)
        m.submodules.credits = credits = Credits(self.point_depth_of(cfg), room_copies=slices)
        entry = Signal(entry_layout(cfg), name="entry")  # the held entry
        held = Signal()  # an entry is held (with a point left)
        remaining = Signal(npts)  # its points not yet issued
        last = Signal()  # exactly one is left
        # The lowest remaining point (a priority choice over a register).
        select = Signal(npts)  # one-hot
        for p in range(npts):
            m.d.comb += select[p].eq(remaining[p] & ~remaining[:p].any() if p else remaining[0])

        # the point register: the selected point every cycle (no enable: ``valid`` marks it)
        point = Signal(point_layout(cfg, tag_bits=1), name="point")
        m.d.comb += self.points.payload.eq(point)
        m.d.sync += [
            point.ref_x.eq(entry.ref_x),
            point.ref_y.eq(entry.ref_y),
            point.head.eq(entry.head),
            point.tag.eq(last),
        ]
        for p in range(npts):
            with m.If(select[p]):
                m.d.sync += [
                    point.off_x.eq(entry.off_x[p]),
                    point.off_y.eq(entry.off_y[p]),
                    point.prob.eq(entry.prob[p]),
                ]
        issue = Signal()
        m.d.comb += [
            issue.eq(held & credits.room),
            credits.enter.eq(issue),
            credits.enter_copies.eq(issue.replicate(slices)),
            credits.freed.eq(self.points.credit),
            self.entries.ready.eq(~held | (credits.room & last)),
        ]
        send(m, self.points, issue, "point_valid")
        after = Signal(npts)  # the remaining points after this one
        m.d.comb += after.eq(remaining & ~select)
        # copies of held and last per slice of the entry (kept apart by synthesis), updated
        # as the originals
        helds = [held, *(copy_register(1, name=f"held{k}") for k in range(slices))]
        lasts = [last, *(copy_register(1, name=f"last{k}") for k in range(slices))]
        keep = self.entries.payload.keep
        with m.If(issue):
            m.d.sync += remaining.eq(after)
            m.d.sync += [c.eq(_exactly_one(after)) for c in lasts]
            with m.If(last):
                m.d.sync += [c.eq(0) for c in helds]
        with m.If(self.entries.valid & self.entries.ready):
            m.d.sync += remaining.eq(keep)
            m.d.sync += [c.eq(_exactly_one(keep)) for c in lasts]
            m.d.sync += [c.eq(keep.any()) for c in helds]
        stored, incoming = Value.cast(entry), Value.cast(self.entries.payload)
        width = len(stored)
        for k, first in enumerate(range(0, width, SLICE_BITS)):
            bits = slice(first, min(first + SLICE_BITS, width))
            ready = Signal(name=f"entry_ready{k}")
            m.d.comb += [
                ready.eq(~helds[1 + k] | (credits.room_copies[k] & lasts[1 + k])),
                self.entry_ready[k].eq(ready),
            ]
            with m.If(self.entry_valid[k] & ready):
                m.d.sync += stored[bits].eq(incoming[bits])
        return m
