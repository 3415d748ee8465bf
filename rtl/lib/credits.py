"""Credits: the sender's count of beats in flight over a registered crossing (``Inbox``).

Contract: ``room`` is a register, high while fewer than ``depth`` beats are in flight; a beat
may be sent (``enter``) only with ``room``. A beat is in flight from the cycle after its
``enter`` until the cycle after its ``freed`` pulse (the receiver's credit, or ``refund``: a
slot taken and given back unused). ``freed`` and ``refund`` may pulse in the same cycle.
``room`` in cycle t is exactly ``in flight at t < depth``, ``idle`` is ``nothing in flight``
(registers both): no logic of the receiver reaches the sender's decision, only the credit's
register. ``room_next`` (combinational) is the value ``room`` takes at the next edge, for a
sender that registers one decision over several counts. ``room_copies`` (with
``Credits(depth, room_copies=n)``): n more registers equal to ``room`` (kept); the sender
drives ``enter_copies`` (n bits, each equal to ``enter``), and copy k follows
``enter_copies[k]`` alone (a sender that decides in several places keeps each together).
``room_after_one`` (a register) is high while fewer than ``depth - 1`` are in flight: the room
a sender has if one more beat, whose ``enter`` it registers a cycle late, counts already;
``room_after_one_next`` (combinational) the value it takes at the next edge.

Timing: the count is kept in a thermometer code (bit i: more than i in flight), so a change
of -2..+1 is a shift by a select per bit, and ``room_next`` is one such select: no carry
chain between ``enter`` and the registers.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.stages import copy_register, thermometer_step

__all__ = ["Credits"]


class Credits(wiring.Component):
    def __init__(self, depth: int, *, room_copies: int = 0):
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        self.depth = depth
        self._copies = room_copies
        super().__init__(
            {
                "enter": In(1),
                "freed": In(1),
                "refund": In(1),
                "room": Out(1, init=1),
                "room_next": Out(1),
                "room_after_one": Out(1),
                "room_after_one_next": Out(1),
                "idle": Out(1, init=1),
                "room_copies": Out(max(1, room_copies), init=(1 << max(1, room_copies)) - 1),
                "enter_copies": In(max(1, room_copies)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        more = Signal(depth, name="more")  # more[i]: more than i in flight
        gone = Signal(2)  # beats leaving the count (freed, refund)
        m.d.comb += gone.eq(self.freed + self.refund)
        after = thermometer_step(m, more, self.enter, gone, "more_next")
        m.d.comb += [
            self.room_next.eq(~after[depth - 1]),
            self.room_after_one.eq(~more[depth - 2] if depth > 1 else 0),
            self.room_after_one_next.eq(~after[depth - 2] if depth > 1 else 0),
        ]
        # kept apart from the copies a sender makes of room_next (synthesis would merge them)
        room = copy_register(1, name="room", init=1)
        m.d.comb += self.room.eq(room)
        # room_next with copy i's own enter: the top bit of the count's step (see
        # thermometer_step) after enter_copies[i] and gone
        below = more[depth - 2] if depth > 1 else 1
        for i in range(self._copies):
            copy = copy_register(1, name=f"room_copy{i}", init=1)
            m.d.comb += self.room_copies[i].eq(copy)
            # (an If, not a Mux: a simulator's unknown enter then counts as none, as in
            # thermometer_step, rather than sticking in the copy)
            with m.If(self.enter_copies[i]):
                m.d.sync += copy.eq(~Mux(gone == 0, below, Mux(gone == 1, more[depth - 1], 0)))
            with m.Else():
                m.d.sync += copy.eq(~Mux(gone == 0, more[depth - 1], 0))
        m.d.sync += [
            more.eq(after),
            room.eq(self.room_next),
            self.idle.eq(~after[0]),
        ]
        return m
