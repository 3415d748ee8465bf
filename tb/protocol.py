"""Stream protocol checker for cocotb testbenches: the AXI-Stream handshake rule on every
valid/ready stream of a DUT, and a beat count per stream.

The rule: once ``valid`` is high at a clock edge where ``ready`` is low, the source must keep
``valid`` high and ``payload`` unchanged until the edge that transfers it (``valid & ready``).
A reset (``rst`` high at an edge) releases every stream. A beat is an edge with
``valid & ready`` outside reset.

``StreamMonitor`` samples once per cycle, after the falling edge once every write has
settled (the harness drives inputs on falling edges and the DUT changes its outputs on rising
edges, so these are the values the next rising edge takes). It reads ``valid`` and ``ready``
every cycle and the payload only while a stream is held, so watching costs little.
"""

from __future__ import annotations

from collections.abc import Callable

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

__all__ = ["StreamMonitor", "stream_names"]


def stream_names(manifest: dict) -> list[str]:
    """Every stream port of a generated block, from its manifest."""
    return sorted(n for n, p in manifest["ports"].items() if p.get("kind") == "stream")


class _Stream:
    __slots__ = ("name", "valid", "ready", "payload", "holding", "held", "beats")

    def __init__(self, dut, name: str):
        self.name = name
        self.valid = getattr(dut, f"{name}__valid")
        # A stream without ready is always ready: it cannot stall, its beats still count.
        self.ready = getattr(dut, f"{name}__ready", None)
        self.payload = getattr(dut, f"{name}__payload", None)
        self.holding = False  # valid & ~ready at the last edge
        self.held = None  # the payload offered then
        self.beats = 0

    def word(self):
        if self.payload is None:
            return None
        value = self.payload.value
        if not value.is_resolvable:
            raise AssertionError(f"stream {self.name}: payload {value} has X or Z bits while valid")
        return value.to_unsigned()


def _bit(stream: _Stream, which: str, value) -> bool:
    try:
        return bool(value)
    except ValueError:  # X or Z
        raise AssertionError(f"stream {stream.name}: {which} is {value} (not 0/1)") from None


class StreamMonitor:
    """Watches ``names`` (streams ``<name>__valid/__ready/__payload``) of ``dut``; calls
    ``fail(message)`` (which should raise) on the first violation of the handshake rule."""

    def __init__(self, dut, names, fail: Callable[[str], None], *, clk=None, rst=None):
        self._streams = [_Stream(dut, n) for n in names]
        self._clk = clk if clk is not None else dut.clk
        self._rst = rst if rst is not None else dut.rst
        self._fail = fail
        self._task = None
        self.cycles = 0

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._streams]

    def start(self) -> StreamMonitor:
        self._task = cocotb.start_soon(self._watch())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def beats(self, name: str | None = None):
        """Beats of stream ``name`` so far, or of every stream as a dict."""
        if name is None:
            return {s.name: s.beats for s in self._streams}
        return next(s.beats for s in self._streams if s.name == name)

    async def _watch(self):
        streams, clk, rst = self._streams, self._clk, self._rst
        while True:
            await FallingEdge(clk)
            await ReadOnly()
            self.cycles += 1
            if rst.value:
                for s in streams:
                    s.holding = False
                continue
            for s in streams:
                try:
                    self._check(s)
                except AssertionError as e:
                    error = str(e)
                else:
                    continue
                self._fail(error)

    @staticmethod
    def _check(s: _Stream):
        """One edge of stream ``s``: update its state, then raise on a violation."""
        valid = _bit(s, "valid", s.valid.value)
        error = None
        if s.holding:
            if not valid:
                error = (
                    f"stream {s.name}: valid dropped before the beat was taken (ready was low "
                    "at the last edge" + (f"; payload {s.held:#x})" if s.held is not None else ")")
                )
            elif (word := s.word()) != s.held:
                error = (
                    f"stream {s.name}: payload changed from {s.held:#x} to {word:#x} while "
                    "valid & ~ready"
                )
        if not valid:
            s.holding = False
        elif s.ready is None or _bit(s, "ready", s.ready.value):
            s.beats += 1
            s.holding = False
        elif not s.holding or error:
            s.holding, s.held = True, s.word()
        if error:
            raise AssertionError(error)
