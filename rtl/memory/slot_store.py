"""Slot store: records written to memory at the slot their tag names, whatever order they come
in (the outputs of a run: the core's per head, the fused layer's per query).

Contract:

* Memory layout: the record of ``tag``, part ``part`` (``per_tag`` parts per tag) lives at
  ``base + (tag * per_tag + part) * slot_bytes``: its ``slot_bits`` of ``data`` (bit 0 at bit 0
  of the first byte, little-endian bytes), zero-padded to ``slot_beats`` beats of
  ``word_bits``.
* ``slots`` in; a record whose ``tag`` is not below ``tags`` is not written and pulses
  ``bad_tag``. ``taken`` pulses for every record taken (written or not).
* ``base`` (a multiple of the beat's bytes: the caller checks) and ``tags``: hold them steady
  while records flow.
* ``error``: the writer's (``AxiWriter``: bit 0 a burst answered SLVERR/DECERR; bit 1 a
  malformed request), sticky until ``clear``; ``idle``: every record taken is written and
  answered.

Timing: the slot's address takes three registered steps (the index ``tag * per_tag + part``,
the byte offset, the sum with ``base``; each one multiply by a constant or one adder) into a
queue of requests; the beats leave a shift register. Throughput: a record every
``max(slot_beats, 2)`` cycles while the writer keeps up.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.memory.axi_writer import AxiWriter, axi_write_signature
from rtl.memory.burst_split import request_layout

__all__ = ["SlotStore", "slot_record_layout", "slot_writer", "store_ports"]


def store_ports(addr_bits: int, beat_bits: int, tag_bits: int) -> dict:
    """The members a store of slots has besides its input stream (see ``SlotStore``)."""
    return {
        "base": In(unsigned(addr_bits)),
        "tags": In(unsigned(tag_bits + 1)),
        "axi": Out(axi_write_signature(addr_bits, beat_bits)),
        "taken": Out(1),
        "bad_tag": Out(1),
        "error": Out(2),
        "clear": In(1),
        "idle": Out(1, init=1),
    }


def slot_writer(m: Module, store, *, beats: int, queue_depth: int, offset, offset_valid):
    """The writing half of a store of slots (``store``: its ``store_ports``): an ``AxiWriter``
    on ``store.axi`` (its ``error``, ``clear``) and a queue of 4 requests, ``store.base +
    offset`` for ``beats`` beats pushed where ``offset_valid``, handed to the writer. Returns
    (the writer, the request queue, ``settled``: no request waits in the queue or went to the
    writer last cycle, which its ``idle``, a register, does not show yet, and the writer is
    idle)."""
    addr_bits = len(store.base)
    layout = request_layout(addr_bits, beats.bit_length())
    m.submodules.writer = writer = AxiWriter(
        addr_bits=addr_bits,
        data_bits=len(store.axi.wdata),
        beats_bits=beats.bit_length(),
        max_burst=store.max_burst,
        queue_depth=queue_depth,
    )
    wiring.connect(m, writer.axi, wiring.flipped(store.axi))
    m.d.comb += [store.error.eq(writer.error), writer.clear.eq(store.clear)]
    m.submodules.requests = requests = fifo.SyncFIFOBuffered(width=layout.size, depth=4)
    request = Signal(layout)
    m.d.comb += [
        writer.requests.valid.eq(requests.r_rdy),
        writer.requests.payload.eq(requests.r_data),
        requests.r_en.eq(writer.requests.ready),
        request.addr.eq(store.base + offset),
        request.beats.eq(beats),
        requests.w_en.eq(offset_valid),
        requests.w_data.eq(request),
    ]
    handed = Signal()
    m.d.sync += handed.eq(requests.r_rdy & writer.requests.ready)
    return writer, requests, ~requests.r_rdy & ~handed & writer.idle


def slot_record_layout(tag_bits: int, per_tag: int, slot_bits: int) -> data.StructLayout:
    """One record on ``slots``: its tag, its part of the tag (``per_tag`` > 1) and its bits."""
    return data.StructLayout(
        {"tag": unsigned(tag_bits), "part": range(per_tag), "data": unsigned(slot_bits)}
    )


class SlotStore(wiring.Component):
    def __init__(
        self,
        *,
        addr_bits: int,
        word_bits: int,
        slot_bits: int,
        tag_bits: int,
        per_tag: int = 1,
        max_burst: int = 16,
    ):
        self.addr_bits, self.word_bits, self.tag_bits = addr_bits, word_bits, tag_bits
        self.per_tag = per_tag
        self.slot_beats = -(-slot_bits // word_bits)
        self.slot_bytes = self.slot_beats * word_bits // 8
        self.max_burst = max_burst
        super().__init__(
            {
                "slots": In(stream.Signature(slot_record_layout(tag_bits, per_tag, slot_bits))),
                **store_ports(addr_bits, word_bits, tag_bits),
            }
        )

    def elaborate(self, platform):
        word, beats = self.word_bits, self.slot_beats
        m = Module()
        index_valid, offset_valid = Signal(), Signal()
        offset = Signal(self.addr_bits + 1)
        writer, requests, settled = slot_writer(
            m,
            self,
            beats=beats,
            queue_depth=max(2, 2 * beats),
            offset=offset,
            offset_valid=offset_valid,
        )

        # Take a record when the shift register is empty, the address steps are free and the
        # request queue has room.
        record = self.slots.payload
        shifting = Signal()
        m.d.comb += self.slots.ready.eq(~shifting & ~index_valid & ~offset_valid & requests.w_rdy)
        take = Signal()
        m.d.comb += take.eq(self.slots.valid & self.slots.ready)
        valid_tag = Signal()
        m.d.comb += valid_tag.eq(record.tag < self.tags)
        m.d.sync += [
            self.taken.eq(take),
            self.bad_tag.eq(take & ~valid_tag),
            index_valid.eq(take & valid_tag),
            offset_valid.eq(index_valid),
        ]

        # The slot's address: index, byte offset, sum.
        index = Signal(self.tag_bits + (self.per_tag - 1).bit_length() + 1)
        with m.If(take):
            m.d.sync += index.eq(record.tag * self.per_tag + record.part)
        m.d.sync += offset.eq(index * self.slot_bytes)

        # The beats: the data, low bits first.
        shift = Signal(beats * word)
        left = Signal(range(beats + 1))
        m.d.comb += [
            writer.data.valid.eq(shifting),
            writer.data.payload.eq(shift[:word]),
        ]
        with m.If(take & valid_tag):
            m.d.sync += [shift.eq(record.data), left.eq(beats), shifting.eq(1)]
        with m.Elif(writer.data.valid & writer.data.ready):
            m.d.sync += [shift.eq(shift[word:]), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += shifting.eq(0)

        m.d.sync += self.idle.eq(~take & ~shifting & ~index_valid & ~offset_valid & settled)
        return m
