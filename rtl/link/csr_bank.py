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

With the maps in memory (``cfg.streamed``) the bank adds the command interface (see
``RunControl``): ``CONTROL`` bit 1 starts a run, bit 2 acknowledges ``done``; ``STATUS``,
``ERROR``, ``IRQ_ENABLE``; the run's registers (``JOBS_BASE``, ``JOB_COUNT``, ``OUT_BASE``,
``QUERIES``, ``MAP_BASE<l>``; the shapes and thresholds count as the run's too): a write to
one of them while a run is busy is ignored and pulses ``write_refused``. ``SHAPE<l>`` keeps
the 16-bit height and width as written (the run's check refuses sizes beyond
``max_shapes``). The memory counters: ``BEATS_READ``, ``ROWS_FETCHED<l>``,
``SLOW_POINTS<l>``, ``MEMORY_WAIT<l>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.memory.run_control import ERRORS

__all__ = [
    "CSR_ID",
    "MEMORY_COUNTERS",
    "RUN_REGISTERS",
    "Csr",
    "CsrBank",
    "config_hash",
    "csr_map",
    "csr_signature",
]

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
    if cfg.streamed:
        regs[2] = Csr(
            "CONTROL",
            2,
            "rw",
            3,
            "bit 0: clear every counter; bit 1: start a run; bit 2: acknowledge done (each a "
            "pulse on writing 1; reads 0)",
        )
        regs = sorted(regs + _run_registers(cfg), key=lambda r: r.addr)
    return regs


#: the run's registers (maps, jobs and outputs in memory), written only while no run is busy
RUN_REGISTERS = ("JOBS_BASE", "JOB_COUNT", "OUT_BASE", "QUERIES")
#: counters of the memory side, per level (name, core field, meaning)
MEMORY_COUNTERS = (
    ("ROWS_FETCHED", "rows_fetched", "band rows read from memory"),
    ("SLOW_POINTS", "slow_points", "points sampled through the slow path"),
    ("MEMORY_WAIT", "memory_wait", "cycles a point waited for memory"),
)


def _run_registers(cfg: DefaConfig) -> list[Csr]:
    """The command interface of a core with its maps in memory (``RunControl``)."""
    errors = ", ".join(f"{i}: {name}" for i, (name, _) in enumerate(ERRORS))
    regs = [
        Csr("STATUS", 5, "ro", 3, "bit 0: busy, bit 1: done, bit 2: error (ERROR != 0)"),
        Csr("ERROR", 6, "ro", len(ERRORS), f"why the last run failed or stopped short ({errors})"),
        Csr("IRQ_ENABLE", 7, "rw", 1, "bit 0: irq follows STATUS.done"),
        Csr("JOBS_BASE", 64, "rw", 32, "byte address of job 0"),
        Csr("JOB_COUNT", 65, "rw", 32, "jobs in the run"),
        Csr("OUT_BASE", 66, "rw", 32, "byte address of query 0's output slots"),
        Csr("QUERIES", 67, "rw", 32, "output slots (queries) at OUT_BASE; a tag must be below"),
    ]
    for level in range(cfg.levels):
        regs.append(Csr(f"MAP_BASE{level}", 72 + level, "rw", 32, f"byte address of map {level}"))
    regs.append(Csr("BEATS_READ", 80, "ro", 32, "bus beats of the maps read"))
    for group, (name, _, doc) in enumerate(MEMORY_COUNTERS):
        for level in range(cfg.levels):
            regs.append(
                Csr(f"{name}{level}", 88 + 8 * group + level, "ro", 32, f"level {level}: {doc}")
            )
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
    buffers' full size, ``TAU_P`` and ``TAU_F`` at the config's thresholds, the run's
    registers at 0. With the maps in memory, also the command interface's ports (``start``,
    ``ack``, ``irq_enable``, ``write_refused`` and the run's registers out; ``run_busy``,
    ``done``, ``error`` and the memory counters in)."""

    def __init__(self, cfg: DefaConfig, counter_bits: int = 32):
        self._cfg = cfg
        lv = cfg.levels
        side = 16 if cfg.streamed else cfg.max_side.bit_length()
        counters = {field: In(counter_bits) for _, field, _ in COUNTERS}
        run = {}
        if cfg.streamed:
            run = {
                "start": Out(1),
                "ack": Out(1),
                "irq_enable": Out(1),
                "write_refused": Out(1),
                **{name.lower(): Out(32) for name in RUN_REGISTERS},
                "map_bases": Out(32).array(lv),
                "run_busy": In(1),
                "done": In(1),
                "error": In(len(ERRORS)),
                "beats_read": In(counter_bits),
                **{field: In(counter_bits).array(lv) for _, field, _ in MEMORY_COUNTERS},
            }
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
                **run,
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
        # the run's registers: the shapes, thresholds and (maps in memory) bases and counts
        held = {"TAU_P": tau_p, "TAU_F": tau_f}
        for level in range(cfg.levels):  # height << 16 | width (the bits between dropped)
            pad = [Signal(16 - len(widths[level]))] if len(widths[level]) < 16 else []
            held[f"SHAPE{level}"] = Cat(widths[level], *pad, heights[level])
        if cfg.streamed:
            irq_enable = Signal()
            m.d.comb += self.irq_enable.eq(irq_enable)
            for name in RUN_REGISTERS:
                held[name] = getattr(self, name.lower())
            for level in range(cfg.levels):
                held[f"MAP_BASE{level}"] = self.map_bases[level]
            m.d.sync += [self.start.eq(0), self.ack.eq(0), self.write_refused.eq(0)]
        with m.If(bus.w_stb):
            with m.Switch(bus.addr):
                with m.Case(regs["CONTROL"].addr):
                    m.d.sync += clear.eq(bus.w_data[0])
                    if cfg.streamed:
                        m.d.sync += [self.start.eq(bus.w_data[1]), self.ack.eq(bus.w_data[2])]
                if cfg.streamed:
                    with m.Case(regs["IRQ_ENABLE"].addr):
                        m.d.sync += irq_enable.eq(bus.w_data[0])
                for name, register in held.items():
                    with m.Case(regs[name].addr):
                        if cfg.streamed:
                            with m.If(self.run_busy):
                                m.d.sync += self.write_refused.eq(1)
                            with m.Else():
                                m.d.sync += register.eq(bus.w_data)
                        else:
                            m.d.sync += register.eq(bus.w_data)

        readable = {
            "ID": CSR_ID,
            "CONFIG_HASH": config_hash(cfg),
            "CONTROL": 0,
            **held,
            **{name: getattr(self, field) for name, field, _ in COUNTERS},
        }
        for level in range(cfg.levels):
            readable[f"SHAPE{level}"] = (heights[level] << 16) | widths[level]
            readable[f"BUSY{level}"] = self.busy[level]
            readable[f"STALL{level}"] = self.stall[level]
        if cfg.streamed:
            readable["STATUS"] = Cat(self.run_busy, self.done, self.error.any())
            readable["ERROR"] = self.error
            readable["IRQ_ENABLE"] = irq_enable
            readable["BEATS_READ"] = self.beats_read
            for name, field, _ in MEMORY_COUNTERS:
                for level in range(cfg.levels):
                    readable[f"{name}{level}"] = getattr(self, field)[level]
        r_data = Signal(32)
        m.d.comb += bus.r_data.eq(r_data)
        with m.If(bus.r_stb):
            m.d.sync += r_data.eq(0)
            with m.Switch(bus.addr):
                for name, value in readable.items():
                    with m.Case(regs[name].addr):
                        m.d.sync += r_data.eq(value)
        return m
