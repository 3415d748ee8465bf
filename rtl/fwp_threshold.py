"""FWP threshold: the counter value a pixel must reach to stay kept, from a level's sum.

``threshold = ceil(tau_f * S / (W * H * 2**tau_f_bits))`` (``sim.bittrue`` has the same), for
the sum S of the importance counters inside the level's shape W x H and the CSR ``tau_f``.

Contract:

* ``start`` (a pulse) takes ``level_sum``, ``tau_f``, ``width`` and ``height`` (hold them
  steady until ``done``). ``done`` (a register) pulses ``max(tau_f_bits, side bits) +
  quotient_bits + 4`` cycles later, the first cycle ``threshold`` holds the result; it holds
  it until the next ``start``. ``busy`` is high from the cycle after ``start`` until the last
  quotient bit is registered.
* Method: ``tau_f * S`` and ``W * H`` by shift and add (one bit of ``tau_f`` and of the height
  per cycle, each addend registered before it is added, the level sum's terms twice), the bias
  ``W*H * 2**tau_f_bits - 1`` added to the numerator (its -1 as the remainder's start), then a
  non-restoring division, one quotient bit per cycle (``quotient_bits`` = importance_bits + 1:
  every counter reaches at most ``2**importance_bits - 1``, so the threshold fits): the
  remainder adds ``+d`` while negative, ``-d`` while not, and each quotient bit is the new
  remainder's sign, the same bits as a restoring division's.
* Timing: the remainder is one adder whose addend (two registers, one per sign) its own sign
  bit selects, with no enable; the phases are one-hot registers, copied per group of
  registers they steer; ``done`` leaves from a register (the caller starts its next scan from
  it: no path from this unit's state into the caller's).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import side_bits
from rtl.stages import copy_register

__all__ = ["ThresholdUnit"]


class ThresholdUnit(wiring.Component):
    def __init__(self, cfg: DefaConfig, sum_bits: int):
        if sum_bits < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"sum_bits={sum_bits} is out of range: allowed >= 1")
        self._cfg = cfg
        self.quotient_bits = cfg.importance_bits + 1
        super().__init__(
            {
                "start": In(1),
                "level_sum": In(unsigned(sum_bits)),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "threshold": Out(unsigned(self.quotient_bits)),
                "done": Out(1),
                "busy": Out(1),
            }
        )

    @staticmethod
    def cycles_of(cfg: DefaConfig) -> int:
        """Cycles from ``start`` to ``done``."""
        return max(cfg.tau_f_bits, side_bits(cfg)) + cfg.importance_bits + 1 + 4

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        tb, sb, qb = cfg.tau_f_bits, side_bits(cfg), self.quotient_bits
        steps = max(tb, sb) + 1  # MULTIPLY's cycles: every bit of tau_f and of the height
        pixels = Signal(2 * sb)
        # the remainder, signed: tau_f * S - 1 after MULTIPLY (it starts at -1, the bias's -1),
        # + W*H * 2**tb after SETUP, then one non-restoring division step per DIVIDE cycle
        divisor_bits = len(pixels) + tb + qb
        remainder = Signal(signed(max(len(self.level_sum) + tb + 1, divisor_bits) + 1))
        # the two addends (registers): the remainder adds ``plus`` while negative, ``minus``
        # while not; equal outside DIVIDE, so its sign picks nothing there
        plus = Signal(signed(len(remainder)))
        minus = Signal(signed(len(remainder)))
        count = Signal(range(max(qb, steps) + 1))
        sum_shift = Signal(len(self.level_sum) + tb)  # level_sum << i
        tau_rest = Signal(tb)  # tau_f >> i
        width_shift = Signal(pixels.shape())  # width << i
        height_rest = Signal(sb)  # height >> i
        pixel_term = Signal(pixels.shape())  # a cycle ahead of its add
        threshold = self.threshold
        done = Signal()  # the registered ``done``
        m.d.comb += self.done.eq(done)

        # The phases, one-hot registers (no decoded state): a copy of MULTIPLY's for each
        # group of registers it steers (the level sum's shift, the pixels' product, the
        # addends), so no one net reaches them all.
        multiply = [copy_register(1, name=f"multiply_{g}") for g in ("sum", "pixels", "terms")]
        bias = copy_register(1, name="bias")  # the addends take W*H << tb
        setup = copy_register(1, name="setup")  # ... the divisor, both signs
        divide = [copy_register(1, name=f"divide_{g}") for g in ("terms", "quotient")]
        last = Signal()  # count == 1: the phase's last cycle
        m.d.comb += last.eq(count == 1)
        m.d.comb += self.busy.eq(multiply[0] | bias | setup | divide[1])
        m.d.sync += [bias.eq(multiply[0] & last), setup.eq(bias), done.eq(divide[1] & last)]
        with m.If(self.start):
            m.d.sync += [c.eq(1) for c in multiply]
        with m.Elif(last):
            m.d.sync += [c.eq(0) for c in multiply]
        with m.If(setup):
            m.d.sync += [c.eq(1) for c in divide]
        with m.Elif(last):
            m.d.sync += [c.eq(0) for c in divide]
        with m.If(self.start):
            m.d.sync += count.eq(steps)
        with m.Elif(setup):
            m.d.sync += count.eq(qb)
        with m.Elif(multiply[0] | divide[1]):
            m.d.sync += count.eq(count - 1)

        # MULTIPLY: tau_f * S into the addends (a bit of tau_f per cycle), W * H into pixels
        # (each term registered before it reaches the addends: the bit of tau_f that selects
        # it reaches one register per bit, not both addends)
        sum_term = Signal(len(sum_shift), name="sum_term")
        with m.If(self.start):
            m.d.sync += [sum_shift.eq(self.level_sum), tau_rest.eq(self.tau_f), sum_term.eq(0)]
        with m.Elif(multiply[0]):
            m.d.sync += [
                sum_shift.eq(sum_shift << 1),
                tau_rest.eq(tau_rest >> 1),
                sum_term.eq(Mux(tau_rest[0], sum_shift, 0)),
            ]
        with m.If(self.start):
            m.d.sync += [
                pixels.eq(0),
                pixel_term.eq(0),
                width_shift.eq(self.width),
                height_rest.eq(self.height),
            ]
        with m.Elif(multiply[1]):
            m.d.sync += [
                pixel_term.eq(Mux(height_rest[0], width_shift, 0)),
                pixels.eq(pixels + pixel_term),
                width_shift.eq(width_shift << 1),
                height_rest.eq(height_rest >> 1),
            ]

        # The addends: one-hot selects (an AND-OR per bit), 0 outside the phases
        divisor = pixels << (tb + qb - 1)
        m.d.sync += [
            plus.eq(
                Mux(multiply[2], sum_term, 0)
                | Mux(bias, pixels << tb, 0)
                | Mux(setup, divisor, 0)
                | Mux(divide[0], plus >> 1, 0)
            ),
            minus.eq(
                Mux(multiply[2], sum_term, 0)
                | Mux(bias, pixels << tb, 0)
                | Mux(setup, -divisor, 0)
                | Mux(divide[0], minus >> 1, 0)  # exact: the divisor's low bits are zero
            ),
        ]
        # the remainder: one adder, its addend picked by its own sign (a register bit), no
        # enable; the quotient bit is the new remainder's sign (restoring division's, step for
        # step: a negative remainder r - d is r next step, d/2 added instead of subtracted)
        after = Signal(signed(len(remainder)))
        m.d.comb += after.eq(remainder + Mux(remainder[-1], plus, minus))
        with m.If(self.start):
            m.d.sync += remainder.eq(-1)
        with m.Else():
            m.d.sync += remainder.eq(after)
        with m.If(divide[1]):
            m.d.sync += threshold.eq(Cat(~after[-1], threshold[:-1]))
        return m
