"""AXI4 burst reader: read requests (byte address, beats) in, INCR bursts out on an AXI4 read
port, the data back in request order.

Contract:

* ``requests``: ``addr`` in bytes and ``beats`` (of ``data_bits`` each). A request is split
  into INCR bursts of at most ``max_burst`` beats that never cross a 4 KB boundary (AXI4),
  full width (``arsize`` = log2 of the bytes per beat), ``arid`` 0: the memory answers in
  order.
* ``data``: every beat, in request order, ``last`` on each request's final beat.
* ``error`` (sticky until ``clear``): bit 0, a beat came back with RRESP SLVERR or DECERR
  (its data still goes out, so every request still ends with ``last``); bit 1, a request was
  malformed: 0 beats (taken, nothing read, no ``last``) or an address that is not a multiple
  of the beat's bytes (read from the beat that holds it).
* Flow control: a burst is issued only while the output queue (``queue_depth`` beats) has
  room for all its beats beside those already asked for, and fewer than ``outstanding``
  bursts are in flight; ``rready`` is always high, so the reader never holds the memory up,
  however long ``data.ready`` stays low.
* ``idle``: no request taken and unfinished, nothing outstanding, the queue empty.

Timing: the AXI outputs are registers, the R channel is registered on the way in, and a
request's split (``BurstSplit``) takes registered steps; no path has more than one
compare-and-select or one adder.
Throughput: one beat per cycle; a burst address every three cycles at best (enough for
bursts of three beats or more). Latency: ``AxiReader.latency`` cycles from a beat on the R
channel to the same beat on ``data`` (the input register and the queue).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.memory.burst_split import BurstSplit, burst_problems, request_layout

__all__ = ["AxiReader", "axi_read_signature"]


def axi_read_signature(addr_bits: int, data_bits: int) -> wiring.Signature:
    """The AR and R channels of an AXI4 master, as the master sees them (AXI names)."""
    return wiring.Signature(
        {
            "arid": Out(1),
            "araddr": Out(addr_bits),
            "arlen": Out(8),
            "arsize": Out(3),
            "arburst": Out(2),
            "arvalid": Out(1),
            "arready": In(1),
            "rid": In(1),
            "rdata": In(data_bits),
            "rresp": In(2),
            "rlast": In(1),
            "rvalid": In(1),
            "rready": Out(1),
        }
    )


class AxiReader(wiring.Component):
    def __init__(
        self,
        *,
        addr_bits: int = 32,
        data_bits: int = 64,
        beats_bits: int = 16,
        max_burst: int = 16,
        queue_depth: int = 32,
        outstanding: int = 4,
    ):
        problems = burst_problems(addr_bits, data_bits, beats_bits, max_burst, outstanding)
        if queue_depth < max_burst:
            problems.append(f"queue_depth={queue_depth} is out of range: allowed >= max_burst")
        if problems:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError("; ".join(problems))
        self.addr_bits, self.data_bits, self.beats_bits = addr_bits, data_bits, beats_bits
        self.max_burst, self.queue_depth, self.outstanding = max_burst, queue_depth, outstanding
        super().__init__(
            {
                "requests": In(stream.Signature(request_layout(addr_bits, beats_bits))),
                "data": Out(stream.Signature(data.StructLayout({"data": data_bits, "last": 1}))),
                "axi": Out(axi_read_signature(addr_bits, data_bits)),
                "error": Out(2),
                "clear": In(1),
                "idle": Out(1, init=1),
            }
        )

    #: cycles from a beat on the R channel to the same beat on ``data`` (queue empty)
    latency = 3

    def elaborate(self, platform):
        m = Module()
        beat_bytes = self.data_bits // 8
        size = beat_bytes.bit_length() - 1
        axi = self.axi

        # The queue of beats and the queue of bursts in flight (is each a request's last?).
        m.submodules.beats = beats = fifo.SyncFIFOBuffered(
            width=self.data_bits + 1, depth=self.queue_depth
        )
        m.submodules.bursts = bursts = fifo.SyncFIFO(width=1, depth=self.outstanding)
        m.d.comb += [
            self.data.valid.eq(beats.r_rdy),
            self.data.payload.data.eq(beats.r_data[: self.data_bits]),
            self.data.payload.last.eq(beats.r_data[self.data_bits]),
            beats.r_en.eq(self.data.ready),
        ]

        m.submodules.split = split = BurstSplit(
            self.addr_bits, self.data_bits, self.beats_bits, self.max_burst
        )
        wiring.connect(m, wiring.flipped(self.requests), split.requests)
        burst = split.bursts.payload
        with m.If(split.malformed):
            m.d.sync += self.error[1].eq(1)

        # Credits: beats of the queue not yet asked for.
        free = Signal(range(self.queue_depth + 1), init=self.queue_depth)
        issue = Signal()
        m.d.comb += [
            split.bursts.ready.eq(
                (~axi.arvalid | axi.arready) & (free >= burst.length) & bursts.w_rdy
            ),
            issue.eq(split.bursts.valid & split.bursts.ready),
        ]
        taken = Signal()
        m.d.comb += taken.eq(self.data.valid & self.data.ready)
        m.d.sync += free.eq(free - (issue * burst.length) + taken)

        m.d.comb += [
            axi.arid.eq(0),
            axi.arsize.eq(size),
            axi.arburst.eq(1),  # INCR
            axi.rready.eq(1),
            bursts.w_data.eq(burst.final),
            bursts.w_en.eq(issue),
        ]
        with m.If(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(issue):
            m.d.sync += [
                axi.arvalid.eq(1),
                axi.araddr.eq(burst.addr),
                axi.arlen.eq(burst.length - 1),
            ]

        # The R channel, registered on the way in, into the queue.
        r_valid = Signal()
        r_data = Signal(self.data_bits)
        r_last = Signal()
        r_err = Signal()
        m.d.sync += [
            r_valid.eq(axi.rvalid),
            r_data.eq(axi.rdata),
            r_last.eq(axi.rlast),
            r_err.eq(axi.rresp[1]),
        ]
        m.d.comb += [
            beats.w_data.eq(Cat(r_data, r_last & bursts.r_data)),
            beats.w_en.eq(r_valid),
            bursts.r_en.eq(r_valid & r_last),
        ]
        with m.If(r_valid & r_err):
            m.d.sync += self.error[0].eq(1)
        with m.If(self.clear):
            m.d.sync += self.error.eq(0)

        in_flight = Signal(range(self.queue_depth + 1))
        m.d.comb += in_flight.eq(self.queue_depth - free)
        m.d.sync += self.idle.eq(split.idle & (in_flight == 0) & ~axi.arvalid)
        return m
