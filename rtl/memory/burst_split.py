"""Burst split: AXI4 requests (byte address, beats) into INCR bursts, the part that
``AxiReader`` and ``AxiWriter`` share.

Contract:

* ``requests``: ``addr`` in bytes and ``beats`` (of ``data_bits`` each), taken while no
  request is being split. A request of 0 beats, or at an address that is not a multiple of
  the beat's bytes, pulses ``malformed`` as it is taken (0 beats: nothing follows; misaligned:
  split from the beat that holds the address).
* ``bursts``: the request's bursts in order: ``addr``, ``length`` (1 .. ``max_burst`` beats,
  never across a 4 KB page: AXI4) and ``final`` (the request's last burst). Each is offered
  (``valid``) two cycles after the previous one was taken, or after its request.
* ``idle``: no request taken and unsplit.

Timing: registered steps, no path with more than one compare-and-select or one adder: the cap
by ``max_burst`` and the beats to the page's end, then the smaller of the two; the address and
the beats left advance when a burst is taken.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BOUNDARY", "BurstSplit", "burst_problems", "request_layout"]

BOUNDARY = 4096  # bytes: an AXI4 burst never crosses one


def request_layout(addr_bits: int, beats_bits: int) -> data.StructLayout:
    return data.StructLayout({"addr": addr_bits, "beats": beats_bits})


def burst_problems(
    addr_bits: int, data_bits: int, beats_bits: int, max_burst: int, outstanding: int
) -> list[str]:
    """What is wrong with the parameters an AXI4 master shares (empty when nothing)."""
    problems = []
    if not 12 <= addr_bits <= 64:
        problems.append(f"addr_bits={addr_bits} is out of range: allowed [12, 64]")
    if data_bits not in (8, 16, 32, 64, 128, 256, 512, 1024):
        problems.append(f"data_bits={data_bits} is not allowed: a power of two in [8, 1024]")
    elif not (1 <= max_burst <= 256 and max_burst * data_bits // 8 <= BOUNDARY):
        problems.append(
            f"max_burst={max_burst} is out of range: allowed [1, "
            f"{min(256, BOUNDARY * 8 // data_bits)}] beats of {data_bits} bits (AXI4: 256 "
            f"beats, 4 KB)"
        )
    if not 1 <= beats_bits <= 32:
        problems.append(f"beats_bits={beats_bits} is out of range: allowed [1, 32]")
    if outstanding < 1:
        problems.append(f"outstanding={outstanding} is out of range: allowed >= 1")
    return problems


class BurstSplit(wiring.Component):
    def __init__(self, addr_bits: int, data_bits: int, beats_bits: int, max_burst: int):
        self.addr_bits, self.data_bits, self.max_burst = addr_bits, data_bits, max_burst
        super().__init__(
            {
                "requests": In(stream.Signature(request_layout(addr_bits, beats_bits))),
                "bursts": Out(
                    stream.Signature(
                        data.StructLayout(
                            {"addr": addr_bits, "length": range(max_burst + 1), "final": 1}
                        )
                    )
                ),
                "malformed": Out(1),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        beat_bytes = self.data_bits // 8
        size = beat_bytes.bit_length() - 1
        burst = self.bursts.payload

        left = Signal.like(self.requests.payload.beats)
        busy = Signal()
        step = Signal()  # ``capped`` and ``to_boundary`` hold this burst's bounds
        capped = Signal(range(self.max_burst + 1))
        to_boundary = Signal(range(BOUNDARY // beat_bytes + 1))
        m.d.comb += [self.requests.ready.eq(~busy), self.idle.eq(~busy)]
        m.d.sync += self.malformed.eq(0)
        with m.If(self.requests.valid & ~busy):
            request = self.requests.payload
            m.d.sync += [
                burst.addr.eq(request.addr & ~(beat_bytes - 1)),
                left.eq(request.beats),
                busy.eq(request.beats != 0),
            ]
            misaligned = request.addr[:size].any() if size else 0
            m.d.sync += self.malformed.eq((request.beats == 0) | misaligned)
        with m.If(busy & ~step & ~self.bursts.valid):
            m.d.sync += [
                capped.eq(Mux(left < self.max_burst, left, self.max_burst)),
                to_boundary.eq(BOUNDARY // beat_bytes - burst.addr[size:12]),
                step.eq(1),
            ]
        with m.If(step):
            shorter = capped <= to_boundary
            m.d.sync += [
                burst.length.eq(Mux(shorter, capped, to_boundary)),
                burst.final.eq(shorter & (capped == left)),
                step.eq(0),
                self.bursts.valid.eq(1),
            ]
        with m.If(self.bursts.valid & self.bursts.ready):
            m.d.sync += [
                burst.addr.eq(burst.addr + burst.length * beat_bytes),
                left.eq(left - burst.length),
                busy.eq(~burst.final),
                self.bursts.valid.eq(0),
            ]
        return m
