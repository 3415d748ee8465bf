"""Credit queue: the output end of a pipeline that never stalls.

Contract: the pipeline asks ``room`` before it lets an item ``enter`` (one per cycle at most);
``room`` is high while fewer than ``depth`` items are in flight, counting those inside the
pipeline and those waiting here, so the queue never overflows however long ``out.ready``
stays low. The pipeline writes each item when it leaves (``w_en``, ``w_data``); ``out``
presents it two cycles later (``SyncFIFOBuffered``), in order. With ``depth`` at least the
pipeline's latency (entry to ``out``) plus one, ``room`` never throttles a consumer that
takes an item every cycle. ``idle``: nothing in flight.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import fifo, stream, wiring
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
        m.submodules.fifo = queue = fifo.SyncFIFOBuffered(
            width=Shape.cast(self._shape).width, depth=self.depth
        )
        held = Signal(range(self.depth + 1))
        left = Signal()
        m.d.comb += [
            self.room.eq(held < self.depth),
            self.idle.eq(held == 0),
            left.eq(self.out.valid & self.out.ready),
            queue.w_data.eq(self.w_data),
            queue.w_en.eq(self.w_en),
            self.out.valid.eq(queue.r_rdy),
            self.out.payload.eq(queue.r_data),
            queue.r_en.eq(self.out.ready),
        ]
        m.d.sync += held.eq(held + self.enter - left)
        return m
