"""A simple dual-port RAM with a registered read, which on ECP5 is a column of DP16KD blocks
with their output registers.

Contract:

* Write: ``w_en``, ``w_addr``, ``w_data`` at cycle t store the word at the edge ending t.
* Read: ``r_data`` at t + 2 (``latency``) is the word at ``r_addr`` of t: the address
  register, then the output register; one read per cycle, no enable. A read of the address
  written in the same cycle returns the old word (no write-through: callers forward).
* ``input_stages=n`` (0 .. 3): the write (enable, address, data) and the read address pass
  n registers of this memory first, so they can come from logic and travel: the write lands
  n cycles later and the read takes 2 + n cycles (``latency``). On ECP5 the last stage's
  address and write-enable registers are duplicated, one copy per ``group`` DP16KD columns,
  and with three stages the middle one per ``4 * group`` columns (a fanout tree: the placer
  puts each copy next to its columns), so that no address net spans a wide memory's block
  RAMs, which the placer may scatter along their rows. Every stage register is a
  ``copy_register``: memories written with the same address or data (the banks of a level
  buffer, the buffers of the levels) keep their own stages after synthesis.
* The read data is not reset (it is meaningless until a read of written data).
* Elaborated for a platform whose ``family`` is ``"ecp5"``: a grid of DP16KD blocks, port A
  writing and port B reading, in the port width (512 x 36, the pseudo-dual-port form; 1024 x
  18, 2048 x 9, 4096 x 4, 8192 x 2, 16384 x 1) that takes the fewest blocks
  (``dp16kd_grid``; a tie goes to fewer segments, then not to x36): columns side by side,
  each holding some bits of every word, and where that saves blocks segments stacked, each
  holding the port's depth of words (a 5380 x 64 band window bank: three segments of eight
  2048 x 9 columns, 24 blocks, instead of 32 columns of 8192 x 2; a segment past the first
  counts as ``SEGMENT_COST`` more blocks). A segment's write enable is decoded from the
  address's high bits (a register of its own per group of columns with input stages, else a
  LUT), its read data selected by them, delayed with the read (a LUT level or two after the
  output registers). Each block has ``REGMODE_B = "OUTREG"`` (at x36 both ports'): the read
  leaves the block from its output register (0.96 ns clock-to-out instead of 5.8 ns at
  speed 6; Yosys's own mapping leaves the block unregistered and keeps the register in the
  fabric). For the generator's portable Verilog (``family`` ``"generic"``) the module
  ``VERILOG`` (the same behaviour). Elsewhere (the Amaranth simulator), and on ECP5 for a
  memory deeper than one column (16384 words: an ASIC-sized buffer), ``lib.memory.Memory``
  with a read port and an output register. ``fpga/cells/dp16kd.v`` models DP16KD for
  simulating the ECP5 netlist.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from rtl.lib.multiplier import is_ecp5
from rtl.lib.stages import copy_register

__all__ = [
    "MAX_DEPTH",
    "VERILOG",
    "VERILOG_MODULE",
    "BlockRam",
    "dp16kd_blocks",
    "dp16kd_columns",
    "dp16kd_grid",
    "dp16kd_width",
    "is_generic",
]

#: the memory as a Verilog module, for the generic target: the same behaviour as the
#: ``lib.memory.Memory`` below (every word 0 at start, the read of the word before a write in
#: the same cycle, two registers), without a word-by-word initializer in the netlist, which
#: made the generator's time grow with the buffers (minutes for ``detr``)
VERILOG_MODULE = "defa_block_ram"
VERILOG = """\
module defa_block_ram #(parameter WIDTH = 1, parameter DEPTH = 2, parameter ABITS = 1) (
  input wire clk,
  input wire w_en,
  input wire [ABITS-1:0] w_addr,
  input wire [WIDTH-1:0] w_data,
  input wire [ABITS-1:0] r_addr,
  output reg [WIDTH-1:0] r_data
);
  reg [WIDTH-1:0] words [0:DEPTH-1];
  reg [WIDTH-1:0] read_word = {WIDTH{1'b0}};
  integer i;
  initial begin
    for (i = 0; i < DEPTH; i = i + 1) words[i] = {WIDTH{1'b0}};
    r_data = {WIDTH{1'b0}};
  end
  always @(posedge clk) begin
    if (w_en) words[w_addr] <= w_data;
    read_word <= words[r_addr];
    r_data <= read_word;
  end
endmodule
"""


def is_generic(platform) -> bool:
    """Elaborated for the generator's portable Verilog (``gen.elaborate.TARGETS``)."""
    return getattr(platform, "family", None) == "generic"


#: DP16KD port widths by the depth they give, shallowest first
_WIDTHS = ((1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
#: the pseudo-dual-port form (PDPW16KD, as Yosys and nextpnr write it: a DP16KD with both
#: ports 36 wide, port A writing {DIB, DIA}, port B reading {DOB, DOA})
_WIDE = (512, 36)
#: the low address bits a port of that width leaves unused (x18: two are byte enables, x36
#: four)
_LOW_BITS = {36: 5, 18: 4, 9: 3, 4: 2, 2: 1, 1: 0}
MAX_DEPTH = _WIDTHS[-1][0]


def dp16kd_width(depth: int) -> int:
    """The widest DP16KD port that holds ``depth`` words."""
    for deepest, width in _WIDTHS:
        if depth <= deepest:
            return width
    raise ValueError(f"depth={depth} is out of range: a DP16KD column holds 1..{MAX_DEPTH} words")


#: what a segment past the first costs, as a share of the grid's blocks: every block's
#: outputs are routed into a read multiplexer one input wider (level 0's band bank at
#: 800x1333: 24 blocks in 3 segments of 2048 x 9, not 22 in 11 segments of 512 x 36, whose
#: 11-input multiplexers gather 792 block outputs per bank; with those the router diverged)
SEGMENT_COST = 0.05


def dp16kd_grid(width: int, depth: int) -> tuple[int, int, int]:
    """``(segments, port, columns)`` of a ``BlockRam`` of ``width``-bit words, ``depth`` deep,
    on ECP5: the DP16KD port width (36 the pseudo-dual-port form) whose grid (``segments``
    stacked, each ``port``'s depth of words, times ``columns`` of ``port`` bits) takes the
    fewest blocks, each segment past the first counted as ``SEGMENT_COST`` of them more; then
    the fewest segments, a true dual-port width before x36; ``(0, 0, 0)`` for one deeper than
    a column (a ``lib.memory.Memory``)."""
    if depth > MAX_DEPTH:
        return 0, 0, 0
    grids = [(-(-depth // deepest), port, -(-width // port)) for deepest, port in (*_WIDTHS, _WIDE)]
    return min(
        grids, key=lambda grid: (grid[0] * grid[2] * (1 + SEGMENT_COST * (grid[0] - 1)), grid[0])
    )


def dp16kd_columns(width: int, depth: int) -> int:
    """The DP16KD columns side by side in each segment of a ``BlockRam`` of ``width``-bit
    words, ``depth`` deep, on ECP5 (0 for one deeper than a column: that one is a
    ``lib.memory.Memory``)."""
    return dp16kd_grid(width, depth)[2]


def dp16kd_blocks(width: int, depth: int) -> int:
    """The DP16KD blocks of a ``BlockRam`` of ``width``-bit words, ``depth`` deep, on ECP5."""
    segments, _, columns = dp16kd_grid(width, depth)
    return segments * columns


class BlockRam(wiring.Component):
    latency = 2

    def __init__(self, shape, depth: int, *, input_stages: int = 0, group: int = 4):
        for name, value, lo, hi in (
            ("depth", depth, 1, None),
            ("group", group, 1, None),
            ("input_stages", input_stages, 0, 3),
        ):
            if value < lo or (hi is not None and value > hi):
                self._MustUse__silence = True  # a refused component is not an unused one
                allowed = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise ValueError(f"{name}={value} is out of range: allowed {allowed}")
        self._shape, self.depth = shape, depth
        self._stages, self._group = input_stages, group
        self.latency = BlockRam.latency + input_stages
        addr = range(max(2, depth))
        super().__init__(
            {
                "w_en": In(1),
                "w_addr": In(addr),
                "w_data": In(shape),
                "r_addr": In(addr),
                "r_data": Out(shape),
            }
        )

    def elaborate(self, platform):
        m = Module()
        w_en, w_addr, w_data, r_addr = self.w_en, self.w_addr, self.w_data, self.r_addr
        # Every stage register is a copy kept by synthesis: merged with the stages of memories
        # fed the same (a level buffer's banks, the levels' buffers), one register would drive
        # block RAMs all over the chip.
        width = Shape.cast(self._shape).width
        addr = self.w_addr.shape()
        ecp5 = is_ecp5(platform) and self.depth <= MAX_DEPTH
        # On ECP5 the last stage's enable and addresses (and with three stages the middle
        # one's) are copied per group of columns below; the stages before, and elsewhere all,
        # are single registers here.
        copied = (2 if self._stages == 3 else min(self._stages, 1)) if ecp5 else 0
        shared = self._stages - copied
        for i in range(self._stages):  # the data through every stage
            data = copy_register(width, name=f"w_data_s{i}")
            m.d.sync += data.eq(Value.cast(w_data))
            w_data = data
        for i in range(shared):
            en = copy_register(1, name=f"w_en_s{i}")
            wa = copy_register(addr, name=f"w_addr_s{i}")
            ra = copy_register(addr, name=f"r_addr_s{i}")
            m.d.sync += [en.eq(w_en), wa.eq(w_addr), ra.eq(r_addr)]
            w_en, w_addr, r_addr = en, wa, ra
        if is_generic(platform):  # the Verilog module below: emitted in no time
            r_data = Signal(width)
            m.d.comb += self.r_data.eq(r_data)
            m.submodules.storage = Instance(
                VERILOG_MODULE,
                p_WIDTH=width,
                p_DEPTH=self.depth,
                p_ABITS=len(w_addr),
                i_clk=ClockSignal("sync"),
                i_w_en=w_en,
                i_w_addr=w_addr,
                i_w_data=w_data,
                i_r_addr=r_addr,
                o_r_data=r_data,
            )
            return m
        if not ecp5:
            storage = memory.Memory(shape=self._shape, depth=self.depth, init=[])
            m.submodules.storage = storage
            write = storage.write_port()
            read = storage.read_port()  # not transparent: a same-cycle read gets the old word
            r_data = Signal(self._shape, reset_less=True)
            m.d.comb += [
                write.addr.eq(w_addr),
                write.data.eq(w_data),
                write.en.eq(w_en),
                read.addr.eq(r_addr),
                self.r_data.eq(r_data),
            ]
            m.d.sync += r_data.eq(read.data)
            return m

        segments, port, columns = dp16kd_grid(width, self.depth)
        low = _LOW_BITS[port]
        abits = 14 - low  # a segment's word address
        w_bits = Signal(width)
        m.d.comb += w_bits.eq(w_data)
        copies = {}

        def copy(key, name, source):
            """The stage registers (enable, write and read address) ``name`` for ``key``,
            loaded from ``source``: one set per key."""
            if key not in copies:
                regs = tuple(
                    copy_register(shape, name=f"{kind}{name}")
                    for kind, shape in (("w_en", 1), ("w_addr", addr), ("r_addr", addr))
                )
                m.d.sync += [reg.eq(value) for reg, value in zip(regs, source, strict=True)]
                copies[key] = regs
            return copies[key]

        def segment_of(address):
            return address[abits:]

        def addresses(column, segment):
            """The write enable (for this segment), write and read address of a column: with
            input stages, the last stage's registers, one copy per group of columns (loaded
            with three stages from the middle stage's copy for its four groups)."""
            if not self._stages:
                if segments == 1:
                    return w_en, w_addr, r_addr
                return w_en & (segment_of(w_addr) == segment), w_addr, r_addr
            g = column // self._group
            source = (w_en, w_addr, r_addr)
            if self._stages >= 3:
                source = copy(("mid", g // 4), f"_m{g // 4}", source)
            column_w_en, column_w_addr, column_r_addr = copy(g, str(g), source)
            if segments == 1:
                return column_w_en, column_w_addr, column_r_addr
            key = ("en", g, segment)
            if key not in copies:  # the segment's enable, decoded into a register of its own
                copies[key] = copy_register(1, name=f"w_en{g}_{segment}")
                m.d.sync += copies[key].eq(source[0] & (segment_of(source[1]) == segment))
            return copies[key], column_w_addr, column_r_addr

        zero, one = Const(0, 1), Const(1, 1)

        def address(prefix, addr):
            bits = {f"i_{prefix}{i}": zero for i in range(low)}
            if port >= 18 and prefix == "ADA":  # the byte enables of a x18 or x36 write
                bits.update({f"i_ADA{i}": one for i in range(port // 9)})
            padded = Signal(abits, name=f"{prefix.lower()}_padded")
            m.d.comb += padded.eq(addr[:abits])
            bits.update({f"i_{prefix}{low + i}": padded[i] for i in range(abits)})
            return bits

        outputs = [Signal(width, name=f"r_data{segment}") for segment in range(segments)]
        if segments == 1:
            m.d.comb += self.r_data.eq(outputs[0])
        else:
            # the read's segment (of the address the blocks see: column 0's), along the
            # blocks' address and output registers
            selects = [Signal(range(segments), name=f"r_segment{i}") for i in range(2)]
            block_r_addr = addresses(0, 0)[2]
            m.d.sync += [selects[0].eq(segment_of(block_r_addr)), selects[1].eq(selects[0])]
            with m.Switch(selects[1]):
                for segment in range(segments):
                    with m.Case(segment):
                        m.d.comb += self.r_data.eq(outputs[segment])
        for segment in range(segments):
            for column, first in enumerate(range(0, width, port)):
                bits = range(first, min(width, first + port))
                column_w_en, column_w_addr, column_r_addr = addresses(column, segment)

                def din(i, first=first, bits=bits):
                    """Bit ``i`` of the column's write data (a constant 0 past the word)."""
                    return w_bits[first + i] if i < len(bits) else zero

                dout = Signal(36, name=f"dout{segment * columns + column}")
                m.d.comb += outputs[segment][first : first + len(bits)].eq(dout[: len(bits)])
                m.submodules[f"bram{segment * columns + column}"] = Instance(
                    "DP16KD",
                    p_DATA_WIDTH_A=port,
                    p_DATA_WIDTH_B=port,
                    p_REGMODE_A="OUTREG" if port == 36 else "NOREG",
                    p_REGMODE_B="OUTREG",
                    p_RESETMODE="SYNC",
                    p_ASYNC_RESET_RELEASE="SYNC",
                    p_CSDECODE_A="0b000",
                    p_CSDECODE_B="0b000",
                    p_WRITEMODE_A="NORMAL",
                    p_WRITEMODE_B="NORMAL",
                    p_GSR="DISABLED",
                    i_CLKA=ClockSignal("sync"),
                    i_CEA=one,
                    i_OCEA=one,
                    i_WEA=column_w_en,
                    i_RSTA=zero,
                    **{f"i_CSA{i}": zero for i in range(3)},
                    **address("ADA", column_w_addr),
                    **{f"i_DIA{i}": din(i) for i in range(18)},
                    i_CLKB=ClockSignal("sync"),
                    i_CEB=one,
                    i_OCEB=one,
                    i_WEB=zero,
                    i_RSTB=zero,
                    **{f"i_CSB{i}": zero for i in range(3)},
                    **address("ADB", column_r_addr),
                    **{f"i_DIB{i}": din(18 + i) if port == 36 else zero for i in range(18)},
                    **({f"o_DOA{i}": dout[i] for i in range(18)} if port == 36 else {}),
                    **{f"o_DOB{i}": dout[18 + i if port == 36 else i] for i in range(18)},
                )
        return m
