"""Region check: before a run, every memory region it will touch is aligned and inside the
address range.

Contract:

* Region i starts at ``bases[i]`` and takes ``counts[i] * sizes[i] * unit_bytes[i]`` bytes
  (``unit_bytes`` fixed at construction; ``sizes[i]`` 1 for a region without a second
  factor). ``start`` (a pulse) checks them all, one after the other, from the inputs as they
  are then (hold them steady until ``done``).
* ``done`` pulses once the last region is checked; with it, ``unaligned`` (some base is not a
  multiple of ``align`` bytes) and ``beyond`` (some region ends past ``2**addr_bits``) hold
  their verdicts until the next ``start``.
* Latency: per region, two shift-and-add multiplies (one step per bit of the second factor,
  at most ``size_bits`` and the unit's bits) and three registered steps.

Timing: one adder or one compare per cycle; the multiplies are shift-and-add.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RegionCheck"]


class RegionCheck(wiring.Component):
    def __init__(
        self,
        unit_bytes: list[int],
        *,
        addr_bits: int,
        align: int,
        count_bits: int = 32,
        size_bits: int = 16,
    ):
        if not unit_bytes or min(unit_bytes) < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"unit_bytes={unit_bytes} must list at least one size >= 1")
        if align < 1 or align & (align - 1):
            self._MustUse__silence = True
            raise ValueError(f"align={align} is not allowed: a power of two")
        self.unit_bytes, self.addr_bits, self.align = list(unit_bytes), addr_bits, align
        self.count_bits, self.size_bits = count_bits, size_bits
        n = len(unit_bytes)
        super().__init__(
            {
                "start": In(1),
                "bases": In(unsigned(addr_bits)).array(n),
                "counts": In(unsigned(count_bits)).array(n),
                "sizes": In(unsigned(size_bits)).array(n),
                "done": Out(1),
                "unaligned": Out(1),
                "beyond": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = len(self.unit_bytes)
        unit_bits = max(self.unit_bytes).bit_length()
        wide = self.count_bits + self.size_bits + unit_bits
        region = Signal(range(n))
        product = Signal(wide)
        multiplicand = Signal(wide)
        multiplier = Signal(max(self.size_bits, unit_bits))
        end = Signal(max(wide, self.addr_bits) + 1)
        bases = Array(self.bases)
        counts = Array(self.counts)
        sizes = Array(self.sizes)
        units = Array(self.unit_bytes)
        low = (self.align - 1).bit_length()

        m.d.sync += self.done.eq(0)

        def step(m):
            """One shift-and-add step of product += multiplicand * multiplier."""
            with m.If(multiplier[0]):
                m.d.sync += product.eq(product + multiplicand)
            m.d.sync += [multiplicand.eq(multiplicand << 1), multiplier.eq(multiplier >> 1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [region.eq(0), self.unaligned.eq(0), self.beyond.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [
                    product.eq(0),
                    multiplicand.eq(counts[region]),
                    multiplier.eq(sizes[region]),
                ]
                if low:
                    with m.If(bases[region][:low] != 0):
                        m.d.sync += self.unaligned.eq(1)
                m.next = "SIZE"
            with m.State("SIZE"):  # product = count * size
                with m.If(multiplier == 0):
                    m.d.sync += [
                        product.eq(0),
                        multiplicand.eq(product),
                        multiplier.eq(units[region]),
                    ]
                    m.next = "UNIT"
                with m.Else():
                    step(m)
            with m.State("UNIT"):  # product = count * size * unit bytes
                with m.If(multiplier == 0):
                    m.d.sync += end.eq(bases[region] + product)
                    m.next = "COMPARE"
                with m.Else():
                    step(m)
            with m.State("COMPARE"):
                with m.If(end > (1 << self.addr_bits)):
                    m.d.sync += self.beyond.eq(1)
                with m.If(region == n - 1):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += region.eq(region + 1)
                    m.next = "LOAD"
        return m
