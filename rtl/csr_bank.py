"""Control and status registers of the accelerator, on a minimal 32-bit register bus.

Bus (``csr_signature``), one access per cycle: a write stores ``w_data`` into register
``addr`` (a word address) in the cycle ``w_stb`` is high; a read returns register ``addr`` on
``r_data`` the cycle after ``r_stb`` (0 for an unmapped address; writes to read-only or
unmapped addresses are ignored). The register map is ``csr_map(cfg)``: the generator writes
it into the manifest, the C header and the Python module, and the host driver uses it.

Registers: ``ID`` (``0x44454641``, "DEFA"), ``CONFIG_HASH`` (first 32 bits of the SHA-256 of
the config JSON: the driver checks it talks to the build it expects), ``CONTROL`` (bit 0:
write 1 to clear the counters), ``SHAPE<l>`` (``height << 16 | width`` of level l), ``TAU_P``,
``TAU_F``, and the core's counters (read only, wrapping 32-bit).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig

__all__ = ["CSR_ID", "Csr", "CsrBank", "config_hash", "csr_map", "csr_signature"]

CSR_ID = 0x44454641  # "DEFA"
COUNTERS = (
    ("CYCLES", "cycles", "clock cycles since the last clear"),
    ("JOBS_IN", "jobs_in", "jobs accepted"),
    ("JOBS_OUT", "jobs_out", "outputs delivered"),
    ("POINTS_KEPT", "points_kept", "points kept by PAP"),
    ("POINTS_PRUNED", "points_pruned", "points pruned by PAP"),
    ("OFF_MAP", "off_map", "kept points with no corner on the map"),
    ("PIXELS_MASKED", "pixels_masked", "pixels masked by FWP DERIVE"),
    ("LOADS_MASKED", "loads_masked", "value words not stored (masked pixel)"),
)


@dataclass(frozen=True)
class Csr:
    name: str
    addr: int  # word address
    access: str  # "ro" or "rw"
    width: int
    doc: str


def config_hash(cfg: DefaConfig) -> int:
    return int.from_bytes(hashlib.sha256(cfg.to_json().encode()).digest()[:4], "big")


def csr_map(cfg: DefaConfig) -> list[Csr]:
    """Every register, in address order."""
    regs = [
        Csr("ID", 0, "ro", 32, 'identifies a defa core: 0x44454641 ("DEFA")'),
        Csr("CONFIG_HASH", 1, "ro", 32, "first 32 bits of SHA-256 of the config JSON"),
        Csr("CONTROL", 2, "rw", 1, "bit 0: write 1 to clear every counter (reads 0)"),
        Csr("TAU_P", 3, "rw", cfg.prob_bits + 1, "PAP threshold, 2**-prob_bits units"),
        Csr("TAU_F", 4, "rw", cfg.tau_f_bits, "FWP threshold, 2**-tau_f_bits units"),
    ]
    addr = 8
    for level in range(cfg.levels):
        regs.append(Csr(f"SHAPE{level}", addr, "rw", 32, f"level {level}: height << 16 | width"))
        addr += 1
    addr = 16
    for name, _, doc in COUNTERS:
        regs.append(Csr(name, addr, "ro", 32, doc))
        addr += 1
    for level in range(cfg.levels):
        regs.append(Csr(f"BUSY{level}", addr, "ro", 32, f"cycles level unit {level} sampled"))
        regs.append(Csr(f"STALL{level}", addr + 1, "ro", 32, f"cycles level unit {level} was held"))
        addr += 2
    return regs


def csr_addr_bits(cfg: DefaConfig) -> int:
    return max(r.addr for r in csr_map(cfg)).bit_length()


def csr_signature(addr_bits: int) -> wiring.Signature:
    """The register bus, from the host's side."""
    return wiring.Signature(
        {
            "addr": Out(unsigned(addr_bits)),
            "w_stb": Out(1),
            "w_data": Out(32),
            "r_stb": Out(1),
            "r_data": In(32),
        }
    )


class CsrBank(wiring.Component):
    """The registers of ``csr_map`` between the bus and the core's CSR ports (``widths``,
    ``heights``, ``tau_p``, ``tau_f``, ``clear`` out; counters in). Reset: shapes at the
    buffers' full size, ``TAU_P`` and ``TAU_F`` at the config's thresholds."""

    def __init__(self, cfg: DefaConfig, counter_bits: int = 32):
        self._cfg = cfg
        lv = cfg.levels
        side = cfg.max_side.bit_length()
        counters = {field: In(counter_bits) for _, field, _ in COUNTERS}
        super().__init__(
            {
                "bus": In(csr_signature(csr_addr_bits(cfg))),
                "widths": Out(unsigned(side)).array(lv),
                "heights": Out(unsigned(side)).array(lv),
                "tau_p": Out(unsigned(cfg.prob_bits + 1)),
                "tau_f": Out(unsigned(cfg.tau_f_bits)),
                "clear": Out(1),
                **counters,
                "busy": In(counter_bits).array(lv),
                "stall": In(counter_bits).array(lv),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        bus = self.bus
        regs = {r.name: r for r in csr_map(cfg)}

        # Writable registers hold their value; reset to the config's values.
        side = self.widths[0].shape()
        widths = [Signal(side, init=w, name=f"width{i}") for i, (_, w) in enumerate(cfg.max_shapes)]
        heights = [
            Signal(side, init=h, name=f"height{i}") for i, (h, _) in enumerate(cfg.max_shapes)
        ]
        tau_p = Signal(self.tau_p.shape(), init=cfg.tau_p_q)
        tau_f = Signal(self.tau_f.shape(), init=cfg.tau_f_q)
        clear = Signal()
        m.d.comb += [self.tau_p.eq(tau_p), self.tau_f.eq(tau_f), self.clear.eq(clear)]
        for level in range(cfg.levels):
            m.d.comb += [
                self.widths[level].eq(widths[level]),
                self.heights[level].eq(heights[level]),
            ]
        m.d.sync += clear.eq(0)
        with m.If(bus.w_stb):
            with m.Switch(bus.addr):
                with m.Case(regs["CONTROL"].addr):
                    m.d.sync += clear.eq(bus.w_data[0])
                with m.Case(regs["TAU_P"].addr):
                    m.d.sync += tau_p.eq(bus.w_data)
                with m.Case(regs["TAU_F"].addr):
                    m.d.sync += tau_f.eq(bus.w_data)
                for level in range(cfg.levels):
                    with m.Case(regs[f"SHAPE{level}"].addr):
                        m.d.sync += [
                            widths[level].eq(bus.w_data[:16]),
                            heights[level].eq(bus.w_data[16:]),
                        ]

        readable = {
            "ID": CSR_ID,
            "CONFIG_HASH": config_hash(cfg),
            "CONTROL": 0,
            "TAU_P": tau_p,
            "TAU_F": tau_f,
            **{name: getattr(self, field) for name, field, _ in COUNTERS},
        }
        for level in range(cfg.levels):
            readable[f"SHAPE{level}"] = (heights[level] << 16) | widths[level]
            readable[f"BUSY{level}"] = self.busy[level]
            readable[f"STALL{level}"] = self.stall[level]
        r_data = Signal(32)
        m.d.comb += bus.r_data.eq(r_data)
        with m.If(bus.r_stb):
            m.d.sync += r_data.eq(0)
            with m.Switch(bus.addr):
                for name, value in readable.items():
                    with m.Case(regs[name].addr):
                        m.d.sync += r_data.eq(value)
        return m
