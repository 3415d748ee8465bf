"""On-chip memory behind an AXI4 slave port, with a word port for a host: the memory of the
fused layer's board build (``rtl/link/layer_linked.py``), which has no DRAM controller.

Contract:

* ``bus``: an AXI4 slave (``axi_signature``, flipped) for INCR bursts of whole words (the
  address's low ``log2(word bytes)`` bits are ignored, the size is taken to be the word's);
  one burst at a time in each direction, reads and writes independent. A read burst's beats
  come one a cycle from the second cycle after its AR (``rready`` low holds them); a write
  burst takes a beat a cycle once its AW is taken (``wstrb`` selects the bytes), then answers
  on B. A word at or past ``words`` answers DECERR: a read gives 0, a write is dropped.
* ``write``: a host's word write (``addr`` in [0, ``words``), ``data``), taken while no AXI
  write burst is under way or offered; ``read``: a host's word read (``addr``), taken while
  no AXI read burst is under way or offered, its word out on ``data`` in order. Both share
  the AXI ports' memory ports, so the host waits for the bus's bursts (and never the other
  way round).
* The memory starts at 0 (simulation and the FPGA's block RAMs alike).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.top import axi_signature

__all__ = ["AxiRam"]

OKAY, DECERR = 0b00, 0b11


class AxiRam(wiring.Component):
    def __init__(self, *, addr_bits: int, data_bits: int, words: int):
        if data_bits % 8 or data_bits < 8:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"data_bits={data_bits} must be a positive multiple of 8")
        shift = (data_bits // 8 - 1).bit_length()
        if data_bits // 8 != 1 << shift:
            self._MustUse__silence = True
            raise ValueError(f"data_bits={data_bits} must be 8 times a power of two")
        if not 1 <= words <= 1 << (addr_bits - shift):
            self._MustUse__silence = True
            raise ValueError(
                f"words={words} is out of range: allowed [1, {1 << (addr_bits - shift)}] "
                f"({addr_bits} address bits of {data_bits // 8}-byte words)"
            )
        self.addr_bits, self.data_bits, self.words, self.shift = addr_bits, data_bits, words, shift
        addr = unsigned(max(1, (words - 1).bit_length()))
        super().__init__(
            {
                "bus": In(axi_signature(addr_bits, data_bits)),
                "write": In(stream.Signature(data.StructLayout({"addr": addr, "data": data_bits}))),
                "read": In(stream.Signature(data.StructLayout({"addr": addr}))),
                "data": Out(stream.Signature(data_bits)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        bus, words, shift = self.bus, self.words, self.shift
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self.data_bits), depth=words, init=[])
        rd = mem.read_port(domain="sync")
        wr = mem.write_port(granularity=8)
        word_addr = unsigned(self.addr_bits - shift)

        # Reads: a burst's next word is read when the data register is free or being taken.
        r_addr = Signal(word_addr)
        r_left = Signal(range(257))
        r_id = Signal.like(bus.rid)
        out_valid, out_host, out_last, out_bad = Signal(), Signal(), Signal(), Signal()
        taken = out_valid & Mux(out_host, self.data.ready, bus.rready)
        free = ~out_valid | taken
        issue_bus = (r_left != 0) & free
        issue_host = (r_left == 0) & ~bus.arvalid & self.read.valid & free
        m.d.comb += [
            bus.arready.eq(r_left == 0),
            self.read.ready.eq(issue_host),
            rd.en.eq(issue_bus | issue_host),
            rd.addr.eq(Mux(issue_bus, r_addr, self.read.payload.addr)),
            bus.rvalid.eq(out_valid & ~out_host),
            bus.rdata.eq(Mux(out_bad, 0, rd.data)),
            bus.rresp.eq(Mux(out_bad, DECERR, OKAY)),
            bus.rlast.eq(out_last),
            bus.rid.eq(r_id),
            self.data.valid.eq(out_valid & out_host),
            self.data.payload.eq(rd.data),
        ]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [
                r_addr.eq(bus.araddr[shift:]),
                r_left.eq(bus.arlen + 1),
                r_id.eq(bus.arid),
            ]
        with m.If(issue_bus | issue_host):
            m.d.sync += [
                out_valid.eq(1),
                out_host.eq(issue_host),
                out_last.eq(issue_bus & (r_left == 1)),
                out_bad.eq(issue_bus & (r_addr >= words)),
            ]
        with m.Elif(taken):
            m.d.sync += out_valid.eq(0)
        with m.If(issue_bus):
            m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1)]

        # Writes: the burst's beats as they come, then its answer.
        w_addr = Signal(word_addr)
        w_left = Signal(range(257))
        w_id = Signal.like(bus.bid)
        w_bad = Signal()
        b_pending = Signal()
        beat = bus.wvalid & bus.wready
        host_write = (w_left == 0) & ~bus.awvalid & self.write.valid
        all_bytes = (1 << len(wr.en)) - 1
        m.d.comb += [
            bus.awready.eq((w_left == 0) & ~b_pending),
            bus.wready.eq(w_left != 0),
            self.write.ready.eq(host_write),
            wr.addr.eq(Mux(beat, w_addr, self.write.payload.addr)),
            wr.data.eq(Mux(beat, bus.wdata, self.write.payload.data)),
            bus.bvalid.eq(b_pending),
            bus.bresp.eq(Mux(w_bad, DECERR, OKAY)),
            bus.bid.eq(w_id),
            # (plain selects: a conditional comb block starts X in Icarus)
            wr.en.eq(Mux(beat, Mux(w_addr >= words, 0, bus.wstrb), Mux(host_write, all_bytes, 0))),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [
                w_addr.eq(bus.awaddr[shift:]),
                w_left.eq(bus.awlen + 1),
                w_id.eq(bus.awid),
                w_bad.eq(0),
            ]
        with m.If(beat):
            m.d.sync += [w_addr.eq(w_addr + 1), w_left.eq(w_left - 1)]
            with m.If(w_addr >= words):
                m.d.sync += w_bad.eq(1)
            with m.If(w_left == 1):
                m.d.sync += b_pending.eq(1)
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += b_pending.eq(0)
        return m
