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
request's split takes registered steps (the next burst's length from the address and the
beats left, then its issue); no path has more than one compare-and-select or one adder.
Throughput: one beat per cycle; a burst address every three cycles at best (enough for
bursts of three beats or more). Latency: ``AxiReader.latency`` cycles from a beat on the R
channel to the same beat on ``data`` (the input register and the queue).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiReader", "axi_read_signature", "read_request_layout"]

BOUNDARY = 4096  # bytes: an AXI4 burst never crosses one
RESP_SLVERR = 2  # RRESP values 2 (SLVERR) and 3 (DECERR) are errors: bit 1 set


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


def read_request_layout(addr_bits: int, beats_bits: int) -> data.StructLayout:
    return data.StructLayout({"addr": addr_bits, "beats": beats_bits})


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
        problems = []
        if not 12 <= addr_bits <= 64:
            problems.append(f"addr_bits={addr_bits} is out of range: allowed [12, 64]")
        if data_bits not in (8, 16, 32, 64, 128, 256, 512, 1024):
            problems.append(f"data_bits={data_bits} is not allowed: a power of two in [8, 1024]")
        elif not (1 <= max_burst <= 256 and max_burst * data_bits // 8 <= BOUNDARY):
            problems.append(
                f"max_burst={max_burst} is out of range: allowed [1, "
                f"{min(256, BOUNDARY * 8 // data_bits)}] beats of {data_bits} bits (AXI4: 256 "
                f"beats, 4 KB)"
            )
        if not 1 <= beats_bits <= 32:
            problems.append(f"beats_bits={beats_bits} is out of range: allowed [1, 32]")
        if queue_depth < max_burst:
            problems.append(f"queue_depth={queue_depth} is out of range: allowed >= max_burst")
        if outstanding < 1:
            problems.append(f"outstanding={outstanding} is out of range: allowed >= 1")
        if problems:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError("; ".join(problems))
        self.addr_bits, self.data_bits, self.beats_bits = addr_bits, data_bits, beats_bits
        self.max_burst, self.queue_depth, self.outstanding = max_burst, queue_depth, outstanding
        super().__init__(
            {
                "requests": In(stream.Signature(read_request_layout(addr_bits, beats_bits))),
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

        # The split: a taken request's address and beats left, then the next burst's length
        # in two registered steps (the cap by ``max_burst`` and the beats to the boundary,
        # then the smaller of the two).
        addr = Signal(self.addr_bits)
        left = Signal(self.beats_bits)
        busy = Signal()
        step = Signal()  # ``capped`` and ``to_boundary`` hold this burst's bounds
        planned = Signal()  # ``length`` and ``final`` hold the next burst's
        capped = Signal(range(self.max_burst + 1))
        to_boundary = Signal(range(BOUNDARY // beat_bytes + 1))
        length = Signal(range(self.max_burst + 1))
        final = Signal()  # the planned burst is the request's last
        m.d.comb += self.requests.ready.eq(~busy)
        with m.If(self.requests.valid & ~busy):
            request = self.requests.payload
            m.d.sync += [
                addr.eq(request.addr & ~(beat_bytes - 1)),
                left.eq(request.beats),
                busy.eq(request.beats != 0),
            ]
            misaligned = request.addr[:size].any() if size else 0
            with m.If((request.beats == 0) | misaligned):
                m.d.sync += self.error[1].eq(1)
        with m.If(busy & ~step & ~planned):
            m.d.sync += [
                capped.eq(Mux(left < self.max_burst, left, self.max_burst)),
                to_boundary.eq(BOUNDARY // beat_bytes - addr[size:12]),
                step.eq(1),
            ]
        with m.If(step):
            shorter = capped <= to_boundary
            m.d.sync += [
                length.eq(Mux(shorter, capped, to_boundary)),
                final.eq(shorter & (capped == left)),
                step.eq(0),
                planned.eq(1),
            ]

        # Credits: beats of the queue not yet asked for.
        free = Signal(range(self.queue_depth + 1), init=self.queue_depth)
        issue = Signal()
        m.d.comb += issue.eq(
            planned & (~axi.arvalid | axi.arready) & (free >= length) & bursts.w_rdy
        )
        taken = Signal()
        m.d.comb += taken.eq(self.data.valid & self.data.ready)
        m.d.sync += free.eq(free - (issue * length) + taken)

        m.d.comb += [
            axi.arid.eq(0),
            axi.arsize.eq(size),
            axi.arburst.eq(1),  # INCR
            axi.rready.eq(1),
            bursts.w_data.eq(final),
            bursts.w_en.eq(issue),
        ]
        with m.If(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        with m.If(issue):
            m.d.sync += [
                axi.arvalid.eq(1),
                axi.araddr.eq(addr),
                axi.arlen.eq(length - 1),
                addr.eq(addr + length * beat_bytes),
                left.eq(left - length),
                busy.eq(~final),
                planned.eq(0),
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
        m.d.sync += self.idle.eq(~busy & ~planned & (in_flight == 0) & ~axi.arvalid)
        return m
