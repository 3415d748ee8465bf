"""A projection unit: one of the fused layer's projections (value, offsets, attention logits,
output) as a pipelined int8 dot-product array with per-output-channel requantization.

Contract (the numbers are ``sim.layer``'s, step 3):

* ``rows``: a row of ``n_in`` activation codes arrives as ``chunks = ceil(n_in / lanes)``
  beats of ``lanes`` codes, in order (the last one padded: its codes past ``n_in`` multiply
  weights written as 0). Two rows are held (one filling while the other is projected), so
  a row streams in while the previous one is computed.
* ``out``: each row's ``n_out`` output words in channel order, ``last`` on the row's final
  one: ``y[o] = clip(round_shift((sum_i a[i] * w[i, o] + bias[o]) * mult[o], shift[o]), lo,
  hi)`` (round half up), exact: the products, their sum and the bias in ``acc_bits``.
* Throughput: one output channel every ``chunks`` cycles (``lanes`` products per cycle), so a
  row takes ``n_out * chunks`` cycles; the unit never stalls inside: a channel starts only
  while the output queue has room for its word (credits), so ``out.ready`` low only pauses
  the starts. ``latency``: cycles from a channel's last chunk starting to its word in the
  queue's storage, which presents it two cycles later.
* Weights: word ``o * chunks + k`` of the weight memory (``w_en``/``w_addr``/``w_data``)
  holds ``w[k*lanes : (k+1)*lanes, o]`` (0 past ``n_in``); channel ``o``'s ``bias``,
  ``mult`` and ``shift`` are written at ``c_addr`` o (``c_en``). Write them while the unit
  is idle (``idle``: no row held or arriving, nothing in flight).

Timing: the multipliers are ``Multiplier`` (DSP blocks with their registers on ECP5), the
weights and the channels' constants ``BlockRam`` (their output registers), ``rows.ready`` a
register, the products summed by a registered tree, the
requantizing multiply split into 17-bit pieces of the accumulator (one DSP each), the
rounding shift a barrel of two bits per stage: every stage one adder, compare or 4-way select.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.lib.block_ram import BlockRam
from rtl.lib.credit_queue import CreditQueue
from rtl.lib.multiplier import Multiplier
from rtl.lib.stages import Stages, tree_stages

__all__ = [
    "CONSTANTS",
    "KINDS",
    "ProjectionUnit",
    "channel_layout",
    "constant_ports",
    "drive_constants",
]

#: the fused layer's projections
KINDS = ("value", "offsets", "logits", "output")
#: a unit's ports that load its weights and per-channel constants
CONSTANTS = ("w_en", "w_addr", "w_data", "c_en", "c_addr", "c_data")


def constant_ports(unit: ProjectionUnit, prefix: str = "") -> dict:
    """Signature members, named ``prefix + name``, that pass ``unit``'s constants ports on."""
    return {prefix + name: In(getattr(unit, name).shape()) for name in CONSTANTS}


def drive_constants(m: Module, target, source, *, into: str = "", prefix: str = "") -> None:
    """Drive ``target``'s constants ports (``into + name``: a unit's, or a block's that passes
    them on) from ``source``'s ``prefix + name`` ports."""
    for name in CONSTANTS:
        m.d.comb += getattr(target, into + name).eq(getattr(source, prefix + name))


#: the accumulator is multiplied by ``mult`` in pieces of this many bits (a DSP operand,
#: unsigned but for the top piece)
PIECE = 17


def channel_layout(acc_bits: int, requant_bits: int, shift_bits: int) -> data.StructLayout:
    """One output channel's constants: bias (accumulator units), multiplier and shift."""
    return data.StructLayout(
        {"bias": signed(acc_bits), "mult": unsigned(requant_bits), "shift": unsigned(shift_bits)}
    )


