"""A multiplier with registered operands and a registered product, which on ECP5 is one
MULT18X18D with its own input and output registers.

Contract:

* ``p`` at cycle t + 2 is ``a * b`` of cycle t (``latency`` 2), one product per cycle, no
  enable; the registers reset to 0 with the domain. ``p`` has the shape Amaranth gives
  ``a * b``.
* Operands of any width; on ECP5 those of at most 18 bits (signed or unsigned: a signed
  operand is sign-extended, an unsigned one zero-extended, and the DSP told which) use one
  MULT18X18D, wider ones the generic form (Yosys then builds the multiply).
* ``dsp=False``: the generic form on every platform (Yosys builds the product from LUTs
  where the synthesis flow keeps DSP blocks for others: ``gen.synth``'s ``datapath`` mode).
* Elaborated for a platform whose ``family`` is ``"ecp5"``, it instantiates MULT18X18D with
  ``REG_INPUTA/B`` and ``REG_OUTPUT`` on CLK0/CE0/RST0 (clock and reset of the ``sync``
  domain, CE0 high, synchronous reset): nextpnr then times the multiply inside the block (a
  register-to-register path) and the product leaves from a register (0.7 ns clock-to-out)
  instead of 3.9 ns of combinational multiply between two fabric registers. Elsewhere (and
  for simulation) it is the same two register stages around ``*``. ``fpga/cells/`` has a
  behavioural model of MULT18X18D for simulating the ECP5 netlist.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Multiplier"]

_WIDTH = 18  # MULT18X18D operands


def is_ecp5(platform) -> bool:
    return getattr(platform, "family", None) == "ecp5"


class Multiplier(wiring.Component):
    latency = 2

    def __init__(self, a_shape, b_shape, *, dsp: bool = True):
        self._dsp = dsp
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        for name, shape in (("a_shape", a_shape), ("b_shape", b_shape)):
            if shape.width < 1:
                self._MustUse__silence = True  # a refused component is not an unused one
                raise ValueError(f"{name}={shape} is out of range: an operand has >= 1 bit")
        product = (Signal(a_shape) * Signal(b_shape)).shape()
        super().__init__({"a": In(a_shape), "b": In(b_shape), "p": Out(product)})

    def elaborate(self, platform):
        m = Module()
        fits = max(self.a.shape().width, self.b.shape().width) <= _WIDTH
        if not (is_ecp5(platform) and fits and self._dsp):
            a_q = Signal.like(self.a, name="a_q")
            b_q = Signal.like(self.b, name="b_q")
            m.d.sync += [a_q.eq(self.a), b_q.eq(self.b), self.p.eq(a_q * b_q)]
            return m

        a = Signal(_WIDTH)
        b = Signal(_WIDTH)
        p = Signal(2 * _WIDTH)
        m.d.comb += [a.eq(self.a), b.eq(self.b)]  # extended by their signedness
        m.d.comb += self.p.eq(p[: self.p.shape().width])
        registered = {
            f"p_REG_{reg}_{what}": value
            for reg in ("INPUTA", "INPUTB", "OUTPUT")
            for what, value in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))
        }
        unused = {
            f"p_REG_{reg}_{what}": value
            for reg in ("INPUTC", "PIPELINE")
            for what, value in (("CLK", "NONE"), ("CE", "CE0"), ("RST", "RST0"))
        }
        zero = Const(0, 1)
        m.submodules.dsp = Instance(
            "MULT18X18D",
            **registered,
            **unused,
            p_CLK0_DIV="ENABLED",
            p_CLK1_DIV="ENABLED",
            p_CLK2_DIV="ENABLED",
            p_CLK3_DIV="ENABLED",
            p_HIGHSPEED_CLK="NONE",
            p_GSR="DISABLED",
            p_CAS_MATCH_REG="FALSE",
            p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED",
            p_RESETMODE="SYNC",
            **{f"i_A{i}": a[i] for i in range(_WIDTH)},
            **{f"i_B{i}": b[i] for i in range(_WIDTH)},
            **{f"i_C{i}": zero for i in range(_WIDTH)},
            i_SIGNEDA=Const(int(self.a.shape().signed), 1),
            i_SIGNEDB=Const(int(self.b.shape().signed), 1),
            i_SOURCEA=zero,
            i_SOURCEB=zero,
            i_CLK0=ClockSignal("sync"),
            i_CE0=Const(1, 1),
            i_RST0=ResetSignal("sync", allow_reset_less=True),
            # CLK1-3, CE1-3, RST1-3 and the shift-chain inputs SRIA/SRIB stay unconnected, as
            # Yosys leaves them (the shift inputs are cascade pins the fabric cannot reach)
            **{f"o_P{i}": p[i] for i in range(2 * _WIDTH)},
        )
        return m
