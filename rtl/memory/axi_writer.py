"""AXI4 burst writer: write requests (byte address, beats) and a stream of data beats in, INCR
bursts out on an AXI4 write port (AW, W, B).

Contract:

* ``requests``: ``addr`` in bytes and ``beats`` (of ``data_bits`` each); ``data`` supplies
  the beats, in request order, exactly ``beats`` per request (a request takes the next
  ``beats`` beats whenever they come). A request is split like ``AxiReader``'s: INCR bursts
  of at most ``max_burst`` beats inside one 4 KB page, full width, every byte strobed, id 0.
* W beats go out only for bursts whose address was issued, ``wlast`` on each burst's last.
* ``error`` (sticky until ``clear``): bit 0, a burst was answered with BRESP SLVERR or DECERR;
  bit 1, a request was malformed: 0 beats (taken, nothing written) or an address that is not
  a multiple of the beat's bytes (written from the beat that holds it).
* Flow control: at most ``outstanding`` bursts wait for their response; ``bready`` is always
  high. ``data`` goes through a queue of ``queue_depth`` beats (its ``ready`` is the queue's
  room, a register).
* ``idle``: no request taken and unfinished, every beat written and every burst answered.

Timing: AW outputs are registers, ``wdata``/``wlast`` come from registers and ``wvalid`` is
the AND of two registers; B is registered on the way in; the split takes the reader's
registered steps. Throughput: one beat per cycle (a new burst's beats follow the previous
burst's last without a gap when its address is out).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.memory.axi_reader import BOUNDARY, read_request_layout

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
        if queue_depth < 2:
            problems.append(f"queue_depth={queue_depth} is out of range: allowed >= 2")
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

        # The split, as in AxiReader: address and beats left, then the next burst's length
        # in two registered steps.
        addr = Signal(self.addr_bits)
        left = Signal(self.beats_bits)
        busy = Signal()
        step = Signal()
        planned = Signal()
        capped = Signal(range(self.max_burst + 1))
        to_boundary = Signal(range(BOUNDARY // beat_bytes + 1))
        length = Signal(range(self.max_burst + 1))
        final = Signal()
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

        # Bursts waiting for their response; the issue of the next address.
        waiting = Signal(range(self.outstanding + 1))
        answered = Signal()  # a response registered last cycle
        issue = Signal()
        m.d.comb += issue.eq(
            planned & (~axi.awvalid | axi.awready) & (waiting < self.outstanding) & bursts.w_rdy
        )
        m.d.sync += waiting.eq(waiting + issue - answered)
        m.d.comb += [
            axi.awid.eq(0),
            axi.awsize.eq(size),
            axi.awburst.eq(1),  # INCR
            axi.bready.eq(1),
            axi.wstrb.eq((1 << beat_bytes) - 1),
            bursts.w_data.eq(length),
            bursts.w_en.eq(issue),
        ]
        with m.If(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        with m.If(issue):
            m.d.sync += [
                axi.awvalid.eq(1),
                axi.awaddr.eq(addr),
                axi.awlen.eq(length - 1),
                addr.eq(addr + length * beat_bytes),
                left.eq(left - length),
                busy.eq(~final),
                planned.eq(0),
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
            ~busy & ~planned & ~step & ~axi.awvalid & (waiting == 0) & ~active
            & ~bursts.r_rdy & ~beats.r_rdy & ~answered
        )  # fmt: skip
        return m
