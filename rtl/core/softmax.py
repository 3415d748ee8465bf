"""Softmax unit: the L*P attention logits of one (query, head) to probabilities, in fixed
point, exactly as ``sim.bittrue.softmax``.

Contract:

* ``logits`` in: ``points_per_head`` signed ``logit_bits`` words and an opaque ``tag``;
  ``probs`` out: as many ``prob_bits``-fraction words (at most 1.0) and the same tag, in order,
  with PAP's ``keep`` bits beside them: bit k set when ``values[k] >= tau_p`` (``tau_p`` read
  through a register; 0 keeps all), compared as the probabilities enter the output queue, so
  the dispatcher's decisions start from registers.
* Method: subtract the maximum; exponent in base 2 (``d * log2(e)``, ``exp_frac_bits``
  fraction); ``2**-frac`` from a table, the integer part as a right shift; one sum; its
  reciprocal from a table indexed by the sum normalized to ``recip_bits`` bits; one multiply
  and one rounding per probability.
* Throughput one head per cycle (initiation interval 1) while fewer than
  ``SoftmaxUnit.queue_depth_of(cfg)`` heads are in flight; latency ``softmax_latency(cfg)``
  cycles (22 for 4 points per head, 26 for 16) when the output queue is empty. The pipeline
  never stalls (no enable on its registers): it ends in a queue of
  ``SoftmaxUnit.queue_depth_of(cfg)`` heads and ``logits.ready`` is high only while fewer
  heads than that are in flight, so ``probs.ready`` low fills the queue and then holds new
  heads back (no loss under backpressure).
* Timing: every stage is at most one adder (or compare-and-select), a table read, a shift or a
  multiply; the tables are block RAMs read through their output registers (``BlockRom``), the
  exponents' registered once more by the shifts.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.lib.block_rom import BlockRom
from rtl.lib.credit_queue import CreditQueue
from rtl.lib.inbox import Inbox, send
from rtl.lib.multiplier import Multiplier
from rtl.lib.stages import Stages, copy_register, tree_stages

__all__ = ["SoftmaxUnit", "softmax_latency"]

LOG2E_BITS = 16
LOG2E_Q = round(math.log2(math.e) * (1 << LOG2E_BITS))


def _exp_table(cfg: DefaConfig) -> list[int]:
    steps = 1 << cfg.exp_frac_bits
    return [math.floor((1 << cfg.exp_bits) * 2.0 ** (-f / steps) + 0.5) for f in range(steps)]


def _recip_table(cfg: DefaConfig) -> list[int]:
    m = cfg.recip_bits
    return [(((1 << (2 * m + 2)) // (2 * mant + 1)) + 1) >> 1 for mant in range(1 << m, 2 << m)]


def _log2e_terms() -> list[int]:
    return [b for b in range(LOG2E_Q.bit_length()) if LOG2E_Q >> b & 1]


def softmax_latency(cfg: DefaConfig) -> int:
    """Cycles from a head's acceptance to its probabilities (no stall)."""
    n = cfg.points_per_head
    exponent = tree_stages(len(_log2e_terms()) + 1)  # d * log2(e) + rounding, as shifts
    # input, max tree (two stages a level), d, exponent, clamp, table (3), shift, sum,
    # normalize, reciprocal table (3), multiply, the rounding's shift, its add and clamp, then
    # the output queue (2)
    max_tree, sum_tree = 2 * tree_stages(n), tree_stages(n)
    return 1 + max_tree + 1 + exponent + 1 + 3 + 1 + sum_tree + 1 + 3 + 1 + 1 + 1 + 2


