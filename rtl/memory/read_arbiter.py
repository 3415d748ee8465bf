"""Read arbiter: several clients' read requests onto one burst reader, the beats back to the
client that asked.

Contract:

* ``requests[i]`` (client i, ``request_layout``) in; ``request`` out to the reader (its
  ``requests``); ``data`` (the reader's beats, ``last`` on each request's final beat) in;
  ``beats[i]`` out: client i's beats, in its request order. A client must take its beats
  as they come (its ``ready`` is not looked at: the band windows always take theirs).
* Grant: round robin from the client after the last one served; a request is taken from a
  register (the grant decided a cycle before from the clients' valids, held until taken), and
  only while the order queue has room: it holds the client of every request taken whose
  last beat has not come back (``depth`` requests).
* Requests of 0 beats are the reader's error (it takes them and sends nothing): the
  arbiter does not forward them, and they never enter the order queue.
* Latency: a request leaves one cycle after it is taken; a beat reaches its client through
  one register. ``data.ready`` is low for a cycle after each request's last beat (the order
  queue's next entry comes out of its buffer): the reader holds that beat meanwhile.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ReadArbiter"]


class ReadArbiter(wiring.Component):
    def __init__(self, clients: int, request_layout, data_bits: int, *, depth: int = 8):
        if clients < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"clients={clients} is out of range: allowed >= 1")
        self.clients, self.depth = clients, depth
        beat = data.StructLayout({"data": data_bits, "last": 1})
        self._beat = beat
        super().__init__(
            {
                "requests": In(stream.Signature(request_layout)).array(clients),
                "request": Out(stream.Signature(request_layout)),
                "data": In(stream.Signature(beat)),
                "beats": Out(stream.Signature(beat)).array(clients),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self.clients
        client_bits = max(1, (n - 1).bit_length())
        m.submodules.order = order = fifo.SyncFIFOBuffered(width=client_bits, depth=self.depth)

        # The grant: a register, decided while no request is on offer.
        held = Signal()  # a request is on offer to the reader
        # (one bit at least: a zero-width signal is a reversed range in Verilog)
        grant = Signal(range(max(n, 2)))
        last = Signal(range(max(n, 2)))  # the client served last
        m.d.comb += self.request.valid.eq(held)
        request = Signal.like(self.request.payload)
        m.d.comb += self.request.payload.eq(request)
        with m.If(self.request.valid & self.request.ready):
            m.d.sync += held.eq(0)
        owner = Signal(range(max(n, 2)))  # the client of the request on offer
        m.d.comb += [order.w_data.eq(owner), order.w_en.eq(self.request.valid & self.request.ready)]
        with m.If(~held & order.w_rdy):
            # the first valid client after ``last`` (round robin): the highest priority is
            # assigned last
            for k in range(n):
                with m.If(last == k):
                    for offset in reversed(range(1, n + 1)):
                        client = (k + offset) % n
                        with m.If(self.requests[client].valid):
                            m.d.sync += grant.eq(client)
        choose = Signal()  # a grant was decided last cycle: take that client's request now
        m.d.sync += choose.eq(~held & ~choose & order.w_rdy & _any_valid(self.requests))
        for i in range(n):
            take = choose & (grant == i) & self.requests[i].valid
            m.d.comb += self.requests[i].ready.eq(take)
            with m.If(take):
                m.d.sync += [request.eq(self.requests[i].payload), last.eq(i), owner.eq(i)]
                with m.If(self.requests[i].payload.beats != 0):
                    m.d.sync += held.eq(1)

        # Beats: to the client at the head of the order queue, through a register; a beat waits
        # in the reader while the queue's head is not out yet (a cycle after each pop).
        m.d.comb += self.data.ready.eq(order.r_rdy)
        for i in range(n):
            beat = self.beats[i]
            m.d.sync += [
                beat.valid.eq(self.data.valid & order.r_rdy & (order.r_data == i)),
                beat.payload.eq(self.data.payload),
            ]
        m.d.comb += order.r_en.eq(self.data.valid & self.data.payload.last)
        return m


def _any_valid(requests) -> Signal:
    valid = 0
    for r in requests:
        valid = valid | r.valid
    return valid
