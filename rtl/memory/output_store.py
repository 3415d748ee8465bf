"""Output store: the core's outputs written to memory where they belong, whatever the order the
jobs ran in.

Contract:

* Memory layout (``out_beats``, ``out_bytes``): the output of query ``tag``, head ``head``
  lives at ``base + (tag * heads + head) * out_bytes``: its ``head_dim`` values of
  ``out_bits`` (signed, channel 0 at bit 0, little-endian bytes), zero-padded to
  ``out_beats`` beats of ``word_bits``.
* ``outputs`` in; an output whose ``tag`` is not below ``queries`` is not written and pulses
  ``bad_tag``. ``taken`` pulses for every output taken (written or not).
* ``base`` (a multiple of the beat's bytes: the caller checks) and ``queries``: hold them
  steady while outputs flow.
* ``error``: the writer's (``AxiWriter``: bit 0 a burst answered SLVERR/DECERR; bit 1 a
  malformed request), sticky until ``clear``; ``idle``: every output taken is written and
  answered.

Timing: the slot's address takes three registered steps (the index ``tag * heads + head``, the
byte offset, the sum with ``base``; each one multiply by a constant or one adder) into a
queue of requests; the beats leave a shift register. Throughput: an output every
``max(out_beats, 2)`` cycles while the writer keeps up.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import output_layout
from rtl.memory.axi_writer import AxiWriter, axi_write_signature
from rtl.memory.burst_split import request_layout

__all__ = ["OutputStore", "out_beats", "slot_layout"]


def slot_layout(cfg: DefaConfig) -> data.StructLayout:
    """One output slot in memory (before its padding to ``out_beats`` beats)."""
    return data.StructLayout({"values": data.ArrayLayout(signed(cfg.out_bits), cfg.head_dim)})


def out_beats(cfg: DefaConfig) -> int:
    """Beats of ``lanes * value_bits`` bits one output (a head's values) takes in memory."""
    word = cfg.lanes * cfg.value_bits
    return -(-cfg.head_dim * cfg.out_bits // word)


class OutputStore(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        self.tag_bits = tag_bits
        self.word_bits = cfg.lanes * cfg.value_bits
        self.out_beats = out_beats(cfg)
        self.out_bytes = self.out_beats * self.word_bits // 8
        super().__init__(
            {
                "outputs": In(stream.Signature(output_layout(cfg, tag_bits))),
                "base": In(unsigned(cfg.addr_bits)),
                "queries": In(unsigned(tag_bits + 1)),
                "axi": Out(axi_write_signature(cfg.addr_bits, self.word_bits)),
                "taken": Out(1),
                "bad_tag": Out(1),
                "error": Out(2),
                "clear": In(1),
                "idle": Out(1, init=1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        word, beats = self.word_bits, self.out_beats
        m = Module()
        layout = request_layout(cfg.addr_bits, beats.bit_length())
        m.submodules.writer = writer = AxiWriter(
            addr_bits=cfg.addr_bits,
            data_bits=word,
            beats_bits=beats.bit_length(),
            max_burst=cfg.max_burst,
            queue_depth=max(2, 2 * beats),
        )
        wiring.connect(m, writer.axi, wiring.flipped(self.axi))
        m.d.comb += [self.error.eq(writer.error), writer.clear.eq(self.clear)]
        m.submodules.slots = slots = fifo.SyncFIFOBuffered(width=layout.size, depth=4)
        m.d.comb += [
            writer.requests.valid.eq(slots.r_rdy),
            writer.requests.payload.eq(slots.r_data),
            slots.r_en.eq(writer.requests.ready),
        ]

        # Take an output when the shift register is empty, the address steps are free and the
        # slot queue has room.
        out = self.outputs.payload
        shifting = Signal()
        index_valid, offset_valid = Signal(), Signal()
        m.d.comb += self.outputs.ready.eq(~shifting & ~index_valid & ~offset_valid & slots.w_rdy)
        take = Signal()
        m.d.comb += take.eq(self.outputs.valid & self.outputs.ready)
        valid_tag = Signal()
        m.d.comb += valid_tag.eq(out.tag < self.queries)
        m.d.sync += [
            self.taken.eq(take),
            self.bad_tag.eq(take & ~valid_tag),
            index_valid.eq(take & valid_tag),
            offset_valid.eq(index_valid),
        ]

        # The slot's address: index, byte offset, sum.
        index = Signal(self.tag_bits + (cfg.heads - 1).bit_length() + 1)
        offset = Signal(cfg.addr_bits + 1)
        with m.If(take):
            m.d.sync += index.eq(out.tag * cfg.heads + out.head)
        m.d.sync += offset.eq(index * self.out_bytes)
        slot = Signal(layout)
        m.d.comb += [
            slot.addr.eq(self.base + offset),
            slot.beats.eq(beats),
            slots.w_en.eq(offset_valid),
            slots.w_data.eq(slot),
        ]

        # The beats: the values, low channel first.
        shift = Signal(beats * word)
        left = Signal(range(beats + 1))
        m.d.comb += [
            writer.data.valid.eq(shifting),
            writer.data.payload.eq(shift[:word]),
        ]
        with m.If(take & valid_tag):
            m.d.sync += [shift.eq(out.values.as_value()), left.eq(beats), shifting.eq(1)]
        with m.Elif(writer.data.valid & writer.data.ready):
            m.d.sync += [shift.eq(shift[word:]), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += shifting.eq(0)

        # The writer's ``idle`` is a register: a request it took last cycle is not in it yet.
        handed = Signal()
        m.d.sync += handed.eq(slots.r_rdy & writer.requests.ready)
        m.d.sync += self.idle.eq(
            ~take & ~shifting & ~index_valid & ~offset_valid & ~slots.r_rdy & ~handed & writer.idle
        )
        return m
