"""The value loader: the fused layer's value projection of the input map x, written into the
core's level buffers as it streams in (no value map in memory). FWP: a masked pixel skips the
projection (its rows are dropped as they arrive).

Contract:

* ``x``: the map's pixels in the core's order (levels in order, each in raster order over its
  current ``widths``/``heights``), each as ``ceil(d_model / proj_lanes)`` beats of
  ``proj_lanes`` activation codes (the projection unit's rows, ``rtl/layer/projection.py``).
  After the last pixel of the last level the position starts again at level 0 (the next map).
* Mask probes (``probe``, answered in order on ``probe_keep``: the core's, ``Core(probes=
  True)``): from the cycle a map's first row is offered, the loader asks for its pixels' mask
  bits ahead of the rows, up to ``VERDICTS`` pixels ahead and never past the map's last pixel;
  each pixel's rows wait for its answer. A kept pixel's rows go to the projection; a masked
  pixel's rows are taken and dropped, one a cycle.
* ``load``: the value codes of each kept pixel as the core's buffer writes, head by head and
  chunk by chunk (``lanes`` channels of one head per beat: channel ``head * head_dim + chunk *
  lanes + lane``), with the pixel's level and position (its probe's, carried in a queue of
  ``POSITIONS`` pixels between the rows and their words).
* The projection's constants load through ``w_*`` and ``c_*`` (see ``ProjectionUnit``), while
  ``idle``.
* Throughput: the projection's, one channel every ``ceil(d_model / proj_lanes)`` cycles per
  kept pixel; a ``load`` beat waits in a register until taken, and the projection pauses only
  while a second beat is gathered and the first not yet taken. ``load.ready`` reaches only
  enables of this block's registers (no ready leaves it combinationally); ``probe.ready``
  reaches the probe's counters.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.core import core_load_layout, probe_layout
from rtl.core.layouts import side_bits
from rtl.layer.projection import ProjectionUnit, constant_ports, drive_constants

__all__ = ["ValueLoader"]

#: pixels whose mask bits are asked ahead of their rows (the probe's round trip is
#: ``PROBE_LATENCY`` + 2 cycles: more than that keeps a masked pixel's rows from waiting)
VERDICTS = 8
#: kept pixels between their first row and their last word (two rows in the projection unit,
#: one in its pipeline and output queue, one being gathered)
POSITIONS = 4


class _Raster:
    """A pixel position walking the map: levels in order, each in raster order over its shape,
    back to level 0 after the last pixel of the last level."""

    def __init__(self, m: Module, cfg: DefaConfig, widths, heights, name: str):
        layout = probe_layout(cfg)
        self.level = Signal(layout["level"].shape, name=f"{name}_level")
        self.x = Signal(layout["x"].shape, name=f"{name}_x")
        self.y = Signal(layout["y"].shape, name=f"{name}_y")
        self.width = Signal(unsigned(side_bits(cfg)), name=f"{name}_width")
        self.height = Signal(unsigned(side_bits(cfg)), name=f"{name}_height")
        with m.Switch(self.level):
            for lv in range(cfg.levels):
                with m.Case(lv):
                    m.d.comb += [self.width.eq(widths[lv]), self.height.eq(heights[lv])]
        self.last_of_level = (self.x == self.width - 1) & (self.y == self.height - 1)
        #: the map's last pixel
        self.last = self.last_of_level & (self.level == cfg.levels - 1)
        self._m, self._levels = m, cfg.levels

    def advance(self):
        """To the next pixel (call under the condition that moves it)."""
        m = self._m
        m.d.sync += self.x.eq(self.x + 1)
        with m.If(self.x == self.width - 1):
            m.d.sync += [self.x.eq(0), self.y.eq(self.y + 1)]
            with m.If(self.y == self.height - 1):
                m.d.sync += [self.y.eq(0), self.level.eq(self.level + 1)]
                with m.If(self.level == self._levels - 1):
                    m.d.sync += self.level.eq(0)

    def at_start(self):
        return (self.level == 0) & (self.x == 0) & (self.y == 0)


class ValueLoader(wiring.Component):
    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        self.projection = ProjectionUnit.of(cfg, "value")
        unit, lv = self.projection, cfg.levels
        super().__init__(
            {
                "x": In(stream.Signature(data.ArrayLayout(signed(cfg.act_bits), cfg.proj_lanes))),
                "load": Out(stream.Signature(core_load_layout(cfg))),
                "probe": Out(stream.Signature(probe_layout(cfg))),
                "probe_keep": In(stream.Signature(1, always_ready=True)),
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
        drive_constants(m, unit, self)
        rows = unit.chunks  # beats of x per pixel

        # -- probes: the mask bits of the map's pixels, ahead of their rows ---------------------
        asked = _Raster(m, cfg, self.widths, self.heights, "asked")
        m.submodules.verdicts = verdicts = fifo.SyncFIFOBuffered(width=1, depth=VERDICTS)
        probing = Signal(name="probing")  # a map's probes are under way
        pending = Signal(range(VERDICTS + 1), name="pending")  # asked, verdict not yet used
        ask = Signal(name="ask")
        use = Signal(name="use")  # a pixel's last row taken: its verdict leaves the queue
        m.d.comb += [
            self.probe.valid.eq(probing & (pending != VERDICTS)),
            self.probe.payload.level.eq(asked.level),
            self.probe.payload.x.eq(asked.x),
            self.probe.payload.y.eq(asked.y),
            ask.eq(self.probe.valid & self.probe.ready),
            verdicts.w_en.eq(self.probe_keep.valid),
            verdicts.w_data.eq(self.probe_keep.payload),
        ]
        m.d.sync += pending.eq(pending + ask - use)
        with m.If(ask):
            asked.advance()
            with m.If(asked.last):
                m.d.sync += probing.eq(0)
        # a map starts with its first row offered while nothing of the last one is pending
        with m.If(~probing & self.x.valid & (pending == 0) & asked.at_start()):
            m.d.sync += probing.eq(1)

        # -- rows: a kept pixel's to the projection (its position queued), a masked one's dropped
        fed = _Raster(m, cfg, self.widths, self.heights, "fed")
        pos_layout = probe_layout(cfg)
        m.submodules.positions = positions = fifo.SyncFIFOBuffered(
            width=pos_layout.size, depth=POSITIONS
        )
        row = Signal(range(max(2, rows)), name="row")  # the pixel's row offered
        keep = verdicts.r_data
        first = row == 0
        room = ~first | positions.w_rdy  # a kept pixel's position has a place
        m.d.comb += [
            unit.rows.payload.eq(self.x.payload),
            unit.rows.valid.eq(self.x.valid & verdicts.r_rdy & keep & room),
            self.x.ready.eq(verdicts.r_rdy & Mux(keep, unit.rows.ready & room, 1)),
            positions.w_data.eq(Cat(fed.level, fed.x, fed.y)),
            positions.w_en.eq(unit.rows.valid & unit.rows.ready & first),
            use.eq(self.x.valid & self.x.ready & (row == rows - 1)),
            verdicts.r_en.eq(use),
        ]
        with m.If(self.x.valid & self.x.ready):
            m.d.sync += row.eq(0 if rows == 1 else row + 1)
            with m.If(row == rows - 1):
                m.d.sync += row.eq(0)
                fed.advance()

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
        # where the group lands: the kept pixel at the head of the queue, the channels
        place = data.View(pos_layout, positions.r_data)
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
                beat.level.eq(place.level),
                beat.x.eq(place.x),
                beat.y.eq(place.y),
                beat.head.eq(head),
                beat.chunk.eq(chunk),
                beat_valid.eq(1),
                gathered.eq(0),
            ]
        with m.Elif(complete):
            m.d.sync += gathered.eq(1)
            m.d.sync += gather[lane].eq(words.payload.data)

        # -- the next group's place: chunk, head, then the next kept pixel --------------------
        last_chunk = chunk == cfg.cycles_per_point - 1
        last_head = head == cfg.heads - 1
        m.d.comb += positions.r_en.eq(move & last_chunk & last_head)
        with m.If(move):
            m.d.sync += chunk.eq(0 if cfg.cycles_per_point == 1 else chunk + 1)
            with m.If(last_chunk):
                m.d.sync += [chunk.eq(0), head.eq(head + 1)]
                with m.If(last_head):
                    m.d.sync += head.eq(0)
        m.d.comb += self.idle.eq(
            unit.idle
            & ~beat_valid
            & ~gathered
            & (lane == 0)
            & ~probing
            & (pending == 0)
            & ~positions.r_rdy
        )
        return m
