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

A ``SlotStore`` with ``heads`` parts per tag (its timing and throughput: an output every
``max(out_beats, 2)`` cycles while the writer keeps up).
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import output_layout
from rtl.memory.axi_writer import axi_write_signature
from rtl.memory.slot_store import SlotStore

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
        m = Module()
        m.submodules.slots = slots = SlotStore(
            addr_bits=cfg.addr_bits,
            word_bits=self.word_bits,
            slot_bits=slot_layout(cfg).size,
            tag_bits=self.tag_bits,
            per_tag=cfg.heads,
            max_burst=cfg.max_burst,
        )
        out = self.outputs.payload
        m.d.comb += [
            slots.slots.valid.eq(self.outputs.valid),
            slots.slots.payload.tag.eq(out.tag),
            slots.slots.payload.part.eq(out.head),
            slots.slots.payload.data.eq(out.values.as_value()),
            self.outputs.ready.eq(slots.slots.ready),
        ]
        wiring.connect(m, slots.axi, wiring.flipped(self.axi))
        m.d.comb += [
            slots.base.eq(self.base),
            slots.tags.eq(self.queries),
            slots.clear.eq(self.clear),
            self.taken.eq(slots.taken),
            self.bad_tag.eq(slots.bad_tag),
            self.error.eq(slots.error),
            self.idle.eq(slots.idle),
        ]
        return m
