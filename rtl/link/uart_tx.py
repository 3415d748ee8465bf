"""UART transmitter, 8N1: bytes from a stream onto a serial line.

Contract: ``tx`` idles high; a byte taken from ``data`` (``data.ready`` is high while the
transmitter is idle) goes out as a start bit (0), eight data bits LSB first and a stop bit (1),
each ``divisor`` clock cycles long (clock / baud rate).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartTx"]


class UartTx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 2:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"divisor={divisor} is out of range: allowed >= 2")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)  # stop, data[7:0], start; sent LSB first
        bits = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.comb += [self.data.ready.eq(bits == 0), self.tx.eq(shift[0])]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [
                    shift.eq(Cat(0, self.data.payload, 1)),
                    bits.eq(10),
                    timer.eq(self.divisor - 1),
                ]
        with m.Elif(timer == 0):
            m.d.sync += [
                shift.eq(Cat(shift[1:], 1)),
                bits.eq(bits - 1),
                timer.eq(self.divisor - 1),
            ]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
