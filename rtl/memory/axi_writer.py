"""AXI4 burst writer: write requests (byte address, beats) and a stream of data beats in, INCR
bursts out on an AXI4 write port (AW, W, B).

Contract:

* ``requests``: ``addr`` in bytes and ``beats`` (of ``data_bits`` each); ``data`` supplies
  the beats, in request order, exactly ``beats`` per request (a request takes the next
  ``beats`` beats whenever they come). ``BurstSplit`` splits it, as for the reader: INCR
  bursts of at most ``max_burst`` beats inside one 4 KB page, full width, every byte strobed,
  id 0.
* W beats go out only for bursts whose address was issued, ``wlast`` on each burst's last.
* ``error`` (sticky until ``clear``): bit 0, a burst was answered with BRESP SLVERR or DECERR;
  bit 1, a request was malformed: 0 beats (taken, nothing written) or an address that is not
  a multiple of the beat's bytes (written from the beat that holds it).
* Flow control: at most ``outstanding`` bursts wait for their response; ``bready`` is always
  high. ``data`` goes through a queue of ``queue_depth`` beats (its ``ready`` is the queue's
  room, a register).
* ``idle``: no request taken and unfinished, every beat written and every burst answered.

Timing: AW outputs are registers, ``wdata``/``wlast`` come from registers and ``wvalid`` is
the AND of two registers; B is registered on the way in; the split is ``BurstSplit``'s.
Throughput: one beat per cycle (a new burst's beats follow the previous burst's last without
a gap when its address is out).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.memory.burst_split import BurstSplit, burst_problems, request_layout

__all__ = ["AxiWriter", "axi_write_signature"]


def axi_write_signature(addr_bits: int, data_bits: int) -> wiring.Signature:
    """The AW, W and B channels of an AXI4 master, as the master sees them (AXI names)."""
    return wiring.Signature(
        {
            "awid": Out(1),
            "awaddr": Out(addr_bits),
            "awlen": Out(8),
            "awsize": Out(3),
            "awburst": Out(2),
            "awvalid": Out(1),
            "awready": In(1),
            "wdata": Out(data_bits),
            "wstrb": Out(data_bits // 8),
            "wlast": Out(1),
            "wvalid": Out(1),
            "wready": In(1),
            "bid": In(1),
            "bresp": In(2),
            "bvalid": In(1),
            "bready": Out(1),
        }
    )


class AxiWriter(wiring.Component):
    def __init__(
        self,
        *,
        addr_bits: int = 32,
        data_bits: int = 64,
        beats_bits: int = 16,
        max_burst: int = 16,
        queue_depth: int = 16,
        outstanding: int = 4,
    ):
        problems = burst_problems(addr_bits, data_bits, beats_bits, max_burst, outstanding)
        if queue_depth < 2:
            problems.append(f"queue_depth={queue_depth} is out of range: allowed >= 2")
        if problems:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError("; ".join(problems))
        self.addr_bits, self.data_bits, self.beats_bits = addr_bits, data_bits, beats_bits
        self.max_burst, self.queue_depth, self.outstanding = max_burst, queue_depth, outstanding
        super().__init__(
            {
                "requests": In(stream.Signature(request_layout(addr_bits, beats_bits))),
                "data": In(stream.Signature(data_bits)),
                "axi": Out(axi_write_signature(addr_bits, data_bits)),
                "error": Out(2),
                "clear": In(1),
                "idle": Out(1, init=1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        beat_bytes = self.data_bits // 8
        size = beat_bytes.bit_length() - 1
        axi = self.axi

        m.submodules.beats = beats = fifo.SyncFIFOBuffered(
            width=self.data_bits, depth=self.queue_depth
        )
        m.submodules.bursts = bursts = fifo.SyncFIFO(
            width=(self.max_burst).bit_length(), depth=self.outstanding
        )
        m.d.comb += [
            beats.w_data.eq(self.data.payload),
            beats.w_en.eq(self.data.valid),
            self.data.ready.eq(beats.w_rdy),
        ]

        m.submodules.split = split = BurstSplit(
            self.addr_bits, self.data_bits, self.beats_bits, self.max_burst
        )
        wiring.connect(m, wiring.flipped(self.requests), split.requests)
        burst = split.bursts.payload
        with m.If(split.malformed):
            m.d.sync += self.error[1].eq(1)

        # Bursts waiting for their response; the issue of the next address.
        waiting = Signal(range(self.outstanding + 1))
        answered = Signal()  # a response registered last cycle
        issue = Signal()
        m.d.comb += [
            split.bursts.ready.eq(
                (~axi.awvalid | axi.awready) & (waiting < self.outstanding) & bursts.w_rdy
            ),
            issue.eq(split.bursts.valid & split.bursts.ready),
        ]
        m.d.sync += waiting.eq(waiting + issue - answered)
        m.d.comb += [
            axi.awid.eq(0),
            axi.awsize.eq(size),
            axi.awburst.eq(1),  # INCR
            axi.bready.eq(1),
            axi.wstrb.eq((1 << beat_bytes) - 1),
            bursts.w_data.eq(burst.length),
            bursts.w_en.eq(issue),
        ]
        with m.If(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        with m.If(issue):
            m.d.sync += [
                axi.awvalid.eq(1),
                axi.awaddr.eq(burst.addr),
                axi.awlen.eq(burst.length - 1),
            ]

        # W: the queue's output register, for bursts whose address is out.
        active = Signal()  # a burst's beats are going out
        w_left = Signal(range(self.max_burst + 1))  # its beats still to go
        sent = Signal()
        m.d.comb += [
            axi.wvalid.eq(active & beats.r_rdy),
            axi.wdata.eq(beats.r_data),
            axi.wlast.eq(w_left == 1),
            sent.eq(axi.wvalid & axi.wready),
            beats.r_en.eq(sent),
        ]
        next_burst = (~active | (sent & (w_left == 1))) & bursts.r_rdy
        m.d.comb += bursts.r_en.eq(next_burst)
        with m.If(sent):
            m.d.sync += w_left.eq(w_left - 1)
            with m.If(w_left == 1):
                m.d.sync += active.eq(0)
        with m.If(next_burst):
            m.d.sync += [w_left.eq(bursts.r_data), active.eq(1)]

        # B, registered on the way in.
        b_err = Signal()
        m.d.sync += [answered.eq(axi.bvalid), b_err.eq(axi.bresp[1])]
        with m.If(answered & b_err):
            m.d.sync += self.error[0].eq(1)
        with m.If(self.clear):
            m.d.sync += self.error.eq(0)

        m.d.sync += self.idle.eq(
            split.idle & ~axi.awvalid & (waiting == 0) & ~active
            & ~bursts.r_rdy & ~beats.r_rdy & ~answered
        )  # fmt: skip
        return m
