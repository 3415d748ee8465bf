"""FWP state of one level: per-pixel importance counters and the pixel mask, banked like the
level buffer (pixel (x, y) in bank b = 2*(y mod 2) + (x mod 2), word address
``(y >> 1) * pitch + (x >> 1)``), so the sampler reads and updates the four corners of a
window in one cycle. Built from ``ImportanceBank`` (one per bank: counters, mask, the update
pipeline) and ``ThresholdUnit`` (DERIVE's arithmetic); this component registers the window's
corners, decodes the commands and runs the scans.

Contract:

* Sampler side, one window per cycle (the pipeline never stalls): the window (``x0``,
  ``y0``), ``corners`` (bit k = 2*dy + dx: corner (x0 + dx, y0 + dy) lies on the map, the
  coordinate unit's ``valid``) and ``update`` at cycle t; at t + ``latency`` (5) ``keep[b]``
  is the mask bit of the window's corner in bank b, and ``coeff[b]`` must carry that
  corner's coefficient (0 for a corner off the map): with ``update`` set, the corner's
  counter becomes ``min(counter + coeff, 2**importance_bits - 1)``. Back-to-back updates of
  one pixel all count. A corner off the map touches no counter of its own.
* Update pipeline (per bank; no path has more than an adder, a compare or a select between
  registers), stages counted from t' = t + 1, when the window's corners are registered: the
  counters are a ``BlockRam`` (on ECP5 DP16KD with its output register) read at t' + 1 (the
  address registered from the corners) and delivering at t' + 3, registered next to the
  update logic (t' + 4: the block RAMs sit in rows of their own) and once more with the
  coefficient (t' + 5, ``DATA_STAGE``). The memory does not write through, and a window's
  write lands two cycles after its data stage, so the six windows before it are forwarded:
  at t' + 5 the newest of the five before the one just ahead (match flags registered a cycle
  early) or the memory's value is registered; at t' + 6 the one just ahead (its write
  register, with its own registered match flag) or that value, plus the coefficient,
  saturated from the carry, is registered as the write (t' + 7). Mask writes are registered
  as well.
* Load side: ``probe_x``, ``probe_y`` at cycle t; ``probe_keep`` (that pixel's mask bit) at
  t + ``probe_latency``: 1, or with maps in memory (``cfg.streamed``: the band window probes
  the mask of a whole map, block RAM) 2, the word address registered before the read.
  ``any_masked`` (a register): some pixel may be masked (set by a MASK of 0 and by DERIVE
  masking a pixel, cleared as CLEAR and DERIVE start): while it is low every mask bit is 1,
  so a reader of the map may skip the probes.
* Commands (``command`` stream of ``FwpOp``): one at a time, ``command.ready`` is raised when
  it is done; ``active`` is high meanwhile, and the sampler side must be idle then.

  - CLEAR (``rows*pitch`` cycles and a few): every counter to 0, every mask bit to 1 (kept).
  - DERIVE (``2*rows*pitch + importance_bits + max(tau_f_bits, side bits)`` cycles and a
    few): S = the sum of the counters of the pixels inside the level's current shape
    (``width`` x ``height``), then ``tau_f * S`` and ``W*H`` by shift and add, then
    ``threshold = ceil(tau_f * S / (W*H * 2**tau_f_bits))`` by a restoring division (one
    quotient bit per cycle), then a pixel inside is kept iff its counter >= threshold (pixels
    outside are kept), and every counter returns to 0 for the next layer. ``masked`` counts
    the pixels masked, as they are written (0..4 per cycle).
  - READ: ``result`` carries the pixel's counter and mask bit; the command completes when the
    result is taken. A pixel outside the buffer reads counter 0, kept.
  - MASK: sets the pixel's mask bit to ``keep`` (a pixel outside the buffer is ignored).
* Memory contents survive reset: CLEAR after power-up on an ASIC (FPGA bitstreams and
  simulation start cleared).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.fwp_bank import ImportanceBank
from rtl.core.fwp_threshold import ThresholdUnit
from rtl.core.layouts import FwpOp, fwp_command_layout, fwp_result_layout, side_bits
from rtl.core.level_buffer import buffer_geometry
from rtl.lib.stages import copy_register

__all__ = ["ImportanceMap"]


class _Pass(enum.Enum, shape=2):
    CLEAR = 0  # counters to 0, mask to 1
    SUM = 1  # DERIVE's first scan: sum the counters
    MASK = 2  # DERIVE's second scan: mask bits from the threshold, counters to 0


class ImportanceMap(wiring.Component):
    latency = 5
    #: the stage (cycles after the window's corners are registered) where a window's counter
    #: value is read (it is written two stages later)
    DATA_STAGE = 5

    def __init__(self, cfg: DefaConfig, level: int):
        try:
            geometry = buffer_geometry(cfg, level, whole_map=True)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self._cfg = cfg
        self._level = level
        self.rows, self.pitch = geometry["rows"], geometry["pitch"]
        self.depth = self.rows * self.pitch
        #: cycles from ``probe_x``/``probe_y`` to ``probe_keep``
        self.probe_latency = 2 if cfg.streamed else 1
        index = signed(cfg.coord_bits - cfg.coord_frac_bits)
        command = fwp_command_layout(cfg, level)
        super().__init__(
            {
                "x0": In(index),
                "y0": In(index),
                "corners": In(4),
                "update": In(1),
                "coeff": In(data.ArrayLayout(unsigned(cfg.coeff_bits + 1), 4)),
                "keep": Out(4),
                "probe_x": In(command["x"].shape),
                "probe_y": In(command["y"].shape),
                "probe_keep": Out(1),
                "command": In(stream.Signature(command)),
                "result": Out(stream.Signature(fwp_result_layout(cfg))),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "masked": Out(range(5)),
                "any_masked": Out(1),
                "active": Out(1),
            }
        )

    @property
    def quotient_bits(self) -> int:
        return self._cfg.importance_bits + 1

    def elaborate(self, platform):
        cfg = self._cfg
        height, width = cfg.max_shapes[self._level]
        ib = cfg.importance_bits
        m = Module()
        addr_bits = max(1, (self.depth - 1).bit_length())

        def address(row, col):  # word address within a bank of pixel (2*col + bx, 2*row + by)
            return row * self.pitch + col

        cmd = self.command.payload
        cmd_inside = (cmd.x < width) & (cmd.y < height)
        cmd_bank = Cat(cmd.x[0], cmd.y[0])

        # Scan: every word address once, with its (row, col), for CLEAR and DERIVE.
        scan_addr = Signal(addr_bits)
        scan_row = Signal(range(self.rows))
        scan_col = Signal(range(self.pitch))
        scan_done = Signal()
        issuing = Signal()  # SCAN, before scan_done (a register)
        scan_pass = Signal(_Pass)

        read_issue = Signal()  # READ puts the command's address into the pipeline
        mask_write = Signal()  # MASK writes the command's mask bit

        # The window's corners are registered first (per bank, below) with its update flag;
        # from there: stage 1 (address registered), stages 2 and 3 (the block RAM's address
        # and output registers), stage 4 (the read registered next to the update logic; the
        # mask bits leave here), stage 5 (with the coefficients, registered here too: the
        # update).
        data_stage = self.DATA_STAGE
        stages = [
            {
                "valid": Signal(name=f"s{i}_valid"),
                "row": Signal.like(scan_row, name=f"s{i}_row"),
                "col": Signal.like(scan_col, name=f"s{i}_col"),
                "update": Signal(name=f"s{i}_update"),
            }
            for i in range(1, data_stage + 2)
        ]
        update = Signal(name="update_r")  # the window's, with its corners
        m.d.sync += update.eq(self.update)
        m.d.sync += [
            stages[0]["valid"].eq(issuing),
            stages[0]["row"].eq(scan_row),
            stages[0]["col"].eq(scan_col),
            stages[0]["update"].eq(update & ~self.active),
        ]
        for prev, cur in zip(stages, stages[1:], strict=False):
            m.d.sync += [cur[key].eq(prev[key]) for key in cur]
        s_before, s_data, s_final = stages[data_stage - 2 : data_stage + 1]
        # Three more stages (commands only): DERIVE's sum, four counters at a time (pairs,
        # their sum, the running sum: one adder a stage).
        sum_valid = [Signal(name=f"sum{i}_valid") for i in (1, 2, 3)]
        m.d.sync += [
            sum_valid[0].eq(s_data["valid"] & self.active),
            sum_valid[1].eq(sum_valid[0]),
            sum_valid[2].eq(sum_valid[1]),
        ]

        threshold = Signal(self.quotient_bits)
        level_sum = Signal(ib + (4 * self.depth).bit_length())
        sum_terms = []
        masked_now = []
        result_data = Signal(fwp_result_layout(cfg))

        # the probed pixel's bank, with its mask bit; with a registered address, the word
        # address and the bank a cycle earlier
        probe_bank = Signal(2)
        probe_word = Signal(addr_bits)
        if self.probe_latency == 2:
            probe_bank_early = Signal(2)
            m.d.sync += [
                probe_bank_early.eq(Cat(self.probe_x[0], self.probe_y[0])),
                probe_bank.eq(probe_bank_early),
                probe_word.eq(address(self.probe_y[1:], self.probe_x[1:])),
            ]
        else:
            m.d.sync += probe_bank.eq(Cat(self.probe_x[0], self.probe_y[0]))
            m.d.comb += probe_word.eq(address(self.probe_y[1:], self.probe_x[1:]))

        for b in range(4):
            bx, by = b & 1, b >> 1
            bank = ImportanceBank(
                self.depth, ib, self.coeff[b].shape(), threshold_bits=self.quotient_bits
            )
            m.submodules[f"bank{b}"] = bank
            assert 1 + bank.KEEP_STAGE == self.latency and bank.DATA_STAGE == data_stage

            # The corner of the sampler's window in this bank (as in LevelBuffer), registered.
            cx = copy_register(self.x0.shape(), name=f"cx{b}")
            cy = copy_register(self.y0.shape(), name=f"cy{b}")
            # whether it is on the map: the window's corner bit for it (dx = x0 odd ^ bx), so
            # no compare lies between these registers and the bank's address
            corner_inside = copy_register(1, name=f"corner_inside{b}")
            corner = Cat(self.x0[0] ^ bx, self.y0[0] ^ by)
            m.d.sync += [
                cx.eq(self.x0 + (self.x0[0] ^ bx)),
                cy.eq(self.y0 + (self.y0[0] ^ by)),
                corner_inside.eq(
                    Mux(
                        corner[1],
                        Mux(corner[0], self.corners[3], self.corners[2]),
                        Mux(corner[0], self.corners[1], self.corners[0]),
                    )
                ),
            ]
            with m.If(issuing):
                m.d.comb += bank.addr.eq(scan_addr)
            with m.Elif(read_issue):
                m.d.comb += bank.addr.eq(address(cmd.y[1:], cmd.x[1:]))
            with m.Elif(corner_inside):
                m.d.comb += bank.addr.eq(address(cy[1:], cx[1:]))

            # Stage 5: the pixel of this bank at the scanned (row, col), and what to write.
            inside = Signal(name=f"inside{b}")  # the scanned pixel is inside the shape
            x = Cat(Const(bx, 1), s_before["col"])
            y = Cat(Const(by, 1), s_before["row"])
            m.d.sync += inside.eq((x < self.width) & (y < self.height))
            # the bank's own copy of the threshold (kept), a cycle behind the ThresholdUnit's:
            # the mask scan compares at its data stage, cycles after the threshold is done
            bank_threshold = copy_register(self.quotient_bits, name=f"threshold{b}")
            m.d.sync += bank_threshold.eq(threshold)
            scanned = s_data["valid"]  # only the scans issue (valid implies a command)
            # the bank's own registers of the scan's write and pass, set a stage early from
            # the window before its data stage (scan_pass holds while a scan is in flight)
            scan_write = copy_register(1, name=f"scan_write{b}")
            mask_pass = copy_register(1, name=f"mask_pass{b}")
            m.d.sync += [
                scan_write.eq(s_before["valid"] & (scan_pass != _Pass.SUM)),
                mask_pass.eq(scan_pass == _Pass.MASK),
            ]
            m.d.comb += [
                bank.coeff.eq(self.coeff[b]),
                self.keep[b].eq(bank.keep),
                bank.update.eq(s_data["update"]),  # masked at stage 1 while a command runs
                bank.scan_write.eq(scan_write),
                bank.mask_pass.eq(mask_pass),
                bank.inside.eq(inside),
                bank.threshold.eq(bank_threshold),
                bank.command.valid.eq(mask_write & (cmd_bank == b) & cmd_inside),
                bank.command.addr.eq(address(cmd.y[1:], cmd.x[1:])),
                bank.command.keep.eq(cmd.keep),
                bank.probe_addr.eq(probe_word),
            ]
            term = Signal(ib, name=f"term{b}")
            m.d.sync += term.eq(Mux(scanned & inside & (scan_pass == _Pass.SUM), bank.count, 0))
            sum_terms.append(term)
            masked_now.append(bank.masked)
            with m.If(cmd_bank == b):
                m.d.comb += [
                    result_data.importance.eq(Mux(cmd_inside, bank.count, 0)),
                    result_data.keep.eq(~cmd_inside | bank.mask),
                ]
            with m.If(probe_bank == b):
                m.d.comb += self.probe_keep.eq(bank.probe_keep)

        m.d.comb += self.masked.eq(sum(masked_now))
        pairs = [Signal(ib + 1, name=f"pair{i}") for i in (0, 1)]  # the terms' sums in pairs
        quad = Signal(ib + 2)  # the four terms' sum
        m.d.sync += [
            pairs[0].eq(sum_terms[0] + sum_terms[1]),
            pairs[1].eq(sum_terms[2] + sum_terms[3]),
            quad.eq(pairs[0] + pairs[1]),
            level_sum.eq(level_sum + quad),
        ]

        # DERIVE's threshold from the level's sum (ThresholdUnit), between its two scans.
        m.submodules.threshold = derive = ThresholdUnit(cfg, len(level_sum))
        m.d.comb += [
            derive.level_sum.eq(level_sum),
            derive.tau_f.eq(self.tau_f),
            derive.width.eq(self.width),
            derive.height.eq(self.height),
            threshold.eq(derive.threshold),
        ]
        read_wait = Signal(range(data_stage))
        m.d.sync += derive.start.eq(0)  # a pulse, registered (set below)

        # Nothing issued is still in the pipeline (a register: a cycle late, never early).
        drained = Signal()
        m.d.sync += drained.eq(~Cat(issuing, *(s["valid"] for s in stages), *sum_valid).any())

        # The state's decodes that steer the banks' addresses are registers of their own (set
        # with the state change): no path from the FSM's state into the banks.
        m.d.sync += [read_issue.eq(0), mask_write.eq(0)]

        def start_scan(kind):
            m.d.sync += [
                issuing.eq(1),
                scan_pass.eq(kind),
                scan_addr.eq(0),
                scan_row.eq(0),
                scan_col.eq(0),
                scan_done.eq(0),
            ]

        with m.If(self.masked != 0):
            m.d.sync += self.any_masked.eq(1)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.command.valid):
                    with m.Switch(cmd.op):
                        with m.Case(FwpOp.CLEAR):
                            start_scan(_Pass.CLEAR)
                            m.d.sync += self.any_masked.eq(0)
                            m.next = "SCAN"
                        with m.Case(FwpOp.DERIVE):
                            start_scan(_Pass.SUM)
                            m.d.sync += [level_sum.eq(0), self.any_masked.eq(0)]
                            m.next = "SCAN"
                        with m.Case(FwpOp.READ):
                            m.d.sync += read_issue.eq(1)
                            m.next = "READ"
                        with m.Case(FwpOp.MASK):
                            m.d.sync += mask_write.eq(1)
                            with m.If(~cmd.keep):
                                m.d.sync += self.any_masked.eq(1)
                            m.next = "WRITE"
            with m.State("SCAN"):
                with m.If(~scan_done):
                    m.d.sync += scan_addr.eq(scan_addr + 1)
                    with m.If(scan_col == self.pitch - 1):
                        m.d.sync += [scan_col.eq(0), scan_row.eq(scan_row + 1)]
                        with m.If(scan_row == self.rows - 1):
                            m.d.sync += [scan_done.eq(1), issuing.eq(0)]
                    with m.Else():
                        m.d.sync += scan_col.eq(scan_col + 1)
                with m.If(scan_done & drained):
                    with m.If(scan_pass == _Pass.SUM):
                        m.d.sync += derive.start.eq(1)
                        m.next = "THRESHOLD"
                    with m.Else():
                        m.next = "DONE"
            with m.State("THRESHOLD"):
                with m.If(derive.done):
                    start_scan(_Pass.MASK)
                    m.next = "SCAN"
            with m.State("READ"):  # the address enters stage 1
                m.d.sync += read_wait.eq(data_stage - 1)
                m.next = "READ_WAIT"
            with m.State("READ_WAIT"):  # through the pipeline to the data stage
                m.d.sync += read_wait.eq(read_wait - 1)
                with m.If(read_wait == 1):
                    m.next = "READ_DATA"
            with m.State("READ_DATA"):
                m.d.sync += self.result.payload.eq(result_data)
                m.next = "RESULT"
            with m.State("RESULT"):
                with m.If(self.result.ready):
                    m.next = "DONE"
            with m.State("WRITE"):
                m.next = "DONE"
            with m.State("DONE"):
                m.next = "IDLE"
        # Outputs decode the state outside the FSM's case statement: plain assignments start
        # defined in every simulator (Icarus may never run an always block over an idle state).
        m.d.comb += [
            self.active.eq(~fsm.ongoing("IDLE")),
            self.result.valid.eq(fsm.ongoing("RESULT")),
            self.command.ready.eq(fsm.ongoing("DONE")),
        ]
        return m
