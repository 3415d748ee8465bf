"""A table in block RAM with registered reads (a ROM), which on ECP5 is a column of DP16KD
blocks holding the table in their initial contents and reading through their output registers.

Contract:

* ``ports`` read ports (1 or 2): ``r_data[i]`` at t + 2 (``latency``) is ``init[r_addr[i]]`` of
  t: the address register, then the output register; one read per port and cycle, no enable.
  An address at or past ``len(init)`` reads 0.
* Elaborated for a platform whose ``family`` is ``"ecp5"`` (and a table of at most 1024
  words): DP16KD blocks at width 18, side by side (one per 18 bits of the word), both ports
  reading, the table in ``INITVAL_00 .. 3F`` (16 words per parameter, in 20-bit slots), with
  ``REGMODE = "OUTREG"`` on both ports: a read leaves the block from its output register (0.96
  ns clock-to-out at speed 6, not 5.8 ns; Yosys maps a table to DP16KD without it). Elsewhere,
  and for a deeper table, ``lib.memory.Memory`` with synchronous read ports and an output
  register each. ``fpga/cells/dp16kd.v`` simulates the ECP5 form.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.multiplier import is_ecp5

__all__ = ["BlockRom"]

#: words of a DP16KD at width 18, and the bits of one
_DEPTH, _WIDTH = 1024, 18


class BlockRom(wiring.Component):
    latency = 2

    def __init__(self, shape, init, *, ports: int = 1):
        init = [int(v) for v in init]
        width = Shape.cast(shape).width
        problems = []
        if not init:
            problems.append("init is empty: allowed a table of >= 1 words")
        if ports not in (1, 2):
            problems.append(f"ports={ports} is out of range: allowed 1 or 2")
        bad = [v for v in init if not 0 <= v < 1 << width]
        if bad:
            problems.append(f"init holds {bad[0]}: allowed [0, {1 << width}) ({width} bits)")
        if problems:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError("; ".join(problems))
        self._shape, self._init, self._ports = shape, init, ports
        super().__init__(
            {
                "r_addr": In(range(max(2, len(init)))).array(ports),
                "r_data": Out(shape).array(ports),
            }
        )

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        if not (is_ecp5(platform) and len(self._init) <= _DEPTH):
            depth = 1 << len(self.r_addr[0])  # every address: past the table, zeros
            init = self._init + [0] * (depth - len(self._init))
            table = memory.Memory(shape=self._shape, depth=depth, init=init)
            m.submodules.table = table
            for i in range(self._ports):
                read = table.read_port()
                data = Signal(self._shape, name=f"data{i}", reset_less=True)
                m.d.comb += read.addr.eq(self.r_addr[i])
                m.d.sync += data.eq(read.data)
                m.d.comb += self.r_data[i].eq(data)
            return m

        zero = Const(0, 1)
        for column, first in enumerate(range(0, width, _WIDTH)):
            bits = min(_WIDTH, width - first)
            # the column's share of each word, word w in 20-bit slot w % 16 of parameter w // 16
            initval = [0] * 64
            for w, value in enumerate(self._init):
                initval[w // 16] |= ((value >> first) & ((1 << bits) - 1)) << (20 * (w % 16))
            ports = {}
            for i, side in enumerate("AB"):
                if i < self._ports:
                    addr = Signal(14, name=f"ad{side.lower()}{column}")
                    m.d.comb += addr.eq(self.r_addr[i] << 4)  # x18: the word address is AD[13:4]
                    dout = Signal(18, name=f"do{side.lower()}{column}")
                    m.d.comb += self.r_data[i][first : first + bits].eq(dout[:bits])
                    ports.update({f"o_DO{side}{b}": dout[b] for b in range(18)})
                else:
                    addr = Const(0, 14)
                ports.update(
                    {
                        f"p_DATA_WIDTH_{side}": _WIDTH,
                        f"p_REGMODE_{side}": "OUTREG",
                        f"p_CSDECODE_{side}": "0b000",
                        f"p_WRITEMODE_{side}": "NORMAL",
                        f"i_CLK{side}": ClockSignal("sync"),
                        f"i_CE{side}": Const(1, 1),
                        f"i_OCE{side}": Const(1, 1),
                        f"i_WE{side}": zero,
                        f"i_RST{side}": zero,
                        **{f"i_CS{side}{b}": zero for b in range(3)},
                        **{f"i_AD{side}{b}": addr[b] for b in range(14)},
                        **{f"i_DI{side}{b}": zero for b in range(18)},
                    }
                )
            m.submodules[f"rom{column}"] = Instance(
                "DP16KD",
                p_RESETMODE="SYNC",
                p_ASYNC_RESET_RELEASE="SYNC",
                p_GSR="DISABLED",
                **{f"p_INITVAL_{k:02X}": Const(v, 320) for k, v in enumerate(initval)},
                **ports,
            )
        return m
