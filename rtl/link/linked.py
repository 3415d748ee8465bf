"""The accelerator behind its host link: byte streams in and out (``rx``, ``tx``), everything
else reached through the link protocol (``HostLink``). A board wraps this with a UART."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.link.host_link import core_link
from rtl.top import Top

__all__ = ["Linked"]


class Linked(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        self._cfg = cfg
        self.tag_bits = tag_bits
        self.link = core_link(cfg, tag_bits=tag_bits)
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "errors": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.top = top = Top(self._cfg, tag_bits=self.tag_bits)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        wiring.connect(m, link.csr, top.csr)
        for name in ("jobs", "load", "fwp"):
            wiring.connect(m, getattr(link, name), getattr(top, name))
        for name in ("outputs", "fwp_result"):
            wiring.connect(m, getattr(top, name), getattr(link, name))
        m.d.comb += self.errors.eq(link.errors)
        return m
