"""The output projector: the fused layer's output projection of the core's results, a query's
heads cut into the projection's row beats as they come (nothing leaves the chip before the
projection, and no whole row is held here: the projection unit holds its rows).

Contract:

* ``core_out``: the core's outputs (``output_layout``), each query's heads in head order, one
  query after another (the order the query projector sends the jobs; the core keeps it).
* ``out``: per query, its ``d_model`` output words (``layer_out_bits``, channel order) with
  the query's ``tag``, ``last`` on its final word.
* A query's row (``heads * head_dim`` core words, channel ``head * head_dim + d``) goes to
  the projection unit (``rtl/layer/projection.py``) as ``ceil(d_model / proj_lanes)`` beats
  of ``proj_lanes`` words, the last padded with 0, while its tag waits in a queue for the
  words. A head waits in a register while its words are copied into the beat being built,
  a run of words a cycle (the run's place is static: a step of a fixed schedule over the
  row). Throughput: the unit's, ``d_model * ceil(d_model / proj_lanes)`` cycles per query.
* Constants load through ``w_*``/``c_*`` (``ProjectionUnit``) while ``idle``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import output_layout
from rtl.layer.projection import ProjectionUnit, constant_ports, drive_constants

__all__ = ["OutputProjector", "layer_out_layout"]

#: rows whose tags wait for their words: the row being cut into beats, the unit's two row
#: buffers, the row in its pipeline and output queue, one more
TAGS = 6


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

        # -- the schedule: steps copying a run of the head register into the beat register ---
        dh, lanes, chunks = cfg.head_dim, unit.lanes, unit.chunks
        steps = []  # (offset: beat lane j takes head lane j + offset, first lane, words, ...)
        word = 0
        while word < cfg.d_model:
            at_head, at_beat = word % dh, word % lanes
            n = min(dh - at_head, lanes - at_beat, cfg.d_model - word)
            word += n
            steps.append(
                {
                    "offset": at_head - at_beat,
                    "lanes": range(at_beat, at_beat + n),
                    "head_done": (word % dh == 0) or word == cfg.d_model,
                    "beat_done": (word % lanes == 0) or word == cfg.d_model,
                    "row_done": word == cfg.d_model,
                }
            )
        step = Signal(range(max(2, len(steps))), name="step")
        flag = {
            key: Signal(name=key)
            for key in ("head_done", "beat_done", "row_done")  # the current step's
        }
        for key, sig in flag.items():
            m.d.comb += sig.eq(Cat(*(step == i for i, st in enumerate(steps) if st[key])).any())

        # -- the head register: a core output, taken when the last step of the one before
        # freed it; a row's first head queues the row's tag for its words
        held = Signal(data.ArrayLayout(signed(cfg.out_bits), dh), name="held")
        held_valid = Signal(name="held_valid")
        first_head = Signal(init=1, name="first_head")
        m.d.comb += [
            self.core_out.ready.eq(~held_valid & (~first_head | tags.w_rdy)),
            tags.w_data.eq(self.core_out.payload.tag),
            tags.w_en.eq(self.core_out.valid & self.core_out.ready & first_head),
        ]
        with m.If(self.core_out.valid & self.core_out.ready):
            m.d.sync += [held.eq(self.core_out.payload.values), held_valid.eq(1), first_head.eq(0)]

        # -- the beat register: a step a cycle while the head is held and the beat not full --
        beat = Signal(unit.rows.payload.shape(), name="beat")
        beat_valid = Signal(name="beat_valid")
        go = Signal(name="go")
        m.d.comb += go.eq(held_valid & ~beat_valid)
        for offset in sorted({st["offset"] for st in steps}):
            for j in range(lanes):
                using = [
                    i for i, st in enumerate(steps) if st["offset"] == offset and j in st["lanes"]
                ]
                if not using:
                    continue
                with m.If(go & Cat(*(step == i for i in using)).any()):
                    m.d.sync += beat[j].eq(held[j + offset])
        with m.If(go):
            m.d.sync += step.eq(step + 1)
            with m.If(flag["head_done"]):
                m.d.sync += held_valid.eq(0)
            with m.If(flag["beat_done"]):
                m.d.sync += beat_valid.eq(1)
            with m.If(flag["row_done"]):
                m.d.sync += [step.eq(0), first_head.eq(1)]
        # the row's last beat: its lanes past the row are 0 (the weights there are 0 too, but
        # stale words would still be multiplied)
        tail = cfg.d_model - (chunks - 1) * lanes
        last_beat = Signal(name="last_beat")  # the beat register holds the row's last beat
        with m.If(go & flag["row_done"]):
            m.d.sync += last_beat.eq(1)
        padded = Signal.like(beat, name="padded")
        for j in range(lanes):
            if j < tail:
                m.d.comb += padded[j].eq(beat[j])
            else:
                m.d.comb += padded[j].eq(Mux(last_beat, 0, beat[j]))
        m.d.comb += [
            unit.rows.payload.eq(padded),
            unit.rows.valid.eq(beat_valid),
        ]
        with m.If(unit.rows.valid & unit.rows.ready):
            m.d.sync += [beat_valid.eq(0), last_beat.eq(0)]

        # -- the words, each with its query's tag ----------------------------------------------
        m.d.comb += [
            self.out.valid.eq(unit.out.valid & tags.r_rdy),
            self.out.payload.tag.eq(tags.r_data),
            self.out.payload.data.eq(unit.out.payload.data),
            self.out.payload.last.eq(unit.out.payload.last),
            unit.out.ready.eq(self.out.ready & tags.r_rdy),
            tags.r_en.eq(self.out.valid & self.out.ready & unit.out.payload.last),
        ]
        m.d.comb += self.idle.eq(
            unit.idle & ~held_valid & ~beat_valid & (step == 0) & first_head & ~tags.r_rdy
        )
        return m
