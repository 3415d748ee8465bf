"""Level unit: everything one scale needs, working in parallel with the other levels.

Point selector -> sampler (with its banked level buffer) -> accumulator. Takes the entries
and descriptors the dispatcher queued for this level and emits one exact level sum per job, in
job order (see ``Accumulator``). Throughput: one kept point per ``head_dim // lanes`` cycles;
a job with no kept point at this level costs no sampler cycle.

Status: ``busy`` (a chunk entered the sampler this cycle), ``stall`` (the sampler holds a
result the accumulator cannot take), ``off_map`` (a kept point fell entirely off the map).
FWP (``fwp``, ``fwp_result``, ``tau_f``, ``masked``, ``load_masked``): the sampler's.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.accumulator import Accumulator
from rtl.layouts import (
    descriptor_layout,
    entry_layout,
    fwp_command_layout,
    fwp_result_layout,
    level_sum_layout,
    load_layout,
    side_bits,
)
from rtl.point_selector import PointSelector
from rtl.sampler import Sampler

__all__ = ["LevelUnit"]


class LevelUnit(wiring.Component):
    def __init__(self, cfg: DefaConfig, level: int, tag_bits: int):
        self._cfg = cfg
        self._level = level
        self._tag_bits = tag_bits
        super().__init__(
            {
                "entries": In(stream.Signature(entry_layout(cfg))),
                "descriptors": In(stream.Signature(descriptor_layout(cfg, tag_bits))),
                "sums": Out(stream.Signature(level_sum_layout(cfg, tag_bits))),
                "load": In(stream.Signature(load_layout(cfg, level))),
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
        m.submodules.selector = selector = PointSelector(cfg)
        m.submodules.sampler = sampler = Sampler(cfg, self._level, tag_bits=1)
        m.submodules.accumulator = accumulator = Accumulator(cfg, self._tag_bits)
        wiring.connect(m, wiring.flipped(self.entries), selector.entries)
        wiring.connect(m, selector.points, sampler.points)
        wiring.connect(m, sampler.partials, accumulator.partials)
        wiring.connect(m, wiring.flipped(self.descriptors), accumulator.descriptors)
        wiring.connect(m, accumulator.sums, wiring.flipped(self.sums))
        wiring.connect(m, wiring.flipped(self.load), sampler.load)
        wiring.connect(m, wiring.flipped(self.fwp), sampler.fwp)
        wiring.connect(m, sampler.fwp_result, wiring.flipped(self.fwp_result))
        m.d.comb += [
            sampler.tau_f.eq(self.tau_f),
            self.masked.eq(sampler.masked),
            self.load_masked.eq(sampler.load_masked),
            sampler.width.eq(self.width),
            sampler.height.eq(self.height),
            self.busy.eq(sampler.busy),
            self.stall.eq(sampler.partials.valid & ~sampler.partials.ready),
            self.off_map.eq(accumulator.off_map),
        ]
        return m
