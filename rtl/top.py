"""The generated accelerator's top level: the MSDA core with its register bank.

Ports: the core's data streams (``jobs``, ``outputs``, ``load``, ``fwp``, ``fwp_result``; see
``Core``) and the register bus ``csr`` (see ``CsrBank``; the map is ``csr_map(cfg)``). The
core's CSR inputs (level shapes, tau_p, tau_f, counter clear) come from the registers, its
counters are readable there.

Maps in external memory (``cfg.window_rows``): the top runs whole layers from memory behind
its command interface (``RunControl``; registers in ``csr_map``). Two AXI4 masters: ``maps``
(read only: the level units' band fetches, layout ``[head][row][column][channel]`` from
``MAP_BASE<l>``) and ``io`` (reads the jobs from ``JOBS_BASE``, ``JobFetch``'s layout; writes
each output to its query's slot from ``OUT_BASE``, ``OutputStore``'s layout, whatever order the
jobs ran in). ``irq`` follows ``STATUS.done`` while ``IRQ_ENABLE``. FWP commands still come on
the ``fwp`` stream. The host driver (``fpga.host.memory_run``) lays jobs out in band order and
reads outputs back by query.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.core import COUNTER_BITS, Core, core_load_layout
from rtl.core.layouts import fwp_command_layout, fwp_result_layout, job_layout, output_layout
from rtl.link.csr_bank import COUNTERS, MEMORY_COUNTERS, CsrBank, csr_addr_bits, csr_signature
from rtl.memory.axi_reader import axi_read_signature
from rtl.memory.axi_writer import axi_write_signature
from rtl.memory.job_fetch import JobFetch
from rtl.memory.output_store import OutputStore
from rtl.memory.run_control import RunControl

__all__ = ["Top", "axi_signature", "join_axi"]


def axi_signature(addr_bits: int, data_bits: int) -> wiring.Signature:
    """A whole AXI4 master (AR, R, AW, W, B), as the master sees it (AXI names)."""
    read = axi_read_signature(addr_bits, data_bits).members
    write = axi_write_signature(addr_bits, data_bits).members
    return wiring.Signature({**dict(read.items()), **dict(write.items())})


def join_axi(m: Module, master, read_port, write_port) -> None:
    """Drive the whole AXI4 ``master`` (``axi_signature``) from a reader's AR/R port and a
    writer's AW/W/B port (the channels are independent: plain wires, both ways)."""
    for port in (read_port, write_port):
        for name, member in port.signature.members.items():
            ours, theirs = getattr(master, name), getattr(port, name)
            if member.flow == Out:
                m.d.comb += ours.eq(theirs)
            else:
                m.d.comb += theirs.eq(ours)


class Top(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        if cfg.streamed and cfg.addr_bits > 32:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                f"addr_bits={cfg.addr_bits} is out of range for the top: allowed [12, 32] (its "
                f"base registers are 32 bits; the core alone takes up to 64)"
            )
        self._cfg = cfg
        self.core = Core(cfg, tag_bits=tag_bits)
        if cfg.streamed:
            word = cfg.lanes * cfg.value_bits
            ports = {
                "maps": Out(axi_read_signature(cfg.addr_bits, word)),
                "io": Out(axi_signature(cfg.addr_bits, word)),
                "irq": Out(1),
            }
        else:
            ports = {
                "jobs": In(stream.Signature(job_layout(cfg, tag_bits))),
                "outputs": Out(stream.Signature(output_layout(cfg, tag_bits))),
                "load": In(stream.Signature(core_load_layout(cfg))),
            }
        super().__init__(
            {
                **ports,
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
        wiring.connect(m, wiring.flipped(self.fwp), core.fwp)
        wiring.connect(m, core.fwp_result, wiring.flipped(self.fwp_result))
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        m.d.comb += [
            core.tau_p.eq(bank.tau_p),
            core.tau_f.eq(bank.tau_f),
            core.clear.eq(bank.clear),
        ]
        for level in range(cfg.levels):
            m.d.comb += [
                bank.busy[level].eq(core.busy[level]),
                bank.stall[level].eq(core.stall[level]),
            ]
        for _, field, _ in COUNTERS:
            m.d.comb += getattr(bank, field).eq(getattr(core, field))
        if cfg.streamed:
            self._run(m, core, bank)
            return m
        for name in ("jobs", "load"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        wiring.connect(m, core.outputs, wiring.flipped(self.outputs))
        for level in range(cfg.levels):
            m.d.comb += [
                core.widths[level].eq(bank.widths[level]),
                core.heights[level].eq(bank.heights[level]),
            ]
        return m

    def _run(self, m, core, bank):
        """Maps, jobs and outputs in memory: the job fetch and the output store on ``io``,
        the core's band reads on ``maps``, ``RunControl`` between the registers and them."""
        cfg = self._cfg
        m.submodules.fetch = fetch = JobFetch(cfg, self.tag_bits)
        m.submodules.store = store = OutputStore(cfg, self.tag_bits)
        m.submodules.control = control = RunControl(
            cfg, tag_bits=self.tag_bits, job_bytes=fetch.job_bytes, out_bytes=store.out_bytes
        )
        wiring.connect(m, fetch.jobs, core.jobs)
        wiring.connect(m, core.outputs, store.outputs)
        wiring.connect(m, core.axi, wiring.flipped(self.maps))
        join_axi(m, self.io, fetch.axi, store.axi)
        m.d.comb += [
            core.bases.eq(control.run_bases),
            core.widths.eq(control.run_widths),
            core.heights.eq(control.run_heights),
            core.new_maps.eq(control.new_maps),
            fetch.start.eq(control.fetch_start),
            fetch.base.eq(bank.jobs_base),
            fetch.count.eq(bank.job_count),
            fetch.clear.eq(control.clear_errors),
            store.base.eq(bank.out_base),
            store.queries.eq(bank.queries),
            store.clear.eq(control.clear_errors),
            control.start.eq(bank.start),
            control.ack.eq(bank.ack),
            control.irq_enable.eq(bank.irq_enable),
            control.write_refused.eq(bank.write_refused),
            control.jobs_base.eq(bank.jobs_base),
            control.job_count.eq(bank.job_count),
            control.out_base.eq(bank.out_base),
            control.queries.eq(bank.queries),
            control.taken.eq(store.taken),
            control.bad_tag.eq(store.bad_tag),
            control.fetch_idle.eq(fetch.idle),
            control.store_idle.eq(store.idle),
            control.mem_idle.eq(core.mem_idle),
            control.read_error.eq(core.mem_error | fetch.error),
            control.write_error.eq(store.error),
            bank.run_busy.eq(control.busy),
            bank.done.eq(control.done),
            bank.error.eq(control.error),
            bank.beats_read.eq(core.beats_read),
            self.irq.eq(control.irq),
        ]
        for level in range(cfg.levels):
            m.d.comb += [
                control.widths[level].eq(bank.widths[level]),
                control.heights[level].eq(bank.heights[level]),
                control.map_bases[level].eq(bank.map_bases[level]),
            ]
            for _, field, _ in MEMORY_COUNTERS:
                m.d.comb += getattr(bank, field)[level].eq(getattr(core, field)[level])
