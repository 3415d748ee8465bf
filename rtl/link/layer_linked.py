"""The fused layer with its memory on chip, behind a host link: ``LayerTop`` whose AXI4 master
reaches an ``AxiRam`` of ``words`` bus words, the host reaching the registers, the memory and
the FWP commands through the byte protocol (``HostLink``). A board wraps this with a UART
(``fpga/ulx3s.py``); ``fpga/layer_host.py``'s ``LayerDevice`` drives it.

Link streams: in ``mem_write`` (a word address and the word), ``mem_read`` (a word address),
``fwp`` (the core's FWP commands); out ``mem_data`` (a read's word), ``fwp_result``.
``irq`` is the layer's (done).
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layer.layer_registers import layer_csr_addr_bits
from rtl.layer.layer_top import ERRORS, LayerTop
from rtl.link.host_link import HostLink
from rtl.memory.axi_ram import AxiRam

__all__ = ["DEFAULT_WORDS", "LayerLinked"]

#: the on-chip memory's default size in bus words (tiny: 128-bit words, 32 KB, 16 DP16KD)
DEFAULT_WORDS = 2048


class LayerLinked(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, words: int = DEFAULT_WORDS, tag_bits: int = 16):
        self.top = LayerTop(cfg, tag_bits=tag_bits)
        self.tag_bits = tag_bits
        try:
            self.ram = AxiRam(addr_bits=cfg.addr_bits, data_bits=self.top.word_bits, words=words)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            self.top._MustUse__silence = True
            raise
        ram, top = self.ram, self.top
        fwp = top.signature.members["fwp"].signature
        fwp_result = top.signature.members["fwp_result"].signature
        self.link = HostLink(
            {
                "mem_write": ram.write.payload.shape(),
                "mem_read": ram.read.payload.shape(),
                "fwp": fwp.members["payload"].shape,
            },
            {
                "mem_data": unsigned(self.top.word_bits),
                "fwp_result": fwp_result.members["payload"].shape,
            },
            layer_csr_addr_bits(cfg, ERRORS),
        )
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "errors": Out(16),
                "irq": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.top = top = self.top
        m.submodules.ram = ram = self.ram
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        wiring.connect(m, link.csr, top.csr)
        wiring.connect(m, top.mem, ram.bus)
        wiring.connect(m, link.mem_write, ram.write)
        wiring.connect(m, link.mem_read, ram.read)
        wiring.connect(m, ram.data, link.mem_data)
        wiring.connect(m, link.fwp, top.fwp)
        wiring.connect(m, top.fwp_result, link.fwp_result)
        m.d.comb += [self.errors.eq(link.errors), self.irq.eq(top.irq)]
        return m
