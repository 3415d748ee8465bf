"""UART receiver, 8N1: bytes from a serial line into a stream.

Contract: ``rx`` passes two synchronizing flip-flops; a falling edge starts a byte, each bit is
sampled in the middle of its ``divisor`` cycles, and a byte whose stop bit is 1 is offered on
``data`` (one entry: a byte not taken before the next one completes is dropped and counted in
``overruns``; a bad stop bit is counted in ``framing_errors``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx"]


class UartRx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"divisor={divisor} is out of range: allowed >= 4")
        self.divisor = divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(8)),
                "overruns": Out(16),
                "framing_errors": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        shift = Signal(9)
        bits = Signal(range(10))  # bits still to sample (start bit checked at mid-bit)
        timer = Signal(range(self.divisor))
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(bits == 0):
            with m.If(~line):  # start bit: sample it half a bit later
                m.d.sync += [bits.eq(10), timer.eq(self.divisor // 2 - 1)]
        with m.Elif(timer == 0):
            m.d.sync += timer.eq(self.divisor - 1)
            with m.If(bits == 10):
                with m.If(line):  # a glitch, not a start bit
                    m.d.sync += bits.eq(0)
                with m.Else():
                    m.d.sync += bits.eq(9)
            with m.Else():
                m.d.sync += [shift.eq(Cat(shift[1:], line)), bits.eq(bits - 1)]
                with m.If(bits == 1):  # the stop bit is in: shift[1:] is the byte
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(shift[1:]), self.data.valid.eq(1)]
                        with m.If(self.data.valid & ~self.data.ready):
                            m.d.sync += self.overruns.eq(self.overruns + 1)
                    with m.Else():
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
