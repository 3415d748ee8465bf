"""Level unit: everything one scale needs, working in parallel with the other levels.

Entry inbox -> point selector -> point inbox -> sampler (with its banked level buffer) ->
accumulator; with ``cfg.window_rows`` the band window (``BandWindow``) sits between the point
inbox and the sampler, its requests and beats on ``requests``/``beats`` (the core's read
arbiter), ``base`` and ``new_map`` through registers, its events (``refill``, ``slow``,
``wait``) and ``memory_idle`` registered out. Takes
the entries the dispatcher sends this level (a registered crossing into an inbox of
``Dispatcher.entry_depth_of(cfg)``) and sends one exact level sum per job with a kept point
here to the aggregator (a registered crossing, see ``Accumulator``). Throughput: one kept
point per ``head_dim // lanes`` cycles; a job with no kept point at this level never comes.
The selector sends its points over a registered crossing with credits into an inbox of
``PointSelector.point_depth_of(cfg)`` at the sampler (a point issued in cycle t is readable
there at t + 3): the selector and the sampler's control sit at opposite ends of the level's
multipliers, and no decision of one waits on the other in the same cycle.

Everything that crosses the chip to or from the unit goes through a register here: the
shape and ``tau_f`` CSRs (local copies, a cycle late: hold them steady while jobs are in
flight), loads (a cycle later into the sampler), and the status pulses, one cycle after the
event: ``busy`` (a chunk entered the sampler), ``stall`` (a point waited at the sampler's
input), ``off_map`` (a kept point fell entirely off the map), ``masked`` and
``load_masked`` (FWP, the sampler's), and a probe's answer (``probed``, ``probed_keep``).
``fwp``/``fwp_result``: the sampler's (the core
registers commands per level).
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.accumulator import Accumulator
from rtl.core.dispatcher import Dispatcher
from rtl.core.layouts import (
    SUM_GROUP,
    entry_layout,
    fwp_command_layout,
    fwp_result_layout,
    level_sum_layout,
    load_layout,
    point_layout,
    side_bits,
)
from rtl.core.point_selector import PointSelector
from rtl.core.sampler import Sampler
from rtl.lib.inbox import Inbox, crossing
from rtl.lib.stages import copy_register
from rtl.memory.band_window import BandWindow

__all__ = ["LevelUnit"]


class LevelUnit(wiring.Component):
    def __init__(self, cfg: DefaConfig, level: int):
        self._cfg = cfg
        self._level = level
        if cfg.streamed:
            memory = {
                "requests": Out(stream.Signature(BandWindow.request_layout_of(cfg, level))),
                "beats": In(stream.Signature(BandWindow.beat_layout_of(cfg))),
                "base": In(unsigned(cfg.addr_bits)),
                "new_map": In(1),
                "refill": Out(1),
                "slow": Out(1),
                "wait": Out(1),
                "memory_idle": Out(1, init=1),
            }
        else:
            memory = {
                "load": In(stream.Signature(load_layout(cfg, level))),
                "probed": Out(1),
                "probed_keep": Out(1),
            }
        super().__init__(
            {
                "entries": In(crossing(entry_layout(cfg))),
                "sums": Out(crossing(level_sum_layout(cfg), SUM_GROUP)),
                **memory,
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "busy": Out(1),
                "stall": Out(1),
                "off_map": Out(1),
                "fwp": In(stream.Signature(fwp_command_layout(cfg, level))),
                "fwp_result": Out(stream.Signature(fwp_result_layout(cfg))),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "masked": Out(range(5)),
                "load_masked": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        # the selector registers the head entry: the inbox needs no output register of its own
        m.submodules.inbox = inbox = Inbox(
            entry_layout(cfg),
            Dispatcher.entry_depth_of(cfg),
            registered_output=False,
            valid_copies=PointSelector.slices_of(cfg),
        )
        m.submodules.selector = selector = PointSelector(cfg)
        m.d.comb += [
            selector.entry_valid.eq(inbox.valid_copies),
            inbox.ready_copies.eq(selector.entry_ready),
        ]
        # the sampler registers the point it reads (its input register): no output register
        # here, whose load enable would reach every bit from the sampler's take
        m.submodules.point_inbox = point_inbox = Inbox(
            point_layout(cfg, tag_bits=1),
            PointSelector.point_depth_of(cfg),
            registered_output=False,
        )
        m.submodules.sampler = sampler = Sampler(cfg, self._level, tag_bits=1)
        m.submodules.accumulator = accumulator = Accumulator(cfg)
        wiring.connect(m, wiring.flipped(self.entries), inbox.link)
        wiring.connect(m, inbox.out, selector.entries)
        wiring.connect(m, selector.points, point_inbox.link)
        if cfg.streamed:
            m.submodules.window = window = BandWindow(cfg, self._level, tag_bits=1)
            wiring.connect(m, point_inbox.out, window.points)
            wiring.connect(m, window.issued, sampler.points)
            wiring.connect(m, window.fill, sampler.fill)
            m.d.comb += [
                sampler.probe_x.eq(window.probe_x),
                sampler.probe_y.eq(window.probe_y),
                window.probe_keep.eq(sampler.probe_keep),
                window.any_masked.eq(sampler.any_masked),
            ]
            wiring.connect(m, window.requests, wiring.flipped(self.requests))
            wiring.connect(m, wiring.flipped(self.beats), window.beats)
        else:
            wiring.connect(m, point_inbox.out, sampler.points)
        wiring.connect(m, sampler.partials, accumulator.partials)
        m.d.comb += sampler.partials_ready_slices.eq(accumulator.ready_slices)
        wiring.connect(m, accumulator.sums, wiring.flipped(self.sums))
        wiring.connect(m, wiring.flipped(self.fwp), sampler.fwp)
        wiring.connect(m, sampler.fwp_result, wiring.flipped(self.fwp_result))
        # The level's own registers of what every level receives alike (kept by synthesis,
        # which would otherwise merge the levels' copies into one register for the chip).
        local = {}
        for name in ("tau_f", "width", "height"):
            local[name] = copy_register(getattr(self, name).shape(), name=f"{name}_local")
            m.d.sync += local[name].eq(getattr(self, name))
            m.d.comb += getattr(sampler, name).eq(local[name])
        if cfg.streamed:
            base = copy_register(self.base.shape(), name="base_local")
            m.d.sync += [
                base.eq(self.base),
                window.reset_band.eq(self.new_map),
                self.refill.eq(window.refill),
                self.slow.eq(window.slow),
                self.wait.eq(window.wait),
                self.memory_idle.eq(window.idle),
            ]
            m.d.comb += [
                window.base.eq(base),
                window.width.eq(local["width"]),
                window.height.eq(local["height"]),
            ]
        else:
            load = copy_register(load_layout(cfg, self._level), name="load_local")
            m.d.comb += [sampler.load.payload.eq(load), self.load.ready.eq(1)]
            m.d.sync += [
                load.eq(self.load.payload),
                sampler.load.valid.eq(self.load.valid),
                self.probed.eq(sampler.probed),
                self.probed_keep.eq(sampler.probed_keep),
            ]
        m.d.sync += [
            self.masked.eq(sampler.masked),
            self.load_masked.eq(sampler.load_masked),
            self.busy.eq(sampler.busy),
            self.stall.eq(sampler.points.valid & ~sampler.busy),
            self.off_map.eq(accumulator.off_map),
        ]
        return m
