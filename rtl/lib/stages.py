"""Pipeline registers that advance together, and balanced reduction trees with a register
after every level: the building blocks that keep every stage to a short path (one adder or
one compare-and-select per stage: two chained carry chains do not fit an ECP5 cycle at
150 MHz)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal

__all__ = ["COPY_ATTR", "Stages", "copy_register", "thermometer_step", "tree_stages"]

#: The attribute that marks a register as a copy that synthesis must keep (``gen.synth``
#: turns it into Yosys's ``keep`` on the register's flip-flops). Without it Yosys merges
#: flip-flops bit by bit wherever their input and reset bit agree, so copies made to keep
#: nets local (a memory's address per group of block RAMs, a level's own copy of a CSR)
#: fold back into one flip-flop driving the whole chip.
COPY_ATTR = "defa_copy"


def copy_register(shape, name: str, init: int = 0) -> Signal:
    """A register that synthesis keeps apart from every register with the same input (a copy
    made for fanout or locality); assign it in a sync domain. ``init``: the reset value (an
    integer; layouts reset to zero)."""
    extra = {"init": init} if init else {}
    return Signal(shape, name=name, attrs={COPY_ATTR: 1}, **extra)


def thermometer_step(m: Module, more: Signal, up, down, name: str) -> Signal:
    """The next value of a count kept in a thermometer code (``more[i]``: the count exceeds
    i), after ``up`` (0 or 1) and ``down`` (0, 1 or 2, a 2-bit value) in this cycle: a select
    per bit among its neighbours, no carry chain. The count must stay in [0, len(more)]."""
    n = len(more)
    after = Signal(n, name=name)

    def bit(i):
        return 1 if i < 0 else (more[i] if i < n else 0)

    for i in range(n):
        with m.If(up):
            m.d.comb += after[i].eq(Mux(down == 0, bit(i - 1), Mux(down == 1, bit(i), bit(i + 1))))
        with m.Else():
            m.d.comb += after[i].eq(Mux(down == 0, bit(i), Mux(down == 1, bit(i + 1), bit(i + 2))))
    return after


def _tree_depth(n: int) -> int:
    return max(0, (n - 1).bit_length())


def tree_stages(n: int) -> int:
    """Register stages of a reduction tree over n inputs: one per level (at least 1)."""
    return max(1, _tree_depth(n))


class Stages:
    """Registers that advance together when ``advance`` is high, or on every cycle (no enable)
    when it is None."""

    #: the widest compare ``max_tree`` makes in one carry chain
    SPLIT = 8

    def __init__(self, m: Module, advance=None):
        self.m, self.advance = m, advance

    def reg(self, value, shape, name: str) -> Signal:
        r = Signal(shape, name=name)
        if self.advance is None:
            self.m.d.sync += r.eq(value)
        else:
            with self.m.If(self.advance):
                self.m.d.sync += r.eq(value)
        return r

    def delay(self, sig: Signal, cycles: int, name: str) -> Signal:
        for i in range(cycles):
            sig = self.reg(sig, sig.shape(), f"{name}_d{i}")
        return sig

    def tree(self, values, op, shape, name: str):
        """Reduce ``values`` with ``op`` in a balanced tree, a register after every level;
        returns (result, register stages)."""
        level, depth, stages = list(values), 0, 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level) - 1, 2):
                w = Signal(shape, name=f"{name}{depth}_{i // 2}")
                self.m.d.comb += w.eq(op(level[i], level[i + 1]))
                nxt.append(w)
            if len(level) % 2:
                nxt.append(level[-1])
            level, depth = nxt, depth + 1
            level = [self.reg(v, shape, f"{name}{depth}r{j}") for j, v in enumerate(level)]
            stages += 1
        if stages == 0:
            level, stages = [self.reg(level[0], shape, f"{name}r")], 1
        return level[0], stages

    def max_tree(self, values, shape, name: str):
        """The largest of ``values`` (signed or unsigned as ``shape``) by a balanced tree whose
        every level takes two stages: the compare registered beside its operands, then the
        select; returns (result, register stages) = (max, ``2 * tree_stages(len(values))``).
        A compare wider than ``SPLIT`` bits is two half-width compares and the high halves'
        equality, registered, which the select combines (one carry chain of half the width)."""
        shape = Shape.cast(shape)
        level, stages = list(values), 0
        while len(level) > 1:
            pairs = []
            for i in range(0, len(level) - 1, 2):
                a, b = level[i], level[i + 1]
                pair = f"{name}{stages}_{i // 2}"
                if shape.width > self.SPLIT:
                    half = shape.width // 2
                    # the high halves in the shape's signedness, the low halves unsigned
                    a_hi, b_hi = a[half:], b[half:]
                    if shape.signed:
                        a_hi, b_hi = a_hi.as_signed(), b_hi.as_signed()
                    hi_gt = self.reg(a_hi > b_hi, 1, f"{pair}_hi_gt")
                    hi_eq = self.reg(a_hi == b_hi, 1, f"{pair}_hi_eq")
                    lo_gt = self.reg(a[:half] > b[:half], 1, f"{pair}_lo_gt")
                    greater = hi_gt | (hi_eq & lo_gt)
                else:
                    greater = self.reg(a > b, 1, f"{pair}_gt")
                a, b = self.reg(a, shape, f"{pair}_a"), self.reg(b, shape, f"{pair}_b")
                pairs.append(self.reg(Mux(greater, a, b), shape, pair))
            if len(level) % 2:
                pairs.append(self.delay(level[-1], 2, f"{name}{stages}_odd"))
            level, stages = pairs, stages + 2
        if not stages:
            level, stages = [self.delay(level[0], 2, name)], 2
        return level[0], stages
