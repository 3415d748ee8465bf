"""Credit queue: the output end of a pipeline that never stalls.

Contract: the pipeline asks ``room`` before it lets an item ``enter`` (one per cycle at most);
``room`` is high while fewer than ``depth`` items are in flight, counting those inside the
pipeline and those waiting here, so the queue never overflows however long ``out.ready``
stays low. The pipeline writes each item when it leaves (``w_data``, with ``w_en_next`` high
the cycle before: the queue registers the enable itself, a copy per slice of its storage);
``out`` presents it two cycles later, in order, from an output register. An item's slot is
free again (counted in ``room``) two cycles after it leaves ``out``: with ``depth`` at least the
pipeline's latency (entry to ``out``) plus three, ``room`` never throttles a consumer that
takes an item every cycle. ``idle``: nothing in flight. ``room_copies`` (with
``room_copies=n``): n more registers equal to ``room``, for a pipeline that decides in several
places at once (each copy follows its own ``enter_copies`` bit, see ``Credits``).
``slice_ready=True``: the consumer also drives ``ready_slices``; ``address_group``: the
storage's pointer copies per that many bits (both see ``Inbox``). ``late_enter=True``: the
count takes ``enter`` a cycle late from a register of its own, and ``room`` (and each copy)
is set a cycle ahead from the count's next values and this cycle's ``enter`` (the same bit in
every cycle as an immediate count): ``enter`` reaches a select per room register, not the
count's every bit (for a pipeline whose ``enter`` is decided far from the count).

Timing: the credits make a full check unnecessary, so the storage (an ``Inbox``) takes its
write enable and data straight from registers (``w_data`` should be a register of the
pipeline's last stage, ``w_en_next`` the valid bit entering it): no logic in front of the
wide write, and no enable net across all of it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.credits import Credits
from rtl.lib.inbox import SLICE_BITS, Inbox, slices_of
from rtl.lib.stages import copy_register

__all__ = ["CreditQueue"]


class CreditQueue(wiring.Component):
    def __init__(
        self,
        shape,
        depth: int,
        *,
        room_copies: int = 0,
        slice_ready: bool = False,
        address_group: int = SLICE_BITS,
        late_enter: bool = False,
    ):
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        self._shape, self.depth = shape, depth
        self._copies = room_copies
        self._slice_ready = slice_ready
        self._group = address_group
        self._late = late_enter
        super().__init__(
            {
                "enter": In(1),
                "room": Out(1, init=1),
                "idle": Out(1, init=1),
                "room_copies": Out(max(1, room_copies), init=(1 << max(1, room_copies)) - 1),
                "enter_copies": In(max(1, room_copies)),
                "w_data": In(shape),
                "w_en_next": In(1),
                "out": Out(stream.Signature(shape)),
                "ready_slices": In(slices_of(shape)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.inbox = inbox = Inbox(
            self._shape,
            self.depth,
            early_valid=True,
            slice_ready=self._slice_ready,
            address_group=self._group,
        )
        wiring.connect(m, inbox.out, wiring.flipped(self.out))
        m.d.comb += inbox.ready_slices.eq(self.ready_slices)
        m.d.comb += [
            inbox.link.valid.eq(self.w_en_next.replicate(len(inbox.link.valid))),
            inbox.link.payload.eq(self.w_data),
        ]
        # The local credit count: ``room`` is a register (``idle`` one, or with ``late_enter``
        # two), so nothing but a flip-flop drives the pipeline's decision to let an item enter;
        # the count takes the inbox's registered credit, so the consumer's ``ready`` ends at a
        # register here too.
        copies = 0 if self._late else self._copies  # late: the copies are made here
        m.submodules.credits = credits = Credits(self.depth, room_copies=copies)
        m.d.comb += credits.freed.eq(inbox.link.credit)
        if not self._late:
            m.d.comb += [
                credits.enter.eq(self.enter),
                self.room.eq(credits.room),
                self.room_copies.eq(credits.room_copies),
                credits.enter_copies.eq(self.enter_copies),
                self.idle.eq(credits.idle),
            ]
            return m
        # the count a cycle late; room (and each copy, from its own enter) one ahead of it
        entered = Signal(name="entered")
        m.d.sync += entered.eq(self.enter)
        m.d.comb += [credits.enter.eq(entered), self.idle.eq(credits.idle & ~entered)]
        # (Ifs, not Muxes: a simulator's unknown enter then counts as none)
        room = copy_register(1, name="room", init=1)
        rooms = [(room, self.enter)]
        for k in range(self._copies):
            copy = copy_register(1, name=f"room_copy{k}", init=1)
            m.d.comb += self.room_copies[k].eq(copy)
            rooms.append((copy, self.enter_copies[k]))
        for reg, enter in rooms:
            with m.If(enter):
                m.d.sync += reg.eq(credits.room_after_one_next)
            with m.Else():
                m.d.sync += reg.eq(credits.room_next)
        m.d.comb += self.room.eq(room)
        return m
