"""The fused MSDA layer with whole maps on chip: the value projection into the core's level
buffers, the query projections into its jobs, its results through the output projection
(DEFA's fused attention PEs: no intermediate leaves the chip).

Contract (``sim.layer.layer`` is the bit-true model):

* First the map: ``x`` streams every pixel's activation codes (``ValueLoader``: levels in
  order, raster order over ``widths``/``heights``); the values land in the level buffers.
* Then the queries: ``queries`` (their activation codes) and ``refs`` (tag and reference
  point per level, one per query) become one job per head (``QueryProjector``); the core
  samples (PAP with ``tau_p``) and each query's heads go through the output projection:
  ``out`` carries its ``d_model`` words with its tag (``OutputProjector``).
* Start the queries once the map's last load has been taken (``loading`` low): a job may
  sample any pixel. The projections' constants load through ``value_*``, ``offsets_*``,
  ``logits_*`` and ``output_*`` (each ``ProjectionUnit``'s ``w_*``/``c_*``) while ``idle``.
* FWP: ``fwp``/``fwp_result``/``tau_f`` as the core's; a pixel masked when its rows arrive
  skips the value projection (the loader probes the core's mask ahead of the rows; the
  core's ``loads_masked`` counts it) and reads 0. The counters are the core's.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from gen.config import DefaConfig
from rtl.core.core import Core
from rtl.layer.output_projector import OutputProjector
from rtl.layer.projection import constant_ports, drive_constants
from rtl.layer.query_projector import QueryProjector
from rtl.layer.value_loader import ValueLoader

__all__ = ["FusedLayer"]

#: the core's ports the layer passes through as they are
_CORE_PORTS = (
    "widths",
    "heights",
    "tau_p",
    "clear",
    "fwp",
    "fwp_result",
    "tau_f",
    "cycles",
    "jobs_in",
    "jobs_out",
    "points_kept",
    "points_pruned",
    "off_map",
    "pixels_masked",
    "loads_masked",
    "busy",
    "stall",
)


class FusedLayer(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        if cfg.streamed:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                "the fused layer keeps whole maps on chip: window_rows must be empty (the "
                "band design's fused layer is not built yet)"
            )
        self._cfg = cfg
        self.core = Core(cfg, tag_bits=tag_bits, probes=True)
        self.loader = ValueLoader(cfg)
        self.queries_ = QueryProjector(cfg, tag_bits=tag_bits)
        self.output = OutputProjector(cfg, tag_bits=tag_bits)
        members = dict(self.core.signature.members)
        ports = {name: members[name] for name in _CORE_PORTS}
        ports["x"] = self.loader.signature.members["x"]
        ports["queries"] = self.queries_.signature.members["queries"]
        ports["refs"] = self.queries_.signature.members["refs"]
        ports["out"] = self.output.signature.members["out"]
        ports["loading"] = Out(1)
        ports["idle"] = Out(1)
        for prefix, unit, _, _ in self._units():
            ports |= constant_ports(unit, f"{prefix}_")
        super().__init__(ports)

    def _units(self):
        """Per projection: the prefix of the layer's ports that load it, the unit, the block
        that holds it and the prefix of that block's ports."""
        return (
            ("value", self.loader.projection, self.loader, ""),
            ("offsets", self.queries_.offsets, self.queries_, "offsets_"),
            ("logits", self.queries_.logits, self.queries_, "logits_"),
            ("output", self.output.projection, self.output, ""),
        )

    def elaborate(self, platform):
        m = Module()
        core, loader, queries, output = self.core, self.loader, self.queries_, self.output
        m.submodules.core = core
        m.submodules.value = loader
        m.submodules.queries = queries
        m.submodules.output = output
        for name in _CORE_PORTS:
            port, inner = getattr(self, name), getattr(core, name)
            if name in ("fwp",):
                wiring.connect(m, wiring.flipped(port), inner)
            elif name == "fwp_result":
                wiring.connect(m, inner, wiring.flipped(port))
            elif name in ("widths", "heights", "tau_p", "clear", "tau_f"):
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)
        m.d.comb += [loader.widths.eq(self.widths), loader.heights.eq(self.heights)]
        wiring.connect(m, wiring.flipped(self.x), loader.x)
        wiring.connect(m, loader.load, core.load)
        wiring.connect(m, loader.probe, core.probe)
        wiring.connect(m, core.probe_keep, loader.probe_keep)
        wiring.connect(m, wiring.flipped(self.queries), queries.queries)
        wiring.connect(m, wiring.flipped(self.refs), queries.refs)
        wiring.connect(m, queries.jobs, core.jobs)
        wiring.connect(m, core.outputs, output.core_out)
        wiring.connect(m, output.out, wiring.flipped(self.out))
        for prefix, _, block, into in self._units():
            drive_constants(m, block, self, into=into, prefix=f"{prefix}_")
        m.d.comb += [
            self.loading.eq(~loader.idle),
            self.idle.eq(loader.idle & queries.idle & output.idle),
        ]
        return m
