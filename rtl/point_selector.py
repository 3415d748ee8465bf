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
to its own pop. The held entry loads in slices of ``SLICE_BITS``, each by its own gate over
its own copies of the control registers and of ``entries.valid`` (``entry_valid``, equal
bits the inbox keeps: ``Inbox(valid_copies=PointSelector.slices_of(cfg))``), so no one net
enables the whole entry.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.inbox import SLICE_BITS, slices_of
from rtl.layouts import entry_layout, point_layout
from rtl.stages import copy_register

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

    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        super().__init__(
            {
                "entries": In(stream.Signature(entry_layout(cfg))),
                "entry_valid": In(self.slices_of(cfg)),
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
        # copies of held and last per slice of the entry (kept apart by synthesis), updated
        # as the originals
        slices = self.slices_of(cfg)
        helds = [held, *(copy_register(1, name=f"held{k}") for k in range(slices))]
        lasts = [last, *(copy_register(1, name=f"last{k}") for k in range(slices))]
        keep = self.entries.payload.keep
        with m.If(take):
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
            load = Signal(name=f"load{k}")
            m.d.comb += load.eq(
                self.entry_valid[k] & (~helds[1 + k] | (self.points.ready & lasts[1 + k]))
            )
            with m.If(load):
                m.d.sync += stored[bits].eq(incoming[bits])
        return m
