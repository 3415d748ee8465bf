"""Inbox: the receiving end of a registered crossing between blocks, and its signature.

A crossing (``crossing(shape)``) carries ``valid`` and ``payload`` from the sender's registers
to the receiver, and ``credit`` back from the receiver's register: no combinational path runs
between the two blocks in either direction, so they may sit far apart on the chip.

Contract of ``Inbox(shape, depth)``:

* Every beat with ``link.valid`` is stored: the sender must never have more than ``depth``
  beats in flight (it counts them with ``Credits``). Nothing checks for room here.
* ``out`` presents the oldest beat from an output register two cycles after its write (the
  cycle ``link.valid`` is high), in order; the next one follows the cycle after the previous
  is taken.
* ``link.credit`` pulses (a register) the cycle after a beat leaves ``out``: at the sender
  the slot is free again two cycles after the beat was taken.
* ``taken`` (combinational) pulses in the cycle a beat leaves ``out``, for a local credit count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Inbox", "crossing"]


def crossing(shape) -> wiring.Signature:
    """A registered crossing from the sender's view: ``valid``/``payload`` out, ``credit`` in."""
    return wiring.Signature({"valid": Out(1), "payload": Out(shape), "credit": In(1)})


class Inbox(wiring.Component):
    def __init__(self, shape, depth: int):
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        self._shape, self.depth = shape, depth
        super().__init__(
            {
                "link": In(crossing(shape)),
                "out": Out(stream.Signature(shape)),
                "taken": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        storage = memory.Memory(shape=self._shape, depth=depth, init=[])
        m.submodules.storage = storage
        write = storage.write_port()
        read = storage.read_port(domain="comb")
        w_addr = Signal(range(depth))
        r_addr = Signal(range(depth))
        stored = Signal(range(depth + 1))  # beats in storage (not in the output register)
        m.d.comb += [
            write.addr.eq(w_addr),
            write.data.eq(self.link.payload),
            write.en.eq(self.link.valid),
        ]
        with m.If(self.link.valid):
            m.d.sync += w_addr.eq(Mux(w_addr == depth - 1, 0, w_addr + 1))

        load = Signal()  # the oldest stored beat moves into the output register
        m.d.comb += [
            read.addr.eq(r_addr),
            load.eq((stored != 0) & (~self.out.valid | self.out.ready)),
            self.taken.eq(self.out.valid & self.out.ready),
        ]
        with m.If(load):
            m.d.sync += [
                self.out.payload.eq(read.data),
                self.out.valid.eq(1),
                r_addr.eq(Mux(r_addr == depth - 1, 0, r_addr + 1)),
            ]
        with m.Elif(self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        m.d.sync += [
            stored.eq(stored + self.link.valid - load),
            self.link.credit.eq(self.taken),
        ]
        return m
