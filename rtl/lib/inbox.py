"""Inbox: the receiving end of a registered crossing between blocks, and its signature.

A crossing (``crossing(shape, group)``) carries ``valid`` and ``payload`` from the sender's
registers to the receiver, and ``credit`` back from the receiver's register: no combinational
path runs between the two blocks in either direction, so they may sit far apart on the chip.
``valid`` is ``valid_copies_of(shape, group)`` equal bits, kept registers of the sender
(``send``): one for the receiver's control and one per group of its storage (the inbox's
``address_group``), so no single net reaches every write enable of a wide inbox.

Contract of ``Inbox(shape, depth)``:

* Every beat with ``link.valid`` is stored: the sender must never have more than ``depth``
  beats in flight (it counts them with ``Credits``). Nothing checks for room here.
* ``out`` presents the oldest beat from an output register two cycles after its write (the
  cycle ``link.valid`` is high), in order; the next one follows the cycle after the previous
  is taken. With ``registered_output=False`` the same timing, but ``out.payload`` is the
  storage's read (combinational, through one select per slice from registers of the slice):
  for a wide beat the consumer registers, the output register's load enable (a net to every
  bit) goes away, and the consumer's ``ready`` reaches one register per slice (a copy of
  "taken"): each slice advances its read pointer a cycle later and reads meanwhile from the
  pointer's next value; the count of stored beats takes the take a cycle late too, and
  ``out.valid`` is set a cycle ahead from the count's next value and the take (the same bit
  every cycle): the take reaches a select per valid register, not every bit of the count.
* ``link.credit`` pulses (a register) the cycle after a beat leaves ``out``: at the sender
  the slot is free again two cycles after the beat was taken.
* ``taken`` (combinational) pulses in the cycle a beat leaves ``out``, for a local credit count.
* ``valid_copies=n``: ``valid_copies`` holds n more registers equal to ``out.valid`` (kept),
  for a consumer that decides in several places at once (the aggregator's join); it drives
  ``ready_copies`` (n bits, each equal to ``out.ready`` in every cycle), and copy k follows
  ``ready_copies[k]`` alone: each place's decision and the copies it reads stay together.
* ``slice_takes=True`` (with ``valid_copies`` and ``registered_output=False``): the last
  ``slices_of(shape)`` copies belong to the storage's slices: slice k advances its read
  pointer on its copy's own take (``valid_copies[n - slices + k] & ready_copies[n - slices +
  k]``), not on ``taken``, so the consumer's decision reaches each slice from a place of its
  own.
* ``address_group=b`` (<= ``SLICE_BITS``): each slice's storage is memories of b bits, each
  with its own copies of the write and read pointers (and of the take, without output
  register): a LUT RAM's address reaches b/4 cells, not 16, for storage whose bits feed
  consumers spread far apart (the sampler's lanes, the aggregator's channels).
* ``early_valid=True`` (for a sender inside the same block, ``CreditQueue``): ``link.valid``
  (every bit equal) comes a cycle before its payload and is registered here, one copy per
  slice of the storage and one for the control; otherwise the same.
* ``slice_ready=True`` (registered output): the consumer drives ``ready_slices``, one bit per
  storage slice, each equal to ``out.ready`` in every cycle (its own registers, say): slice k's
  output register and its copy of ``out.valid`` follow bit k, so no one net reaches every
  slice's load enable.
* ``relay=n`` (for a crossing that spans the chip): ``link.valid`` (every copy) and
  ``link.payload`` pass n more registers before the storage, and ``link.credit`` n more on
  its way back, so each long wire is cut n times (placement puts the relays between the two
  ends): every time above is n cycles later, a credit 2n cycles later at the sender.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.stages import copy_register, thermometer_step

__all__ = [
    "CREDIT_RETURN",
    "CROSSING_LATENCY",
    "SLICE_BITS",
    "Inbox",
    "crossing",
    "send",
    "slices_of",
    "valid_copies_of",
]

#: bits of the storage that share one copy of the read and write pointers
SLICE_BITS = 64
#: cycles from a sender's decision to send until the beat is readable at ``out`` (the send
#: register, the write, the output register; without relays)
CROSSING_LATENCY = 3
#: cycles from a beat's take at ``out`` until its credit is free at the sender again
CREDIT_RETURN = 2


def slices_of(shape) -> int:
    """Slices of ``SLICE_BITS`` a word of ``shape`` takes in an inbox's storage (and in any
    register loaded per slice beside it)."""
    return -(-Shape.cast(shape).width // SLICE_BITS)


def _groups(shape, group: int) -> list[tuple[int, int, int]]:
    """The storage's groups, in order: (slice, first bit, end bit), ``group`` bits each at most,
    none across a slice's boundary."""
    width = Shape.cast(shape).width
    return [
        (k, low, min(low + group, first + SLICE_BITS, width))
        for k, first in enumerate(range(0, width, SLICE_BITS))
        for low in range(first, min(first + SLICE_BITS, width), group)
    ]


