"""The output projector: the fused layer's output projection of the core's results, a query's
heads gathered into one row (nothing leaves the chip before the projection).

Contract:

* ``core_out``: the core's outputs (``output_layout``), each query's heads in head order, one
  query after another (the order the query projector sends the jobs; the core keeps it).
* ``out``: per query, its ``d_model`` output words (``layer_out_bits``, channel order) with
  the query's ``tag``, ``last`` on its final word.
* A query's row (``heads * head_dim`` core words) is gathered in registers, then handed to
  the projection unit (``rtl/layer/projection.py``, its rows ``ceil(d_model / proj_lanes)``
  beats of ``proj_lanes`` words, the last padded with 0) while its tag waits in a queue for
  the words. Throughput: the unit's, ``d_model * ceil(d_model / proj_lanes)`` cycles per
  query; the gathering waits for the previous row to be handed over.
* Constants load through ``w_*``/``c_*`` (``ProjectionUnit``) while ``idle``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import output_layout
from rtl.layer.projection import ProjectionUnit, constant_ports, drive_constants

__all__ = ["OutputProjector", "layer_out_layout"]

#: rows whose tags wait for their words: two row buffers, the row in the pipeline, one more
TAGS = 4


def layer_out_layout(cfg: DefaConfig, tag_bits: int) -> data.StructLayout:
    """One word of a query's layer output."""
    return data.StructLayout(
        {"tag": unsigned(tag_bits), "data": signed(cfg.layer_out_bits), "last": unsigned(1)}
    )


class OutputProjector(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        self._cfg, self._tag_bits = cfg, tag_bits
        self.projection = unit = ProjectionUnit.of(cfg, "output")
        super().__init__(
            {
                "core_out": In(stream.Signature(output_layout(cfg, tag_bits))),
                "out": Out(stream.Signature(layer_out_layout(cfg, tag_bits))),
                **constant_ports(unit),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.projection = unit = self.projection
        drive_constants(m, unit, self)
        m.submodules.tags = tags = fifo.SyncFIFOBuffered(width=self._tag_bits, depth=TAGS)

        # -- gather a query's heads ------------------------------------------------------------
        dh, heads, lanes, chunks = cfg.head_dim, cfg.heads, unit.lanes, unit.chunks
        word = signed(cfg.out_bits)
        row = Signal(data.ArrayLayout(word, chunks * lanes), name="row")  # padded with 0
        head = Signal(range(max(2, heads)), name="head")
        full = Signal(name="full")  # the row waits to be handed over
        tag = Signal(self._tag_bits, name="tag")
        m.d.comb += self.core_out.ready.eq(~full)
        with m.If(self.core_out.valid & ~full):
            with m.Switch(head):
                for h in range(heads):
                    with m.Case(h):
                        for d in range(dh):
                            m.d.sync += row[h * dh + d].eq(self.core_out.payload.values[d])
            m.d.sync += [head.eq(head + 1), tag.eq(self.core_out.payload.tag)]
            with m.If(head == heads - 1):
                m.d.sync += [head.eq(0), full.eq(1)]

        # -- hand it over, chunk by chunk, its tag into the queue with the first ----------------
        chunk = Signal(range(max(2, chunks)), name="chunk")
        first = chunk == 0
        beat = Signal(unit.rows.payload.shape(), name="beat")
        with m.Switch(chunk):
            for k in range(chunks):
                with m.Case(k):
                    m.d.comb += [beat[i].eq(row[k * lanes + i]) for i in range(lanes)]
        m.d.comb += [
            unit.rows.payload.eq(beat),
            unit.rows.valid.eq(full & (~first | tags.w_rdy)),
            tags.w_data.eq(tag),
            tags.w_en.eq(unit.rows.valid & unit.rows.ready & first),
        ]
        with m.If(unit.rows.valid & unit.rows.ready):
            m.d.sync += chunk.eq(0 if chunks == 1 else chunk + 1)
            with m.If(chunk == chunks - 1):
                m.d.sync += [chunk.eq(0), full.eq(0)]

        # -- the words, each with its query's tag ----------------------------------------------
        m.d.comb += [
            self.out.valid.eq(unit.out.valid & tags.r_rdy),
            self.out.payload.tag.eq(tags.r_data),
            self.out.payload.data.eq(unit.out.payload.data),
            self.out.payload.last.eq(unit.out.payload.last),
            unit.out.ready.eq(self.out.ready & tags.r_rdy),
            tags.r_en.eq(self.out.valid & self.out.ready & unit.out.payload.last),
        ]
        m.d.comb += self.idle.eq(unit.idle & ~full & (head == 0) & ~tags.r_rdy)
        return m
