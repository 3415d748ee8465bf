"""The generated accelerator's top level: the MSDA core with its register bank.

Ports: the core's data streams (``jobs``, ``outputs``, ``load``, ``fwp``, ``fwp_result``; see
``Core``) and the register bus ``csr`` (see ``CsrBank``; the map is ``csr_map(cfg)``). The
core's CSR inputs (level shapes, tau_p, tau_f, counter clear) come from the registers, its
counters are readable there.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core import COUNTER_BITS, Core, core_load_layout
from rtl.csr_bank import COUNTERS, CsrBank, csr_addr_bits, csr_signature
from rtl.layouts import fwp_command_layout, fwp_result_layout, job_layout, output_layout

__all__ = ["Top"]


class Top(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        if cfg.streamed:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                "window_rows is set (maps in external memory): the top with its command "
                "interface is not built yet; generate the core (--block core) or set "
                "window_rows=[] for whole maps on chip"
            )
        self._cfg = cfg
        self.core = Core(cfg, tag_bits=tag_bits)
        super().__init__(
            {
                "jobs": In(stream.Signature(job_layout(cfg, tag_bits))),
                "outputs": Out(stream.Signature(output_layout(cfg, tag_bits))),
                "load": In(stream.Signature(core_load_layout(cfg))),
                "fwp": In(stream.Signature(fwp_command_layout(cfg))),
                "fwp_result": Out(stream.Signature(fwp_result_layout(cfg))),
                "csr": In(csr_signature(csr_addr_bits(cfg))),
            }
        )

    @property
    def tag_bits(self) -> int:
        return self.core.tag_bits

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.csr_bank = bank = CsrBank(cfg, COUNTER_BITS)
        for name in ("jobs", "load", "fwp"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        for name in ("outputs", "fwp_result"):
            wiring.connect(m, getattr(core, name), wiring.flipped(getattr(self, name)))
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        m.d.comb += [
            core.tau_p.eq(bank.tau_p),
            core.tau_f.eq(bank.tau_f),
            core.clear.eq(bank.clear),
        ]
        for level in range(cfg.levels):
            m.d.comb += [
                core.widths[level].eq(bank.widths[level]),
                core.heights[level].eq(bank.heights[level]),
                bank.busy[level].eq(core.busy[level]),
                bank.stall[level].eq(core.stall[level]),
            ]
        for _, field, _ in COUNTERS:
            m.d.comb += getattr(bank, field).eq(getattr(core, field))
        return m