class ProjectionUnit(wiring.Component):
    def __init__(
        self,
        *,
        n_in: int,
        n_out: int,
        lanes: int,
        in_bits: int,
        weight_bits: int,
        acc_bits: int,
        requant_bits: int,
        lo: int,
        hi: int,
        dsp: bool = True,
    ):
        problems = [
            f"{name}={value} is out of range: allowed >= {low}"
            for name, value, low in (
                ("n_in", n_in, 1),
                ("n_out", n_out, 1),
                ("lanes", lanes, 1),
                ("in_bits", in_bits, 2),
                ("weight_bits", weight_bits, 2),
                ("requant_bits", requant_bits, 1),
            )
            if value < low
        ]
        if not problems and not lo <= 0 <= hi:
            problems.append(f"lo={lo}, hi={hi}: the output range must hold 0")
        if problems:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError("; ".join(problems))
        self.n_in, self.n_out, self.lanes = n_in, n_out, lanes
        self.chunks = -(-n_in // lanes)
        self.in_bits, self.weight_bits, self.acc_bits = in_bits, weight_bits, acc_bits
        self.requant_bits, self.lo, self.hi = requant_bits, lo, hi
        self.dsp = dsp  # the products on DSP blocks (else LUTs); the requantizing ones always
        #: the largest shift (``sim.layer.requantizer`` caps it at acc_bits + requant_bits)
        self.max_shift = acc_bits + requant_bits
        self.shift_bits = self.max_shift.bit_length()
        self.out_bits = max(lo.bit_length(), hi.bit_length()) + 1
        self.pieces = -(-acc_bits // PIECE)
        self._product_bits = acc_bits + requant_bits + 1
        self._barrel = -(-max(1, (self.max_shift - 1).bit_length()) // 2)
        # issue -> word written: memories 2, products 2, tree, accumulate 1, bias 1, pieces 2,
        # their sum, barrel, rounding 1, saturate 2 (the constants' read overlaps the tree)
        self.latency = (
            2 + 2 + tree_stages(lanes) + 1 + 1 + 2 + tree_stages(self.pieces) + self._barrel + 1 + 2
        )
        self.queue_depth = -(-self.latency // self.chunks) + 4
        super().__init__(
            {
                "rows": In(stream.Signature(data.ArrayLayout(signed(in_bits), lanes))),
                "out": Out(
                    stream.Signature(
                        data.StructLayout({"data": signed(self.out_bits), "last": unsigned(1)})
                    )
                ),
                "w_en": In(1),
                "w_addr": In(range(max(2, n_out * self.chunks))),
                "w_data": In(data.ArrayLayout(signed(weight_bits), lanes)),
                "c_en": In(1),
                "c_addr": In(range(max(2, n_out))),
                "c_data": In(channel_layout(acc_bits, requant_bits, self.shift_bits)),
                "idle": Out(1, init=1),
            }
        )

    @classmethod
    def of(cls, cfg: DefaConfig, kind: str) -> ProjectionUnit:
        """The projection ``kind`` of ``cfg``'s layer (the formats of ``sim.layer``): value
        (x -> value codes), offsets (query -> offset words), logits (query -> logit words),
        output (core output words -> layer output words); ``proj_lanes`` products a cycle."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not a projection: allowed {list(KINDS)}")
        c, per_head = cfg.d_model, cfg.heads * cfg.levels * cfg.points
        logit_top = (1 << (cfg.logit_bits - 1)) - 1
        out_top = (1 << (cfg.layer_out_bits - 1)) - 1
        n_out, in_bits, lo, hi = {
            "value": (c, cfg.act_bits, -cfg.value_max, cfg.value_max),
            "offsets": (2 * per_head, cfg.act_bits, cfg.offset_min, cfg.offset_max),
            "logits": (per_head, cfg.act_bits, -logit_top - 1, logit_top),
            "output": (c, cfg.out_bits, -out_top, out_top),
        }[kind]
        return cls(
            n_in=c,
            n_out=n_out,
            lanes=cfg.proj_lanes,
            in_bits=in_bits,
            weight_bits=cfg.weight_bits,
            acc_bits=cfg.proj_acc_bits,
            requant_bits=cfg.requant_bits,
            lo=lo,
            hi=hi,
            dsp=cfg.proj_dsp,
        )

    def elaborate(self, platform):
        m = Module()
        chunks, lanes = self.chunks, self.lanes
        s = Stages(m)

        # -- the two row buffers: one fills from ``rows`` while the other is projected --------
        m.submodules.row_store = row_store = memory.Memory(
            shape=data.ArrayLayout(signed(self.in_bits), lanes), depth=2 * chunks, init=[]
        )
        row_write, row_read = row_store.write_port(), row_store.read_port()
        full = Signal(2, name="full")  # a bank holds a whole row
        w_bank = Signal(1, name="w_bank")
        w_chunk = Signal(range(max(2, chunks)), name="w_chunk")
        accepting = Signal(name="accepting", init=1)  # ~full[w_bank], as a register
        m.d.comb += [
            self.rows.ready.eq(accepting),
            row_write.addr.eq(w_bank * chunks + w_chunk),
            row_write.data.eq(self.rows.payload),
            row_write.en.eq(self.rows.valid & self.rows.ready),
        ]
        # set_full, clear_full: plain expressions (continuous assignments), not conditional
        # writes: an event-driven simulator evaluates those at time 0 even when their inputs
        # never change (Icarus left a conditional block's signal X until its first input
        # event, and ``full`` took the X)
        set_full = Signal(2)
        clear_full = Signal(2)
        row_taken = Signal()
        m.d.comb += row_taken.eq(self.rows.valid & self.rows.ready & (w_chunk == chunks - 1))
        m.d.comb += set_full.eq(Cat(row_taken & ~w_bank, row_taken & w_bank))
        with m.If(self.rows.valid & self.rows.ready):
            with m.If(w_chunk == chunks - 1):
                m.d.sync += [w_chunk.eq(0), w_bank.eq(~w_bank)]
            with m.Else():
                m.d.sync += w_chunk.eq(w_chunk + 1)
        full_next = Signal(2, name="full_next")
        w_bank_next = Signal(1, name="w_bank_next")
        m.d.comb += [
            full_next.eq((full | set_full) & ~clear_full),
            w_bank_next.eq(w_bank ^ set_full.any()),
        ]
        m.d.sync += [
            full.eq(full_next),
            accepting.eq(~Mux(w_bank_next, full_next[1], full_next[0])),
        ]

        # -- the output queue, entered as a channel starts ------------------------------------
        m.submodules.queue = queue = CreditQueue(self.out.payload.shape(), self.queue_depth)
        wiring.connect(m, queue.out, wiring.flipped(self.out))

        # -- issue: one (channel, chunk) per cycle, channel-major -----------------------------
        r_bank = Signal(1, name="r_bank")
        chunk = Signal(range(max(2, chunks)), name="chunk")
        channel = Signal(range(max(2, self.n_out)), name="channel")
        w_index = Signal(range(max(2, self.n_out * chunks)), name="w_index")
        first, last_chunk = chunk == 0, chunk == chunks - 1
        row_end = last_chunk & (channel == self.n_out - 1)
        go = Signal(name="go")
        m.d.comb += [
            go.eq(Mux(r_bank, full[1], full[0]) & (~first | queue.room)),
            queue.enter.eq(go & first),
        ]
        with m.If(go):
            m.d.sync += [chunk.eq(Mux(last_chunk, 0, chunk + 1)), w_index.eq(w_index + 1)]
            with m.If(last_chunk):
                m.d.sync += channel.eq(channel + 1)
            with m.If(row_end):
                m.d.sync += [channel.eq(0), w_index.eq(0), r_bank.eq(~r_bank)]
        row_done = Signal()
        m.d.comb += row_done.eq(go & row_end)
        m.d.comb += clear_full.eq(Cat(row_done & ~r_bank, row_done & r_bank))

        # -- memories (latency 2): the row's chunk and the weights ----------------------------
        m.submodules.weights = weights = BlockRam(self.w_data.shape(), self.n_out * chunks)
        m.d.comb += [
            weights.w_en.eq(self.w_en),
            weights.w_addr.eq(self.w_addr),
            weights.w_data.eq(self.w_data),
            weights.r_addr.eq(w_index),
            row_read.addr.eq(r_bank * chunks + chunk),
        ]
        row_chunk = s.reg(row_read.data, row_read.data.shape(), "row_chunk")
        weight_chunk = weights.r_data
        # control beside the data
        ctl = data.StructLayout(
            {"valid": 1, "first": 1, "last_chunk": 1, "row_end": 1, "channel": self.c_addr.shape()}
        )
        issued = Signal(ctl, name="issued")
        m.d.comb += [
            issued.valid.eq(go),
            issued.first.eq(first),
            issued.last_chunk.eq(last_chunk),
            issued.row_end.eq(row_end),
            issued.channel.eq(channel),
        ]
        at_data = s.delay(issued, 2, "at_data")

        # -- products (latency 2) and their sum ---------------------------------------------
        products = []
        for lane in range(lanes):
            mult = Multiplier(signed(self.in_bits), signed(self.weight_bits), dsp=self.dsp)
            m.submodules[f"mult{lane}"] = mult
            m.d.comb += [mult.a.eq(row_chunk[lane]), mult.b.eq(weight_chunk[lane])]
            products.append(mult.p)
        at_products = s.delay(at_data, 2, "at_products")
        acc_shape = signed(self.acc_bits)
        dot, depth = s.tree(products, lambda a, b: a + b, acc_shape, "dot")
        at_dot = s.delay(at_products, depth, "at_dot")

        # -- accumulate over the chunks; the sum leaves on the channel's last chunk -----------
        acc = Signal(acc_shape, name="acc")
        with m.If(at_dot.valid):
            m.d.sync += acc.eq(Mux(at_dot.first, dot, acc + dot))
        at_acc = s.reg(at_dot, ctl, "at_acc")
        done = Signal(name="done")
        m.d.comb += done.eq(at_acc.valid & at_acc.last_chunk)

        # -- the channel's constants (block RAM, latency 2), read to arrive with the sum -----
        m.submodules.channel_store = channel_store = BlockRam(self.c_data.shape(), self.n_out)
        m.d.comb += [
            channel_store.w_en.eq(self.c_en),
            channel_store.w_addr.eq(self.c_addr),
            channel_store.w_data.eq(self.c_data),
            channel_store.r_addr.eq(s.delay(issued.channel, 3 + depth, "constants_at")),
        ]
        constants = Signal(self.c_data.shape(), name="constants")
        m.d.comb += constants.eq(channel_store.r_data)

        # -- bias, then the requantizing multiply in pieces ----------------------------------
        biased = s.reg(acc + constants.bias, acc_shape, "biased")
        mult_of = s.reg(constants.mult, constants.mult.shape(), "mult_b")
        # the rounding shift is taken as >> max(s-1, 0), then (v + 1) >> 1 unless s is 0
        ctl2 = data.StructLayout(
            {"end": 1, "row_end": 1, "exact": 1, "amount": unsigned(self.shift_bits)}
        )
        lane2 = Signal(ctl2, name="requant_ctl")
        m.d.comb += [
            lane2.end.eq(done),
            lane2.row_end.eq(at_acc.row_end),
            lane2.exact.eq(constants.shift == 0),
            lane2.amount.eq(Mux(constants.shift == 0, 0, constants.shift - 1)),
        ]
        at_biased = s.reg(lane2, ctl2, "at_biased")
        partials = []
        for k in range(self.pieces):
            top = k == self.pieces - 1
            piece = biased[k * PIECE : min(self.acc_bits, (k + 1) * PIECE)]
            piece = piece.as_signed() if top else piece
            pm = Multiplier(piece.shape(), unsigned(self.requant_bits))
            m.submodules[f"requant{k}"] = pm
            m.d.comb += [pm.a.eq(piece), pm.b.eq(mult_of)]
            partials.append(pm.p.as_signed() << (k * PIECE) if top else pm.p << (k * PIECE))
        product_shape = signed(self._product_bits)
        at_partials = s.delay(at_biased, 2, "at_partials")
        product, depth2 = s.tree(partials, lambda a, b: a + b, product_shape, "product")
        at_product = s.delay(at_partials, depth2, "at_product")

        # -- round half up: a barrel of two bits of shift per stage, then the last bit --------
        value, ctl_now = product, at_product
        for step in range(self._barrel):
            digit = ctl_now.amount[2 * step : 2 * step + 2]
            shifted = [value.shift_right(d << (2 * step)) for d in range(4)]
            chosen = Signal(product_shape, name=f"barrel{step}")
            with m.Switch(digit):
                for d in range(4):
                    with m.Case(d):
                        m.d.comb += chosen.eq(shifted[d])
            value = s.reg(chosen, product_shape, f"barrel{step}r")
            ctl_now = s.reg(ctl_now, ctl2, f"barrel{step}_ctl")
        rounded = s.reg(Mux(ctl_now.exact, value, (value + 1) >> 1), product_shape, "rounded")
        ctl_now = s.reg(ctl_now, ctl2, "rounded_ctl")

        # -- saturate: compare, then select ----------------------------------------------------
        over = s.reg(rounded > self.hi, 1, "over")
        under = s.reg(rounded < self.lo, 1, "under")
        kept = s.reg(rounded, product_shape, "kept")
        ctl_sat = s.reg(ctl_now, ctl2, "sat_ctl")
        word = Signal(self.out.payload.shape(), name="word")
        m.d.sync += [
            word.data.eq(Mux(over, self.hi, Mux(under, self.lo, kept))),
            word.last.eq(ctl_sat.row_end),
        ]
        m.d.comb += [queue.w_data.eq(word), queue.w_en_next.eq(ctl_sat.end)]
        m.d.comb += self.idle.eq((full == 0) & (w_chunk == 0) & queue.idle)
        return m
