"""FWP update pipeline of one bank: a quarter of a level's importance counters and mask bits
(``ImportanceMap`` has four, one per corner of a window).

Contract (stages counted from the cycle ``addr`` is given, stage 0; one address per cycle,
the pipeline never stalls):

* ``addr`` at stage 0 is registered (stage 1); the counter block RAM (``BlockRam``: on ECP5
  a DP16KD with its output register) delivers at stage 3, registered next to the update logic
  at stage 4; the mask bit (LUT RAM) is registered at stages 2 and 3 and leaves on ``keep`` at
  stage 4. ``coeff`` arrives at stage 4 and is registered with the counter (stage 5).
* Stage 5 (``DATA_STAGE``): ``count`` and ``mask`` carry the memories' values (unforwarded:
  what a command or a scan reads). With ``update`` the counter becomes
  ``min(counter + coeff, 2**importance_bits - 1)``: at stage 5 the newest value already known
  (the memory's, or one of the five write registers before the window just ahead, whose
  match flags were registered a stage early), at stage 6 the window just ahead's write or
  that value plus the coefficient, saturated from the carry, registered as the write; it
  lands at stage 7 (no write-through: the six windows before are forwarded, so back-to-back
  updates of one counter all count). No path has more than an adder, a compare or a select.
* ``scan_write`` at stage 5 (CLEAR and DERIVE's mask pass): the counter becomes 0 and the mask
  bit 1 (kept), or with ``mask_pass`` ``~inside | counter >= threshold`` (the compare is
  registered a stage early); ``masked`` pulses (stage 5) when that masks the pixel.
* ``command``: a MASK command's write of one mask bit (registered, written a cycle later).
* ``probe_addr``: the mask bit there on ``probe_keep`` one cycle later (a second read port).
* Memory contents survive reset (ASICs CLEAR after power-up).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.block_ram import BlockRam
from rtl.lib.stages import copy_register

__all__ = ["ImportanceBank"]


class ImportanceBank(wiring.Component):
    DATA_STAGE = 5
    #: stages from ``addr`` to ``keep``
    KEEP_STAGE = 4

    def __init__(self, depth: int, importance_bits: int, coeff_shape, threshold_bits: int):
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        self.depth, self._ib = depth, importance_bits
        addr = range(max(2, depth))
        super().__init__(
            {
                "addr": In(addr),
                "coeff": In(coeff_shape),
                "update": In(1),
                "scan_write": In(1),
                "mask_pass": In(1),
                "inside": In(1),
                "threshold": In(unsigned(threshold_bits)),
                "command": In(
                    data.StructLayout(
                        {"valid": 1, "addr": unsigned(len(range(max(2, depth)))), "keep": 1}
                    )
                ),
                "probe_addr": In(addr),
                "keep": Out(1),
                "count": Out(unsigned(importance_bits)),
                "mask": Out(1),
                "masked": Out(1),
                "probe_keep": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ib, data_stage = self._ib, self.DATA_STAGE
        top = (1 << ib) - 1
        addr_shape = self.addr.shape()
        counters = BlockRam(unsigned(ib), self.depth)
        mask = memory.Memory(shape=1, depth=self.depth, init=[1] * self.depth)
        m.submodules.counters = counters
        m.submodules.mask = mask
        mask_wr = mask.write_port()
        mask_rd = mask.read_port()
        probe_rd = mask.read_port()
        assert 1 + BlockRam.latency + 1 == self.KEEP_STAGE == data_stage - 1

        # the address at each stage (addrs[i] at stage i + 1)
        addrs = [Signal(addr_shape, name=f"s{i}_addr") for i in range(1, data_stage + 2)]
        m.d.sync += addrs[0].eq(self.addr)
        for prev, cur in zip(addrs, addrs[1:], strict=False):
            m.d.sync += cur.eq(prev)
        before_addr, data_addr, final_addr = addrs[data_stage - 2 : data_stage + 1]
        count_read = Signal(ib, name="count_read")  # registered here (stage 4)
        coeff_q = Signal.like(self.coeff, name="coeff_q")  # stage 5
        mask_read = Signal(name="mask_read")
        mask_q = Signal(name="mask_q")  # stage 4: the output
        m.d.sync += [
            count_read.eq(counters.r_data),
            self.count.eq(count_read),
            coeff_q.eq(self.coeff),
            mask_read.eq(mask_rd.data),
            mask_q.eq(mask_read),
            self.mask.eq(mask_q),
        ]
        # the mask's read address: a register of its own (kept), next to the LUT RAMs and
        # their read multiplexer, apart from the block RAM's and the pipeline's
        mask_addr = copy_register(addr_shape, name="mask_addr")
        m.d.sync += mask_addr.eq(self.addr)
        m.d.comb += [
            counters.r_addr.eq(addrs[0]),
            mask_rd.addr.eq(mask_addr),
            self.keep.eq(mask_q),
            probe_rd.addr.eq(self.probe_addr),
            self.probe_keep.eq(probe_rd.data),
        ]

        final_update = Signal(name="s6_update")
        m.d.sync += final_update.eq(self.update)
        # The writes: writes[0] is the write register (one window back, written this cycle),
        # writes[i] the window i + 1 back. A window's read misses the writes of the six
        # windows before it (they land after the read was issued): the one just ahead (at
        # stage 6 when this one is at stage 5) is forwarded at stage 6 from w1, the five
        # before that at stage 5 from w1..w5.
        depth = data_stage + 1
        writes = [
            {
                "valid": Signal(name=f"w{i + 1}_valid"),
                "addr": Signal(addr_shape, name=f"w{i + 1}_addr"),
                "value": Signal(ib, name=f"w{i + 1}_value"),
            }
            for i in range(depth)
        ]
        for prev, cur in zip(writes, writes[1:], strict=False):
            m.d.sync += [cur[key].eq(prev[key]) for key in cur]
        # Match flags, a cycle early (registered): at stage 4 against the windows that will be
        # in w1..w5 when this one is at stage 5 (now at stage 6 and in w1..w4); at stage 5
        # against the window just ahead (now at stage 6: in w1 next cycle).
        hits = [Signal(name=f"hit{i + 2}") for i in range(depth - 1)]
        m.d.sync += hits[0].eq(final_update & (final_addr == before_addr))
        m.d.sync += [
            hit.eq(w["valid"] & (w["addr"] == before_addr))
            for hit, w in zip(hits[1:], writes, strict=False)
        ]
        hit_ahead = Signal(name="hit1")
        m.d.sync += hit_ahead.eq(final_update & (final_addr == data_addr))

        known = self.count  # stage 5: the newest matching write register wins
        for i in reversed(range(depth - 1)):
            known = Mux(hits[i], writes[i]["value"], known)
        base = Signal(ib, name="s6_base")
        coeff_f = Signal.like(coeff_q, name="s6_coeff")
        clear_f = Signal(name="s6_clear")  # a scan writes 0
        m.d.sync += [base.eq(known), coeff_f.eq(coeff_q), clear_f.eq(self.scan_write)]
        total = Signal(ib + 1, name="s6_sum")
        w1_valid, w1_addr, w1_value = (writes[0][k] for k in ("valid", "addr", "value"))
        m.d.comb += total.eq(Mux(hit_ahead, w1_value, base) + coeff_f)
        m.d.sync += [
            w1_valid.eq(final_update | clear_f),
            w1_addr.eq(final_addr),
            # saturation from the carry; a scan's write is 0
            w1_value.eq(Mux(clear_f, 0, Mux(total[ib], top, total[:ib]))),
        ]
        m.d.comb += [
            counters.w_addr.eq(w1_addr),
            counters.w_data.eq(w1_value),
            counters.w_en.eq(w1_valid),
        ]

        # Mask writes, registered: the scans' (all kept on CLEAR, the threshold on the mask
        # pass) and MASK's.
        # count >= threshold, a stage early, from a copy of the counter's register next to the
        # compare (``count_read`` sits by the update logic)
        count_cmp = copy_register(ib, name="count_cmp")
        reaches = Signal(name="reaches")
        m.d.sync += [count_cmp.eq(counters.r_data), reaches.eq(count_cmp >= self.threshold)]
        kept = ~self.inside | reaches
        mw_valid = Signal(name="mw_valid")
        mw_addr = Signal(addr_shape, name="mw_addr")
        mw_data = Signal(name="mw_data")
        m.d.sync += mw_valid.eq(0)
        with m.If(self.scan_write):
            m.d.sync += [
                mw_valid.eq(1),
                mw_addr.eq(data_addr),
                mw_data.eq(Mux(self.mask_pass, kept, 1)),
            ]
        with m.Elif(self.command.valid):
            m.d.sync += [
                mw_valid.eq(1),
                mw_addr.eq(self.command.addr),
                mw_data.eq(self.command.keep),
            ]
        m.d.comb += [
            mask_wr.addr.eq(mw_addr),
            mask_wr.data.eq(mw_data),
            mask_wr.en.eq(mw_valid),
            self.masked.eq(self.scan_write & self.mask_pass & ~kept),
        ]
        return m
