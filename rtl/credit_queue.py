"""Credit queue: the output end of a pipeline that never stalls.

Contract: the pipeline asks ``room`` before it lets an item ``enter`` (one per cycle at most);
``room`` is high while fewer than ``depth`` items are in flight, counting those inside the
pipeline and those waiting here, so the queue never overflows however long ``out.ready``
stays low. The pipeline writes each item when it leaves (``w_en``, ``w_data``); ``out``
presents it two cycles later, in order, from an output register. With ``depth`` at least the
pipeline's latency (entry to ``out``) plus one, ``room`` never throttles a consumer that
takes an item every cycle. ``idle``: nothing in flight.

Timing: the credits make a full check unnecessary, so the storage's write enable, address
and data come straight from registers (``w_en`` and ``w_data`` should be registers of the
pipeline's last stage): no logic in front of the wide write.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CreditQueue"]


class CreditQueue(wiring.Component):
    def __init__(self, shape, depth: int):
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        self._shape, self.depth = shape, depth
        super().__init__(
            {
                "enter": In(1),
                "room": Out(1),
                "idle": Out(1),
                "w_data": In(shape),
                "w_en": In(1),
                "out": Out(stream.Signature(shape)),
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
        stored = Signal(range(depth + 1))  # items in storage (not in the output register)
        m.d.comb += [write.addr.eq(w_addr), write.data.eq(self.w_data), write.en.eq(self.w_en)]
        with m.If(self.w_en):
            m.d.sync += w_addr.eq(Mux(w_addr == depth - 1, 0, w_addr + 1))

        load = Signal()  # the oldest stored item moves into the output register
        m.d.comb += [
            read.addr.eq(r_addr),
            load.eq((stored != 0) & (~self.out.valid | self.out.ready)),
        ]
        with m.If(load):
            m.d.sync += [
                self.out.payload.eq(read.data),
                self.out.valid.eq(1),
                r_addr.eq(Mux(r_addr == depth - 1, 0, r_addr + 1)),
            ]
        with m.Elif(self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        m.d.sync += stored.eq(stored + self.w_en - load)

        held = Signal(range(depth + 1))
        left = Signal()
        m.d.comb += [
            self.room.eq(held < depth),
            self.idle.eq(held == 0),
            left.eq(self.out.valid & self.out.ready),
        ]
        m.d.sync += held.eq(held + self.enter - left)
        return m
