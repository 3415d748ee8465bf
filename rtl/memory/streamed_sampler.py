"""Streamed sampler: one level's sampler whose map lives in external memory: the band window
in front of the sampler, its refills read by an AXI4 burst reader (``cfg.window_rows``).

Contract: the sampler's (``Sampler``) for ``points`` and ``partials``, with the map read from
``base`` (``BandWindow``'s layout) instead of loaded; a point that needs rows not on chip
waits for them (``BandWindow``). ``axi``: the reader's AR and R channels; ``error``: its
sticky status (``AxiReader``), ``clear`` clears it. ``refill``, ``slow``, ``wait``: the band's
counter events; ``new_map``: forget the band (pulse it when the map in memory, its shape,
``base`` or the FWP mask changed: a band holds only the pixels the mask kept when it was
fetched). ``fwp``: the sampler's FWP commands (CLEAR, DERIVE, READ, MASK); the band window
reads the mask through the FWP state's second read port (``probe``) and fetches no masked
pixel.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import (
    TAG_BITS,
    fwp_command_layout,
    fwp_result_layout,
    partial_layout,
    point_layout,
    side_bits,
)
from rtl.core.sampler import Sampler
from rtl.memory.axi_reader import AxiReader, axi_read_signature
from rtl.memory.band_window import BandWindow

__all__ = ["StreamedSampler"]


class StreamedSampler(wiring.Component):
    #: bursts the reader keeps in flight
    OUTSTANDING = 4

    def __init__(self, cfg: DefaConfig, level: int = 0, *, tag_bits: int = TAG_BITS):
        if not cfg.streamed:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                "the streamed sampler needs window_rows (one band height per level, a power "
                "of two >= 2): this config keeps whole maps on chip"
            )
        self._cfg, self._level, self._tag_bits = cfg, level, tag_bits
        self.latency = Sampler.latency_of(cfg)
        self.word_bits = cfg.lanes * cfg.value_bits
        super().__init__(
            {
                "points": In(stream.Signature(point_layout(cfg, tag_bits))),
                "partials": Out(stream.Signature(partial_layout(cfg, tag_bits))),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "base": In(unsigned(cfg.addr_bits)),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "fwp": In(stream.Signature(fwp_command_layout(cfg, level))),
                "fwp_result": Out(stream.Signature(fwp_result_layout(cfg))),
                "axi": Out(axi_read_signature(cfg.addr_bits, self.word_bits)),
                "error": Out(2),
                "clear": In(1),
                "new_map": In(1),
                "refill": Out(1),
                "slow": Out(1),
                "wait": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.window = window = BandWindow(cfg, self._level, tag_bits=self._tag_bits)
        m.submodules.sampler = sampler = Sampler(cfg, self._level, tag_bits=self._tag_bits)
        m.submodules.reader = reader = AxiReader(
            addr_bits=cfg.addr_bits,
            data_bits=self.word_bits,
            beats_bits=window.beats_bits,
            max_burst=cfg.max_burst,
            queue_depth=2 * cfg.max_burst,
            outstanding=self.OUTSTANDING,
        )
        wiring.connect(m, wiring.flipped(self.points), window.points)
        wiring.connect(m, window.issued, sampler.points)
        wiring.connect(m, window.requests, reader.requests)
        wiring.connect(m, reader.data, window.beats)
        wiring.connect(m, window.fill, sampler.fill)
        m.d.comb += [
            sampler.probe_x.eq(window.probe_x),
            sampler.probe_y.eq(window.probe_y),
            window.probe_keep.eq(sampler.probe_keep),
            window.any_masked.eq(sampler.any_masked),
        ]
        wiring.connect(m, sampler.partials, wiring.flipped(self.partials))
        wiring.connect(m, wiring.flipped(self.axi), reader.axi)
        wiring.connect(m, wiring.flipped(self.fwp), sampler.fwp)
        wiring.connect(m, sampler.fwp_result, wiring.flipped(self.fwp_result))
        m.d.comb += [
            sampler.partials_ready_slices.eq(
                self.partials.ready.replicate(len(sampler.partials_ready_slices))
            ),
            sampler.width.eq(self.width),
            sampler.height.eq(self.height),
            sampler.tau_f.eq(self.tau_f),
            window.width.eq(self.width),
            window.height.eq(self.height),
            window.base.eq(self.base),
            window.reset_band.eq(self.new_map),
            self.error.eq(reader.error),
            reader.clear.eq(self.clear),
            self.refill.eq(window.refill),
            self.slow.eq(window.slow),
            self.wait.eq(window.wait),
        ]
        return m