def valid_copies_of(shape, group: int = SLICE_BITS) -> int:
    """Bits of a crossing's ``valid``: one for the receiver's control, one per storage group
    (of ``group`` bits, the receiving inbox's ``address_group``)."""
    return 1 + len(_groups(shape, group))


def crossing(shape, group: int = SLICE_BITS) -> wiring.Signature:
    """A registered crossing from the sender's view: ``valid``/``payload`` out, ``credit`` in;
    ``group``: the receiving inbox's ``address_group``."""
    return wiring.Signature(
        {"valid": Out(valid_copies_of(shape, group)), "payload": Out(shape), "credit": In(1)}
    )


def send(m: Module, link, valid, name: str) -> None:
    """The sender's side of a crossing's ``valid``: ``valid`` (a bit) registered into every
    copy (kept apart by synthesis); the payload is the sender's own register."""
    # one register per copy: the bits of one multi-bit register with equal inputs end up as
    # one flip-flop after synthesis, keep or not
    copies = [copy_register(1, name=f"{name}{i}") for i in range(len(link.valid))]
    m.d.sync += [c.eq(valid) for c in copies]
    m.d.comb += link.valid.eq(Cat(*copies))


class Inbox(wiring.Component):
    def __init__(
        self,
        shape,
        depth: int,
        *,
        registered_output: bool = True,
        early_valid: bool = False,
        valid_copies: int = 0,
        relay: int = 0,
        slice_ready: bool = False,
        slice_takes: bool = False,
        address_group: int = SLICE_BITS,
    ):
        self._registered = registered_output
        self._relay = relay
        self._slice_ready = slice_ready
        self._early = early_valid
        self._copies = valid_copies
        if depth < 1:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"depth={depth} is out of range: allowed >= 1")
        if relay < 0:
            self._MustUse__silence = True
            raise ValueError(f"relay={relay} is out of range: allowed >= 0")
        if slice_takes and (registered_output or valid_copies < slices_of(shape)):
            self._MustUse__silence = True
            raise ValueError(
                f"slice_takes needs registered_output=False and valid_copies >= "
                f"{slices_of(shape)} (one per slice); got registered_output="
                f"{registered_output}, valid_copies={valid_copies}"
            )
        if not 1 <= address_group <= SLICE_BITS:
            self._MustUse__silence = True
            raise ValueError(
                f"address_group={address_group} is out of range: allowed [1, {SLICE_BITS}]"
            )
        self._group = address_group
        self._slice_takes = slice_takes
        self._shape, self.depth = shape, depth
        super().__init__(
            {
                "link": In(crossing(shape, address_group)),
                "out": Out(stream.Signature(shape)),
                "taken": Out(1),
                "valid_copies": Out(max(1, valid_copies)),
                "ready_copies": In(max(1, valid_copies)),
                "ready_slices": In(slices_of(shape)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        # the relays: every register of the crossing's valid kept (one per copy, as the
        # sender's), the payload plainly registered (no enable), the credit likewise
        link_valid_in, credit = self.link.valid, self.link.credit
        link_payload = Value.cast(self.link.payload)
        for i in range(self._relay):
            v = [copy_register(1, name=f"relay_valid{i}_{k}") for k in range(len(link_valid_in))]
            p = Signal(len(link_payload), name=f"relay_payload{i}")
            c = Signal(name=f"relay_credit{i}")
            m.d.sync += [*(vk.eq(link_valid_in[k]) for k, vk in enumerate(v)), p.eq(link_payload)]
            m.d.sync += credit.eq(c)
            link_valid_in, link_payload, credit = Cat(*v), p, c
        depth = self.depth
        size = 1 << max(1, (depth - 1).bit_length())  # each slice's depth: a power of two
        # out.valid: ``valid`` for the logic here, and in registered mode an equal copy that
        # drives the consumer alone (placed by the consumer's logic, not pulled both ways)
        valid = copy_register(1, name="valid")
        valid_out = copy_register(1, name="valid_out") if self._registered else valid
        m.d.comb += self.out.valid.eq(valid_out)
        copies = [copy_register(1, name=f"valid_copy{i}") for i in range(self._copies)]
        m.d.comb += [self.valid_copies[i].eq(c) for i, c in enumerate(copies)]

        def following(pointer):
            """The slot after ``pointer`` (the slots wrap at ``depth``)."""
            return Mux(pointer == depth - 1, 0, pointer + 1)

        # beats in storage (not in the output register), in a thermometer code (see Credits)
        stored = Signal(depth, name="stored")
        free = Signal()  # the output register takes a word this cycle
        load = Signal()  # ... and it is the oldest stored beat: the read pointer advances
        m.d.comb += self.taken.eq(valid & self.out.ready)
        if self._early:
            link_valid = copy_register(1, name="link_valid")
            m.d.sync += link_valid.eq(link_valid_in[0])
        else:
            link_valid = link_valid_in[0]
        m.d.sync += credit.eq(self.taken)
        if self._registered:
            m.d.comb += [
                free.eq(~valid | self.out.ready),
                load.eq(stored[0] & free),
            ]
            with m.If(load):
                m.d.sync += [c.eq(1) for c in (valid, valid_out)]
            with m.Elif(self.out.ready):
                m.d.sync += [c.eq(0) for c in (valid, valid_out)]
            for k, copy in enumerate(copies):  # the same, from the copies' own ready
                ready_k = self.ready_copies[k]
                with m.If(stored[0] & (~copy | ready_k)):
                    m.d.sync += copy.eq(1)
                with m.Elif(ready_k):
                    m.d.sync += copy.eq(0)
            m.d.sync += stored.eq(thermometer_step(m, stored, link_valid, load, "stored_next"))
        else:
            # stored counts the beats written at least a cycle ago (readable), but takes them
            # a cycle late (``took_r``): the take reaches the valid registers' selects, not
            # every bit of the count. The readable count is stored - took_r; valid (and each
            # copy, with its own take) is set a cycle ahead from it.
            arrived = Signal()
            took_r = Signal(name="took_r")
            after = thermometer_step(m, stored, arrived, took_r, "stored_next")
            m.d.comb += load.eq(self.taken)
            m.d.sync += [arrived.eq(link_valid), took_r.eq(self.taken), stored.eq(after)]

            def at_least(n, count, late):
                """count - late >= n (n >= 1) for a thermometer ``count`` and a 0/1 ``late``."""
                above = count[n] if n < depth else 0
                return Mux(late, above, count[n - 1]) if n <= depth else 0

            # (Ifs, as in thermometer_step: a simulator's unknown take counts as none, rather
            # than sticking in a register)
            with m.If(self.taken):
                m.d.sync += valid.eq(after[1] if depth > 1 else 0)
            with m.Else():
                m.d.sync += valid.eq(after[0])
            readable = at_least(1, stored, took_r)  # now
            second = at_least(2, stored, took_r) if depth > 1 else 0
            for k, copy in enumerate(copies):
                with m.If(copy & self.ready_copies[k]):
                    with m.If(arrived):
                        m.d.sync += copy.eq(readable)
                    with m.Else():
                        m.d.sync += copy.eq(second)
                with m.Elif(arrived):
                    m.d.sync += copy.eq(1)
                with m.Else():
                    m.d.sync += copy.eq(readable)

        # The storage in slices of SLICE_BITS (groups of ``address_group`` bits), each with its
        # own copy of the pointers, stepping from its own value (no address net fans out to
        # the whole width; copies kept by synthesis; there is no central pointer). The output
        # register loads whenever it is free (a word read while nothing is stored is never
        # valid), decided per slice from the slice's copy of ``out.valid``: the consumer's
        # ``ready`` reaches one gate per slice, not the whole width.
        payload = Value.cast(self.out.payload)
        all_groups = _groups(self._shape, self._group)
        index = iter(range(len(all_groups)))  # the groups' valid copies, in order
        for k in range(slices_of(self._shape)):
            if self._registered:
                ready_k = self.ready_slices[k] if self._slice_ready else self.out.ready
                valid_k = copy_register(1, name=f"valid{k}")  # equal to out.valid
                # ``load`` decided from the slice's own copies (equal in every cycle): the
                # slice's pointers and valid follow it, not the control's net
                load_k = Signal(name=f"load{k}")
                m.d.comb += load_k.eq(stored[0] & (~valid_k | ready_k))
                with m.If(load_k):
                    m.d.sync += valid_k.eq(1)
                with m.Elif(ready_k):
                    m.d.sync += valid_k.eq(0)
            elif self._slice_takes:
                own = self._copies - slices_of(self._shape) + k
                slice_taken = copies[own] & self.ready_copies[own]
            else:
                slice_taken = self.taken
            # the slice's storage in groups of ``address_group`` bits, each a memory with its
            # own copies of the pointers (one group: the slice's, named as such)
            groups = [(low, high) for j, low, high in all_groups if j == k]
            if self._early:
                # the write enable registered here once per slice (the sender's one register
                # reaches as many copies as slices; a copy per group spread it along the row)
                slice_valid = copy_register(1, name=f"link_valid{k}")
                m.d.sync += slice_valid.eq(link_valid_in[0])
            for g, (low, high) in enumerate(groups):
                tag = f"{k}" if len(groups) == 1 else f"{k}_{g}"
                # the group's own copy of the crossing's valid (its write enable)
                if self._early:  # the slice's register, shared by its groups
                    group_valid = slice_valid
                else:
                    group_valid = link_valid_in[1 + next(index)]
                # LUT RAM (an asynchronous read): never a block RAM, whose read leaves late
                storage = memory.Memory(
                    shape=high - low, depth=size, init=[], attrs={"ram_style": "distributed"}
                )
                m.submodules[f"storage{tag}"] = storage
                write = storage.write_port()
                read = storage.read_port(domain="comb")
                # each copy steps from its own value (equal to the control's in every cycle):
                # no pointer net from the control to every group
                wa = copy_register(range(size), name=f"w_addr{tag}")
                with m.If(group_valid):
                    m.d.sync += wa.eq(following(wa))
                m.d.comb += [
                    write.addr.eq(wa),
                    write.data.eq(link_payload[low:high]),
                    write.en.eq(group_valid),
                ]
                if self._registered:
                    ra = copy_register(range(size), name=f"r_addr{tag}")
                    with m.If(load_k):
                        m.d.sync += ra.eq(following(ra))
                    m.d.comb += read.addr.eq(ra)
                    with m.If(~valid_k | ready_k):
                        m.d.sync += payload[low:high].eq(read.data)
                else:
                    # the group's pointer and its next value, advanced a cycle after a take
                    # by a copy of the slice's take; meanwhile the read comes from the next
                    took = copy_register(1, name=f"took{tag}")
                    ra = copy_register(range(size), name=f"r_addr{tag}")
                    ra1 = copy_register(range(size), name=f"r_next{tag}", init=1 % depth)
                    m.d.sync += took.eq(slice_taken)
                    with m.If(took):
                        m.d.sync += [ra.eq(ra1), ra1.eq(following(ra1))]
                    m.d.comb += read.addr.eq(Mux(took, ra1, ra))
                    m.d.comb += payload[low:high].eq(read.data)
        return m
