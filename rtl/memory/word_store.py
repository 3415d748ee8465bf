"""Word store: records that arrive a word at a time, packed into bus beats as they come and
written to memory at the slot their tag names (the fused layer's outputs: a query's
``d_model`` words; no record is ever held whole).

Contract:

* Memory layout: the record of ``tag`` lives at ``base + tag * slot_bytes``: word k of its
  ``slot_words`` words (``word_bits`` each) at bits ``k * word_bits`` (little-endian bytes),
  zero-padded to ``slot_beats`` beats of ``beat_bits``. ``word_bits`` divides ``beat_bits``.
* ``words``: each record's ``slot_words`` words in order, the record's ``tag`` on its first
  word (read there only). A record whose tag is not below ``tags`` is taken and not written,
  and ``bad_tag`` pulses. ``taken`` pulses as a record's last word is taken.
* ``base`` (a multiple of the beat's bytes: the caller checks) and ``tags``: hold them steady
  while records flow.
* ``error``: the writer's (``AxiWriter``: bit 0 a burst answered SLVERR/DECERR; bit 1 a
  malformed request), sticky until ``clear``; ``idle``: every record taken is written and
  answered.

Timing: ``words.ready`` is a function of registers only (for a word that closes a beat, the
beat register free; on a record's first word, the address steps free and the request
queue's room). The slot's
address takes three registered steps (the tag, the byte offset ``tag * slot_bytes``, the sum
with ``base``) into a queue of requests the writer takes; each word is written into its lane
of the beat being gathered (a fixed wire per lane, an enable per lane), and a full beat (or
the record's last, its unused lanes zero) moves to a register the writer's data queue takes.
Throughput: a word per cycle while a beat holds two words or more (the writer keeping up);
otherwise a word every other cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In

from rtl.memory.slot_store import slot_writer, store_ports

__all__ = ["WordStore", "word_record_layout"]


def word_record_layout(tag_bits: int, word_bits: int) -> data.StructLayout:
    """One word on ``words``: its record's tag (read on the record's first word) and its bits."""
    return data.StructLayout({"tag": unsigned(tag_bits), "data": unsigned(word_bits)})


class WordStore(wiring.Component):
    def __init__(
        self,
        *,
        addr_bits: int,
        beat_bits: int,
        word_bits: int,
        slot_words: int,
        tag_bits: int,
        max_burst: int = 16,
    ):
        if beat_bits % word_bits:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                f"word_bits={word_bits} must divide the beat's {beat_bits} bits (a word never "
                "straddles two beats)"
            )
        if slot_words < 1:
            self._MustUse__silence = True
            raise ValueError(f"slot_words={slot_words} is out of range: allowed >= 1")
        self.addr_bits, self.beat_bits, self.word_bits = addr_bits, beat_bits, word_bits
        self.slot_words, self.tag_bits, self.max_burst = slot_words, tag_bits, max_burst
        self.per_beat = beat_bits // word_bits
        self.slot_beats = -(-slot_words // self.per_beat)
        self.slot_bytes = self.slot_beats * beat_bits // 8
        super().__init__(
            {
                "words": In(stream.Signature(word_record_layout(tag_bits, word_bits))),
                **store_ports(addr_bits, beat_bits, tag_bits),
            }
        )

    def elaborate(self, platform):
        m = Module()
        beats, per_beat, width = self.slot_beats, self.per_beat, self.word_bits
        tag_valid, offset_valid = Signal(), Signal()
        offset = Signal(self.addr_bits + 1, name="slot_offset")
        writer, requests, settled = slot_writer(
            m, self, beats=beats, queue_depth=4, offset=offset, offset_valid=offset_valid
        )

        # -- where the word goes: its index in the record and its lane in the beat ----------
        index = Signal(range(max(2, self.slot_words)), name="index")
        lane = Signal(range(max(2, per_beat)), name="lane")
        first = index == 0
        last = index == self.slot_words - 1
        writing = Signal(name="writing")  # this record's tag is valid (set on its first word)
        out_valid = Signal(name="out_valid")  # a beat waits for the writer's queue
        full = (lane == per_beat - 1) | last  # this word closes a beat
        m.d.comb += self.words.ready.eq(
            ~(out_valid & full) & (~first | (~tag_valid & ~offset_valid & requests.w_rdy))
        )
        take = Signal(name="take")
        m.d.comb += take.eq(self.words.valid & self.words.ready)
        word = self.words.payload
        good = Signal(name="good")  # the word belongs to a record that is written
        m.d.comb += good.eq(Mux(first, word.tag < self.tags, writing))
        with m.If(take):
            m.d.sync += index.eq(Mux(last, 0, index + 1))
            m.d.sync += lane.eq(Mux(last | (lane == per_beat - 1), 0, lane + 1))
            with m.If(first):
                m.d.sync += writing.eq(good)
        m.d.sync += [
            self.taken.eq(take & last),
            self.bad_tag.eq(take & first & ~good),
        ]

        # -- the slot's address: the tag, the byte offset, the sum -----------------------------
        tag = Signal(self.tag_bits, name="slot_tag")
        m.d.sync += [tag_valid.eq(take & first & good), offset_valid.eq(tag_valid)]
        with m.If(take & first):
            m.d.sync += tag.eq(word.tag)
        m.d.sync += offset.eq(tag * self.slot_bytes)

        # -- the beats: each word into its lane; a full beat (or the record's last) moves on ---
        gather = Signal(self.beat_bits, name="gather")
        out = Signal(self.beat_bits, name="out")
        closing = Signal(self.beat_bits, name="closing")  # the gathered lanes with this word
        lanes_in = [gather[j * width : (j + 1) * width] for j in range(per_beat)]
        pieces = []
        for j in range(per_beat):
            pieces.append(Mux(lane == j, word.data, lanes_in[j]))
        m.d.comb += closing.eq(Cat(*pieces))
        for j in range(per_beat):
            with m.If(take & (lane == j)):
                m.d.sync += lanes_in[j].eq(word.data)
        # the record's last beat keeps only the lanes its words filled
        tail = self.slot_words - (beats - 1) * per_beat
        keep = Const((1 << (tail * width)) - 1, self.beat_bits)
        m.d.comb += [writer.data.valid.eq(out_valid), writer.data.payload.eq(out)]
        with m.If(writer.data.valid & writer.data.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(take & full & good):
            m.d.sync += [out.eq(Mux(last, closing & keep, closing)), out_valid.eq(1)]

        m.d.sync += self.idle.eq(~take & first & ~out_valid & ~tag_valid & ~offset_valid & settled)
        return m
