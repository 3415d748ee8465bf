"""The value loader: the fused layer's value projection of the input map x, written into the
core's level buffers as it streams in (no value map in memory).

Contract:

* ``x``: the map's pixels in the core's order (levels in order, each in raster order over its
  current ``widths``/``heights``), each as ``ceil(d_model / proj_lanes)`` beats of
  ``proj_lanes`` activation codes (the projection unit's rows, ``rtl/layer/projection.py``).
* ``load``: the value codes of each pixel as the core's buffer writes, head by head and chunk
  by chunk (``lanes`` channels of one head per beat: channel ``head * head_dim + chunk * lanes
  + lane``), with the pixel's level and position. After the last pixel of the last level the
  position starts again at level 0 (the next map).
* The projection's constants load through ``w_*`` and ``c_*`` (see ``ProjectionUnit``), while
  ``idle``.
* Throughput: the projection's, one channel every ``ceil(d_model / proj_lanes)`` cycles; a
  ``load`` beat waits in a register until taken, and the projection pauses only while a
  second beat is gathered and the first not yet taken. ``load.ready`` reaches only enables
  of this block's registers (no ready leaves it combinationally).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.core import core_load_layout
from rtl.core.layouts import side_bits
from rtl.layer.projection import ProjectionUnit, constant_ports, drive_constants

__all__ = ["ValueLoader"]


class ValueLoader(wiring.Component):
    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        self.projection = ProjectionUnit.of(cfg, "value")
        unit, lv = self.projection, cfg.levels
        super().__init__(
            {
                "x": In(stream.Signature(data.ArrayLayout(signed(cfg.act_bits), cfg.proj_lanes))),
                "load": Out(stream.Signature(core_load_layout(cfg))),
                "widths": In(data.ArrayLayout(unsigned(side_bits(cfg)), lv)),
                "heights": In(data.ArrayLayout(unsigned(side_bits(cfg)), lv)),
                **constant_ports(unit),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.projection = unit = self.projection
        wiring.connect(m, wiring.flipped(self.x), unit.rows)
        drive_constants(m, unit, self)

        lanes = cfg.lanes
        words = unit.out
        # -- gather ``lanes`` words, then hand them to the beat register ---------------------
        gather = Signal(data.ArrayLayout(signed(cfg.value_bits), lanes), name="gather")
        lane = Signal(range(max(2, lanes)), name="lane")
        gathered = Signal(name="gathered")  # a full group waits for the beat register
        beat = Signal(self.load.payload.shape(), name="beat")
        beat_valid = Signal(name="beat_valid")
        free = Signal(name="free")
        m.d.comb += [
            words.ready.eq(~gathered),
            free.eq(~beat_valid | self.load.ready),
            self.load.valid.eq(beat_valid),
            self.load.payload.eq(beat),
        ]
        # where the group lands: the pixel and the channels
        level = Signal(range(max(2, cfg.levels)), name="level")
        x = Signal(beat.x.shape(), name="px")
        y = Signal(beat.y.shape(), name="py")
        head = Signal(beat.head.shape(), name="head")
        chunk = Signal(beat.chunk.shape(), name="chunk")

        take = Signal(name="take")
        m.d.comb += take.eq(words.valid & words.ready)
        complete = Signal(name="complete")  # this word closes a group
        m.d.comb += complete.eq(take & (lane == lanes - 1))
        with m.If(take):
            m.d.sync += gather[lane].eq(words.payload.data)
            m.d.sync += lane.eq(0 if lanes == 1 else (lane + 1) % lanes)
        with m.If(beat_valid & self.load.ready):
            m.d.sync += beat_valid.eq(0)

        move = Signal(name="move")  # a group into the beat register
        closing = Signal(data.ArrayLayout(signed(cfg.value_bits), lanes), name="closing")
        m.d.comb += closing.eq(gather)
        with m.If(complete):
            m.d.comb += closing[lane].eq(words.payload.data)
        with m.If((complete | gathered) & free):
            m.d.comb += move.eq(1)
            m.d.sync += [
                beat.data.eq(closing),
                beat.level.eq(level),
                beat.x.eq(x),
                beat.y.eq(y),
                beat.head.eq(head),
                beat.chunk.eq(chunk),
                beat_valid.eq(1),
                gathered.eq(0),
            ]
        with m.Elif(complete):
            m.d.sync += gathered.eq(1)
            m.d.sync += gather[lane].eq(words.payload.data)

        # -- the next group's place: chunk, head, then the pixel, row and level --------------
        last_chunk = chunk == cfg.cycles_per_point - 1
        last_head = head == cfg.heads - 1
        width = Signal(unsigned(side_bits(cfg)), name="width")  # the current level's shape
        height = Signal(unsigned(side_bits(cfg)), name="height")
        with m.Switch(level):
            for lv in range(cfg.levels):
                with m.Case(lv):
                    m.d.comb += [width.eq(self.widths[lv]), height.eq(self.heights[lv])]
        with m.If(move):
            m.d.sync += chunk.eq(0 if cfg.cycles_per_point == 1 else chunk + 1)
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), head.eq(head + 1)]
                with m.If(last_head):
                    m.d.sync += [head.eq(0), x.eq(x + 1)]
                    with m.If(x == width - 1):
                        m.d.sync += [x.eq(0), y.eq(y + 1)]
                        with m.If(y == height - 1):
                            m.d.sync += [y.eq(0), level.eq(level + 1)]
                            with m.If(level == cfg.levels - 1):
                                m.d.sync += level.eq(0)
        m.d.comb += self.idle.eq(unit.idle & ~beat_valid & ~gathered & (lane == 0))
        return m
