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
  per cycle, each addend registered a cycle before it is added), the bias
  ``W*H * 2**tau_f_bits - 1`` added to the numerator (the ceiling), then a restoring
  division, one quotient bit per cycle (``quotient_bits`` = importance_bits + 1:
  every counter reaches at most ``2**importance_bits - 1``, so the threshold fits).
* Timing: one adder, compare or shift between registers (a division step is one subtraction,
  its sign the quotient bit); ``done`` leaves from a register (the
  caller starts its next scan from it: no path from this FSM's state into the caller's).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import side_bits

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
        pixels = Signal(2 * sb)
        numerator = Signal(len(self.level_sum) + tb + 1)
        divisor = Signal(len(pixels) + tb + qb)
        bias = Signal(len(pixels) + tb)
        count = Signal(range(max(qb, tb + 1, sb + 1) + 1))
        sum_shift = Signal(numerator.shape())  # level_sum << i
        tau_rest = Signal(tb)  # tau_f >> i
        width_shift = Signal(pixels.shape())  # width << i
        height_rest = Signal(sb)  # height >> i
        sum_term = Signal(numerator.shape())  # the addends, a cycle ahead of their adds
        pixel_term = Signal(pixels.shape())
        threshold = self.threshold
        done = Signal()  # the registered ``done``
        m.d.comb += self.done.eq(done)
        m.d.sync += done.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        numerator.eq(0),
                        pixels.eq(0),
                        sum_shift.eq(self.level_sum),
                        tau_rest.eq(self.tau_f),
                        width_shift.eq(self.width),
                        height_rest.eq(self.height),
                        sum_term.eq(0),
                        pixel_term.eq(0),
                        count.eq(max(tb, sb) + 1),
                    ]
                    m.next = "MULTIPLY"
            with m.State("MULTIPLY"):  # numerator = tau_f * S, pixels = W * H
                m.d.comb += self.busy.eq(1)
                m.d.sync += [
                    sum_term.eq(Mux(tau_rest[0], sum_shift, 0)),
                    pixel_term.eq(Mux(height_rest[0], width_shift, 0)),
                    numerator.eq(numerator + sum_term),
                    pixels.eq(pixels + pixel_term),
                    sum_shift.eq(sum_shift << 1),
                    tau_rest.eq(tau_rest >> 1),
                    width_shift.eq(width_shift << 1),
                    height_rest.eq(height_rest >> 1),
                    count.eq(count - 1),
                ]
                with m.If(count == 1):
                    m.next = "BIAS"
            with m.State("BIAS"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += bias.eq((pixels << tb) - 1)
                m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [
                    numerator.eq(numerator + bias),
                    divisor.eq(pixels << (tb + qb - 1)),
                    threshold.eq(0),
                    count.eq(qb),
                ]
                m.next = "DIVIDE"
            with m.State("DIVIDE"):
                m.d.comb += self.busy.eq(1)
                # one subtraction: its sign says whether the divisor fits (no separate compare)
                difference = Signal(signed(max(len(numerator), len(divisor)) + 1))
                fits = ~difference[-1]
                m.d.comb += difference.eq(numerator - divisor)
                m.d.sync += [
                    threshold.eq(Cat(fits, threshold[:-1])),
                    divisor.eq(divisor >> 1),
                    count.eq(count - 1),
                ]
                with m.If(fits):
                    m.d.sync += numerator.eq(difference[: len(numerator)])
                with m.If(count == 1):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"
        return m
