"""Run control: the command interface's sequencer (start, checks, run, done, error, interrupt)
for a core whose maps, jobs and outputs live in memory.

Contract:

* ``start`` (a pulse, CSR ``CONTROL`` bit 1): while a run is under way it only sets
  ``START_BUSY`` (the run goes on). Otherwise it clears ``done`` and ``error``, then checks
  the run's registers (``CHECK``, a few hundred cycles): every level's shape in
  ``[1, max_shapes]``, ``queries`` at most ``2**tag_bits``, every base a multiple of the
  beat's bytes and every region (each level's map, the jobs, the output slots) inside
  ``2**addr_bits``. A failed check sets its bits and ``done`` without running anything.
  A run latches the shapes and map bases for the core (``run_widths``, ``run_heights``,
  ``run_bases``, with the ``new_maps`` pulse), starts the job fetch and ends (``done``) once
  ``job_count`` outputs were taken by the store, the store is idle and the maps' reads are
  over (``mem_idle``): then the core may take new maps at once.
* ``error`` (``ERRORS`` bits) is sticky until the next accepted ``start``; ``TAG``, ``READ``,
  ``WRITE``, ``MALFORMED`` come from the run (an output with a tag at or beyond ``queries``
  is dropped, not written). ``ack`` (``CONTROL`` bit 2) clears ``done``. ``irq`` is ``done``
  while ``irq_enable``, a register.
* ``busy``: from the accepted ``start`` until ``done``; the register bank refuses writes to
  the run's registers meanwhile (``write_refused`` sets ``WRITE_BUSY``).

Timing: every output is a register; each decision takes registers (the shape checks are
registered compares).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import side_bits
from rtl.memory.region_check import RegionCheck

__all__ = ["ERRORS", "RunControl"]

#: ERROR register bits: (name, meaning)
ERRORS = (
    ("START_BUSY", "START written while a run was under way (the run went on)"),
    ("WRITE_BUSY", "a run register written while a run was under way (write ignored)"),
    ("SHAPE", "a level's shape is 0 or beyond max_shapes (nothing ran)"),
    ("UNALIGNED", "a base is not a multiple of the bus beat's bytes (nothing ran)"),
    ("RANGE", "a region (map, jobs, outputs) ends past 2**addr_bits (nothing ran)"),
    ("QUERIES", "QUERIES is beyond 2**tag_bits (nothing ran)"),
    ("TAG", "an output's tag was at or beyond QUERIES (that output was not written)"),
    ("READ", "a read burst was answered SLVERR or DECERR"),
    ("WRITE", "a write burst was answered SLVERR or DECERR"),
    ("MALFORMED", "a burst request was malformed (internal: report it)"),
)
_BIT = {name: i for i, (name, _) in enumerate(ERRORS)}


class RunControl(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int, job_bytes: int, out_bytes: int):
        self._cfg = cfg
        self.tag_bits, self.job_bytes, self.out_bytes = tag_bits, job_bytes, out_bytes
        lv = cfg.levels
        addr = unsigned(cfg.addr_bits)
        side = unsigned(side_bits(cfg))
        super().__init__(
            {
                "start": In(1),
                "ack": In(1),
                "irq_enable": In(1),
                "write_refused": In(1),
                "widths": In(16).array(lv),
                "heights": In(16).array(lv),
                "map_bases": In(addr).array(lv),
                "jobs_base": In(addr),
                "job_count": In(32),
                "out_base": In(addr),
                "queries": In(32),
                "busy": Out(1),
                "done": Out(1),
                "error": Out(len(ERRORS)),
                "irq": Out(1),
                "run_widths": Out(data.ArrayLayout(side, lv)),
                "run_heights": Out(data.ArrayLayout(side, lv)),
                "run_bases": Out(data.ArrayLayout(addr, lv)),
                "new_maps": Out(1),
                "fetch_start": Out(1),
                "clear_errors": Out(1),
                "taken": In(1),
                "bad_tag": In(1),
                "fetch_idle": In(1),
                "store_idle": In(1),
                "mem_idle": In(1),
                "read_error": In(2),
                "write_error": In(2),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        lv = cfg.levels
        m = Module()
        word_bytes = cfg.lanes * cfg.value_bits // 8
        pixel_bytes = cfg.heads * cfg.head_dim * cfg.value_bits // 8
        m.submodules.regions = regions = RegionCheck(
            [pixel_bytes] * lv + [self.job_bytes, self.out_bytes * cfg.heads],
            addr_bits=cfg.addr_bits,
            align=word_bytes,
        )
        for level in range(lv):
            m.d.comb += [
                regions.bases[level].eq(self.map_bases[level]),
                regions.counts[level].eq(self.heights[level]),
                regions.sizes[level].eq(self.widths[level]),
            ]
        m.d.comb += [
            regions.bases[lv].eq(self.jobs_base),
            regions.counts[lv].eq(self.job_count),
            regions.sizes[lv].eq(1),
            regions.bases[lv + 1].eq(self.out_base),
            regions.counts[lv + 1].eq(self.queries),
            regions.sizes[lv + 1].eq(1),
        ]

        # Registered verdicts of the checks that are compares.
        bad_shape = Signal(lv)
        bad_queries = Signal()
        for level, (max_h, max_w) in enumerate(cfg.max_shapes):
            h, w = self.heights[level], self.widths[level]
            m.d.sync += bad_shape[level].eq((h == 0) | (w == 0) | (h > max_h) | (w > max_w))
        m.d.sync += bad_queries.eq(self.queries > (1 << self.tag_bits))

        error = self.error
        m.d.sync += [
            self.new_maps.eq(0),
            self.fetch_start.eq(0),
            self.clear_errors.eq(0),
            regions.start.eq(0),
            self.irq.eq(self.done & self.irq_enable),
        ]
        with m.If(self.write_refused):
            m.d.sync += error[_BIT["WRITE_BUSY"]].eq(1)
        with m.If(self.ack):
            m.d.sync += self.done.eq(0)
        left = Signal(32)  # outputs still to come
        # cycles into the run, up to 3: the fetch, the store and the maps' reads report
        # ``idle`` and their errors through registers, cleared as the run begins
        settled = Signal(range(4))
        running = Signal()
        m.d.comb += running.eq(settled == 3)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.busy.eq(1),
                        self.done.eq(0),
                        error.eq(0),
                        regions.start.eq(1),
                        self.clear_errors.eq(1),
                    ]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(regions.done):
                    verdict = {
                        "SHAPE": bad_shape.any(),
                        "UNALIGNED": regions.unaligned,
                        "RANGE": regions.beyond,
                        "QUERIES": bad_queries,
                    }
                    for name, bad in verdict.items():
                        m.d.sync += error[_BIT[name]].eq(bad)
                    with m.If(Cat(*verdict.values()).any()):
                        m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [
                            self.run_widths.eq(Cat(w[: side_bits(cfg)] for w in self.widths)),
                            self.run_heights.eq(Cat(h[: side_bits(cfg)] for h in self.heights)),
                            self.run_bases.eq(Cat(self.map_bases)),
                            self.new_maps.eq(1),
                            self.fetch_start.eq(1),
                            left.eq(self.job_count),
                        ]
                        m.next = "RUN"
            with m.State("RUN"):
                with m.If(self.taken):
                    m.d.sync += left.eq(left - 1)
                with m.If(~running):
                    m.d.sync += settled.eq(settled + 1)
                with m.If(
                    running & (left == 0) & self.fetch_idle & self.store_idle & self.mem_idle
                ):
                    m.d.sync += [self.busy.eq(0), self.done.eq(1), settled.eq(0)]
                    m.next = "IDLE"
        with m.If(self.start & self.busy):
            m.d.sync += error[_BIT["START_BUSY"]].eq(1)
        with m.If(self.bad_tag):
            m.d.sync += error[_BIT["TAG"]].eq(1)
        with m.If(running):  # the readers' and writer's sticky bits, cleared at the start
            with m.If(self.read_error[0]):
                m.d.sync += error[_BIT["READ"]].eq(1)
            with m.If(self.write_error[0]):
                m.d.sync += error[_BIT["WRITE"]].eq(1)
            with m.If(self.read_error[1] | self.write_error[1]):
                m.d.sync += error[_BIT["MALFORMED"]].eq(1)
        return m