class SoftmaxUnit(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 8):
        self._cfg = cfg
        self._tag_bits = tag_bits
        self.latency = softmax_latency(cfg)
        n = cfg.points_per_head
        super().__init__(
            {
                "logits": In(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "tag": unsigned(tag_bits),
                                "values": data.ArrayLayout(signed(cfg.logit_bits), n),
                            }
                        )
                    )
                ),
                "probs": Out(
                    stream.Signature(
                        data.StructLayout(
                            {
                                "tag": unsigned(tag_bits),
                                "values": data.ArrayLayout(unsigned(cfg.prob_bits + 1), n),
                                "keep": unsigned(n),
                            }
                        )
                    )
                ),
                "tau_p": In(unsigned(cfg.prob_bits + 1)),
            }
        )

    #: heads the output queue (and the tag queue) holds: the round trip (the pipeline's depth
    #: and three) lets credits never throttle a unit whose output is taken every cycle. Past
    #: one LUT RAM (16 words) each queue doubles its LUT RAM and adds a read multiplexer per
    #: bit, so it holds only as many as keep one head per ``cycles_per_point`` cycles (the
    #: fastest a sampler takes jobs with a kept point) and at least 16 (free). Only a run of jobs
    #: with nothing kept then waits on it, which the cycle model counts
    #: (``sim.perf.softmax_depth``).
    @staticmethod
    def queue_depth_of(cfg: DefaConfig) -> int:
        round_trip = softmax_latency(cfg) + 3
        return min(round_trip, max(16, -(-round_trip // cfg.cycles_per_point)))

    def elaborate(self, platform):
        cfg = self._cfg
        n = cfg.points_per_head
        t_frac, x_bits, m_bits = cfg.exp_frac_bits, cfg.exp_bits, cfg.recip_bits
        m = Module()
        # The pipeline never stalls (no enable fans out to its registers): it ends in a queue
        # of `depth` heads, and a head enters only while fewer than `depth` are in flight.
        # The tags bypass the pipeline in a queue of their own (an Inbox written through a
        # register as heads enter, taken as their probabilities enter the output queue: both
        # keep order; a tag is readable 3 cycles after its head entered, long before its
        # probabilities), so only the output queue answers ``probs.ready``.
        depth = self.queue_depth_of(cfg)
        values_shape = self.probs.payload.values.shape()
        m.submodules.queue = queue = CreditQueue(self.probs.payload.shape(), depth)
        # (in groups of 16 bits: past 16 heads each bit is two LUT RAMs and a select, and a
        # read pointer per 64 bits reached 32 of them)
        m.submodules.tag_queue = tag_queue = Inbox(
            unsigned(self._tag_bits), depth, address_group=16
        )
        assert self.latency > 3
        entered = Signal()
        m.d.comb += [
            self.logits.ready.eq(queue.room),
            entered.eq(self.logits.valid & self.logits.ready),
            queue.enter.eq(entered),
        ]
        wiring.connect(m, queue.out, wiring.flipped(self.probs))
        send(m, tag_queue.link, entered, "tag_valid")
        m.d.sync += [
            tag_queue.link.payload.eq(self.logits.payload.tag),
        ]
        st = Stages(m)
        ks = range(n)

        # Input register, then the maximum (a tree of comparisons, each in two stages: the
        # compare registered beside its operands, then the select).
        shape = signed(cfg.logit_bits)
        logit = [st.reg(self.logits.payload.values[k], shape, f"logit{k}") for k in ks]
        top, max_stages = st.max_tree(logit, shape, "max")
        logit = [st.delay(logit[k], max_stages, f"logit{k}") for k in ks]
        # d = max - l, then t = round(d * log2(e)) from shifted copies of d, then the clamp.
        d = [st.reg(top - logit[k], unsigned(cfg.logit_bits + 1), f"d{k}") for k in ks]
        t_shift = LOG2E_BITS + cfg.logit_frac_bits - t_frac
        t_max = (x_bits + 1) << t_frac
        wide = unsigned(cfg.logit_bits + 1 + LOG2E_Q.bit_length() + 1)
        t = []
        for k in ks:
            terms = [d[k] << b for b in _log2e_terms()] + [1 << (t_shift - 1)]
            total, _ = st.tree(terms, lambda a, b: a + b, wide, f"t{k}_")
            whole = total >> t_shift
            t.append(
                st.reg(Mux(whole > t_max, t_max, whole), unsigned(t_max.bit_length()), f"t{k}")
            )
        # Exponentials: 2**-frac from a table (a block RAM with registered reads, one per two
        # points, then a register by the shifts), the integer part shifts.
        assert BlockRom.latency == 2
        e = []
        for k in ks:
            if k % 2 == 0:
                exp_rom = BlockRom(unsigned(x_bits + 1), _exp_table(cfg), ports=min(2, n - k))
                m.submodules[f"exp_table{k // 2}"] = exp_rom
            m.d.comb += exp_rom.r_addr[k % 2].eq(t[k][:t_frac])
            frac = st.delay(exp_rom.r_data[k % 2], 1, f"exp{k}")
            shift = st.delay(t[k][t_frac:], 3, f"shift{k}")
            e.append(st.reg(frac >> shift, unsigned(x_bits + 1), f"e{k}"))
        # The sum, then its leading one (in [X, sum_bits): the largest logit gives 2**X).
        sum_bits = (n << x_bits).bit_length()
        total, sum_stages = st.tree(e, lambda a, b: a + b, unsigned(sum_bits), "sum")
        e = [st.delay(e[k], sum_stages, f"e{k}") for k in ks]
        lead = Signal(range(sum_bits))
        index = Signal(m_bits)
        for pos in range(x_bits, sum_bits):  # the highest set bit wins (last assignment)
            with m.If(total[pos]):
                m.d.sync += [lead.eq(pos), index.eq((total >> (pos - m_bits))[:m_bits])]
        e = [st.delay(e[k], 1, f"e{k}n") for k in ks]
        # The reciprocal of the normalized sum (a block RAM with registered reads), then the
        # products.
        m.submodules.recip_table = recip_rom = BlockRom(unsigned(m_bits + 1), _recip_table(cfg))
        m.d.comb += recip_rom.r_addr[0].eq(index)
        recip = recip_rom.r_data[0]
        # The products: a Multiplier each (its operand and product registers; on ECP5 inside a
        # MULT18X18D), fed by the reciprocal and the exponents delayed to meet it.
        lead = st.delay(lead, 3, "lead")  # and a copy per product (below): 4 stages
        e = [st.delay(e[k], 2, f"e{k}r") for k in ks]
        assert Multiplier.latency == 2
        product = []
        for k in ks:
            mult = Multiplier(recip.shape(), e[k].shape())
            m.submodules[f"mult{k}"] = mult
            m.d.comb += [mult.a.eq(recip), mult.b.eq(e[k])]
            product.append(mult.p)
        # One rounding by the sum's scale and the clamp to 1.0, into the queue:
        # (p + 2**(s-1)) >> s as ((p >> (s-1)) + 1) >> 1 (equal for s >= 1), the shift a select
        # by the leading one's position (each product's own copy of it, kept: one register
        # per multiplier, not one net across them all), registered; then one adder and, beside
        # it, the clamp's compare on the same register ((h + 1) >> 1 > one iff h > 2 * one),
        # registered as the queue's write word.
        out = Signal(values_shape)
        keep = Signal(n)
        tau_p = Signal.like(self.tau_p, name="tau_p_local")
        m.d.sync += tau_p.eq(self.tau_p)
        for k in ks:
            lead_k = copy_register(lead.shape(), name=f"lead{k}")
            m.d.sync += lead_k.eq(lead)
            halved = Signal(unsigned(len(product[k])), name=f"halved{k}")  # p >> (s-1)
            with m.Switch(lead_k):
                for pos in range(x_bits, sum_bits):
                    shift = m_bits + pos - cfg.prob_bits
                    assert shift >= 1
                    with m.Case(pos):
                        m.d.comb += halved.eq(product[k] >> (shift - 1))
            halved_r = Signal.like(halved, name=f"halved{k}_r")
            m.d.sync += halved_r.eq(halved)
            prob = Signal(out[k].shape(), name=f"prob{k}")
            m.d.sync += prob.eq(Mux(halved_r > 2 * cfg.prob_one, cfg.prob_one, (halved_r + 1) >> 1))
            m.d.comb += [out[k].eq(prob), keep[k].eq(prob >= tau_p)]

        stages = self.latency - 2  # the queue's two cycles
        valid = [Signal(name=f"valid{i}") for i in range(stages)]
        m.d.sync += valid[0].eq(entered)
        for i in range(1, stages):
            m.d.sync += valid[i].eq(valid[i - 1])
        m.d.comb += [
            queue.w_data.values.eq(out),
            queue.w_data.keep.eq(keep),  # PAP's compares, between prob and the queue's write
            queue.w_data.tag.eq(tag_queue.out.payload),
            queue.w_en_next.eq(valid[-2]),
            tag_queue.out.ready.eq(valid[-1]),
        ]
        return m
