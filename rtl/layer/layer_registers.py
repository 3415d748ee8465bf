"""The fused layer top's registers on the 32-bit register bus (``csr_signature``: a write stores
``w_data`` into register ``addr`` the cycle ``w_stb`` is high; a read returns register ``addr``
on ``r_data`` the cycle after ``r_stb``, 0 for an unmapped address; writes to read-only or
unmapped addresses are ignored). The map is ``layer_csr_map(cfg)``; the generator writes it into
the manifest.

Registers: ``ID``, ``CONFIG_HASH`` (as the core top's), ``CONTROL`` (bit 0: clear the counters;
bit 1: start a run; each a pulse on writing 1, reads 0), ``STATUS`` (bit 0 busy, bit 1 done,
bit 2 error), ``ERROR`` (``rtl.layer.layer_top.ERRORS``), the run's registers (``TAU_P``,
``TAU_F``, ``SHAPE<l>`` = ``height << 16 | width``, ``CONST_BASE``, ``X_BASE``,
``QUERY_BASE``, ``OUT_BASE``, ``QUERIES``: a write while busy is ignored and pulses
``write_refused``) and the core's counters (read only).

Reset: shapes at ``max_shapes``, thresholds at the config's, bases and ``QUERIES`` at 0.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.link.csr_bank import COUNTERS, CSR_ID, Csr, config_hash, csr_signature

__all__ = ["LayerRegisters", "RUN_REGISTERS", "layer_csr_addr_bits", "layer_csr_map"]

#: the run's base and count registers (port name: lower case)
RUN_REGISTERS = ("CONST_BASE", "X_BASE", "QUERY_BASE", "OUT_BASE", "QUERIES")


def layer_csr_map(cfg: DefaConfig, errors: tuple[str, ...]) -> list[Csr]:
    """Every register of the layer top, in address order."""
    described = ", ".join(f"{i}: {name}" for i, name in enumerate(errors))
    regs = [
        Csr("ID", 0, "ro", 32, 'identifies a defa core: 0x44454641 ("DEFA")'),
        Csr("CONFIG_HASH", 1, "ro", 32, "first 32 bits of SHA-256 of the config JSON"),
        Csr("CONTROL", 2, "rw", 2, "bit 0: clear the counters; bit 1: start a run (pulses)"),
        Csr("STATUS", 3, "ro", 3, "bit 0: busy, bit 1: done, bit 2: error (ERROR != 0)"),
        Csr("ERROR", 4, "ro", len(errors), f"why the last run failed ({described})"),
        Csr("TAU_P", 5, "rw", cfg.prob_bits + 1, "PAP threshold, 2**-prob_bits units"),
        Csr("TAU_F", 6, "rw", cfg.tau_f_bits, "FWP threshold, 2**-tau_f_bits units"),
        Csr("CONST_BASE", 8, "rw", 32, "byte address of the projections' constants"),
        Csr("X_BASE", 9, "rw", 32, "byte address of the map x"),
        Csr("QUERY_BASE", 10, "rw", 32, "byte address of the queries"),
        Csr("OUT_BASE", 11, "rw", 32, "byte address of query 0's output"),
        Csr("QUERIES", 12, "rw", 32, "queries in the run"),
    ]
    for level in range(cfg.levels):
        regs.append(
            Csr(f"SHAPE{level}", 16 + level, "rw", 32, f"level {level}: height << 16 | width")
        )
    for i, (name, _, doc) in enumerate(COUNTERS):
        regs.append(Csr(name, 32 + i, "ro", 32, doc))
    return regs


def layer_csr_addr_bits(cfg: DefaConfig, errors: tuple[str, ...]) -> int:
    return max(r.addr for r in layer_csr_map(cfg, errors)).bit_length()


class LayerRegisters(wiring.Component):
    def __init__(self, cfg: DefaConfig, errors: tuple[str, ...], *, counter_bits: int = 32):
        self._cfg, self._errors = cfg, errors
        lv = cfg.levels
        side = 16  # as written: the run's check refuses sides past max_shapes
        super().__init__(
            {
                "bus": In(csr_signature(layer_csr_addr_bits(cfg, errors))),
                "widths": Out(unsigned(side)).array(lv),
                "heights": Out(unsigned(side)).array(lv),
                "tau_p": Out(unsigned(cfg.prob_bits + 1)),
                "tau_f": Out(unsigned(cfg.tau_f_bits)),
                **{name.lower(): Out(32) for name in RUN_REGISTERS},
                "start": Out(1),
                "clear": Out(1),
                "write_refused": Out(1),
                "busy": In(1),
                "done": In(1),
                "error": In(len(errors)),
                **{field: In(counter_bits) for _, field, _ in COUNTERS},
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        bus = self.bus
        regs = {r.name: r for r in layer_csr_map(cfg, self._errors)}
        side = self.widths[0].shape()
        widths = [Signal(side, init=w, name=f"width{i}") for i, (_, w) in enumerate(cfg.max_shapes)]
        heights = [
            Signal(side, init=h, name=f"height{i}") for i, (h, _) in enumerate(cfg.max_shapes)
        ]
        tau_p = Signal(self.tau_p.shape(), init=cfg.tau_p_q)
        tau_f = Signal(self.tau_f.shape(), init=cfg.tau_f_q)
        m.d.comb += [self.tau_p.eq(tau_p), self.tau_f.eq(tau_f)]
        for level in range(cfg.levels):
            m.d.comb += [
                self.widths[level].eq(widths[level]),
                self.heights[level].eq(heights[level]),
            ]
        held = {"TAU_P": tau_p, "TAU_F": tau_f}
        for name in RUN_REGISTERS:
            held[name] = getattr(self, name.lower())
        for level in range(cfg.levels):  # height << 16 | width (the bits between dropped)
            pad = [Signal(16 - len(widths[level]))] if len(widths[level]) < 16 else []
            held[f"SHAPE{level}"] = Cat(widths[level], *pad, heights[level])

        # writes: the run's registers only while no run is busy
        m.d.sync += [self.start.eq(0), self.clear.eq(0), self.write_refused.eq(0)]
        with m.If(bus.w_stb):
            with m.Switch(bus.addr):
                with m.Case(regs["CONTROL"].addr):
                    m.d.sync += [self.clear.eq(bus.w_data[0]), self.start.eq(bus.w_data[1])]
                for name, register in held.items():
                    with m.Case(regs[name].addr):
                        with m.If(self.busy):
                            m.d.sync += self.write_refused.eq(1)
                        with m.Else():
                            m.d.sync += register.eq(bus.w_data)

        # reads, a cycle after r_stb
        readable = {
            "ID": CSR_ID,
            "CONFIG_HASH": config_hash(cfg),
            "CONTROL": 0,
            "STATUS": Cat(self.busy, self.done, self.error.any()),
            "ERROR": self.error,
            **held,
            **{name: getattr(self, field) for name, field, _ in COUNTERS},
        }
        with m.If(bus.r_stb):
            m.d.sync += bus.r_data.eq(0)
            with m.Switch(bus.addr):
                for name, value in readable.items():
                    with m.Case(regs[name].addr):
                        m.d.sync += bus.r_data.eq(value)
        return m
