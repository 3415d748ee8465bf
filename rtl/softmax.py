"""Softmax unit: the L*P attention logits of one (query, head) to probabilities, in fixed
point, exactly as ``sim.bittrue.softmax``.

Contract:

* ``logits`` in: ``points_per_head`` signed ``logit_bits`` words and an opaque ``tag``;
  ``probs`` out: as many ``prob_bits``-fraction words (at most 1.0) and the same tag, in order.
* Method: subtract the maximum; exponent in base 2 (``d * log2(e)``, ``exp_frac_bits``
  fraction); ``2**-frac`` from a table, the integer part as a right shift; one sum; its
  reciprocal from a table indexed by the sum normalized to ``recip_bits`` bits; one multiply
  and one rounding per probability.
* Throughput one head per cycle (initiation interval 1); latency ``SoftmaxUnit.latency`` (7)
  cycles; ``probs.ready`` low stalls the whole pipeline (no loss under backpressure).
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig

__all__ = ["SoftmaxUnit"]

LOG2E_BITS = 16
LOG2E_Q = round(math.log2(math.e) * (1 << LOG2E_BITS))


def _exp_table(cfg: DefaConfig) -> list[int]:
    steps = 1 << cfg.exp_frac_bits
    return [math.floor((1 << cfg.exp_bits) * 2.0 ** (-f / steps) + 0.5) for f in range(steps)]


def _recip_table(cfg: DefaConfig) -> list[int]:
    m = cfg.recip_bits
    return [(((1 << (2 * m + 2)) // (2 * mant + 1)) + 1) >> 1 for mant in range(1 << m, 2 << m)]


class SoftmaxUnit(wiring.Component):
    latency = 7

    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 8):
        self._cfg = cfg
        self._tag_bits = tag_bits
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
                            }
                        )
                    )
                ),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        n = cfg.points_per_head
        t_frac, x_bits, m_bits = cfg.exp_frac_bits, cfg.exp_bits, cfg.recip_bits
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.probs.valid | self.probs.ready)
        m.d.comb += self.logits.ready.eq(advance)

        valid = [Signal(name=f"valid{i}") for i in range(self.latency)]
        tags = [Signal(self._tag_bits, name=f"tag{i}") for i in range(self.latency)]
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.logits.valid), tags[0].eq(self.logits.payload.tag)]
            for i in range(1, self.latency):
                m.d.sync += [valid[i].eq(valid[i - 1]), tags[i].eq(tags[i - 1])]
        m.d.comb += [
            self.probs.valid.eq(valid[-1]),
            self.probs.payload.tag.eq(tags[-1]),
        ]

        def regs(name, shape):
            return [Signal(shape, name=f"{name}{k}") for k in range(n)]

        # 1: the inputs and their maximum.
        logit_1 = regs("logit", signed(cfg.logit_bits))
        top_1 = Signal(signed(cfg.logit_bits))
        # A balanced tree of comparisons, each level a named signal (shared, not re-expanded).
        level = [self.logits.payload.values[k] for k in range(n)]
        depth = 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level) - 1, 2):
                a, b = level[i], level[i + 1]
                w = Signal(signed(cfg.logit_bits), name=f"max{depth}_{i // 2}")
                m.d.comb += w.eq(Mux(a > b, a, b))
                nxt.append(w)
            if len(level) % 2:
                nxt.append(level[-1])
            level, depth = nxt, depth + 1
        best = level[0]
        # 2: base-2 exponents, clamped where everything shifts out.
        t_shift = LOG2E_BITS + cfg.logit_frac_bits - t_frac
        t_max = (x_bits + 1) << t_frac
        t_2 = regs("t", unsigned(t_max.bit_length()))
        # 3: exponentials.
        e_3 = regs("e", unsigned(x_bits + 1))
        # Tables are ROMs with asynchronous read ports (LUT ROM on an FPGA; a plain array for
        # simulators, which compile a multiplexer of constants very slowly).
        m.submodules.exp_table = exp_rom = Memory(
            shape=unsigned(x_bits + 1), depth=1 << t_frac, init=_exp_table(cfg)
        )
        exp_ports = [exp_rom.read_port(domain="comb") for _ in range(n)]
        # 4: the sum.
        sum_bits = (n << x_bits).bit_length()
        e_4 = regs("e4_", unsigned(x_bits + 1))
        total_4 = Signal(sum_bits)
        # 5: normalization. The largest logit contributes 2**X, so the leading one of the sum
        # lies in [X, sum_bits).
        e_5 = regs("e5_", unsigned(x_bits + 1))
        lead_5 = Signal(range(sum_bits))
        index_5 = Signal(m_bits)
        # 6: the reciprocal.
        e_6 = regs("e6_", unsigned(x_bits + 1))
        lead_6 = Signal(range(sum_bits))
        recip_6 = Signal(m_bits + 1)
        m.submodules.recip_table = recip_rom = Memory(
            shape=unsigned(m_bits + 1), depth=1 << m_bits, init=_recip_table(cfg)
        )
        recip_port = recip_rom.read_port(domain="comb")
        # 7: probabilities.
        out = self.probs.payload.values

        with m.If(advance):
            m.d.sync += top_1.eq(best)
            m.d.sync += [logit_1[k].eq(self.logits.payload.values[k]) for k in range(n)]
            for k in range(n):
                d = Signal(unsigned(cfg.logit_bits + 1), name=f"d{k}")
                m.d.comb += d.eq(top_1 - logit_1[k])
                t = (d * LOG2E_Q + (1 << (t_shift - 1))) >> t_shift
                m.d.sync += t_2[k].eq(Mux(t > t_max, t_max, t))
            for k in range(n):
                m.d.comb += exp_ports[k].addr.eq(t_2[k][:t_frac])
                m.d.sync += e_3[k].eq(exp_ports[k].data >> t_2[k][t_frac:])
            m.d.sync += [e_4[k].eq(e_3[k]) for k in range(n)]
            m.d.sync += total_4.eq(sum(e_3))
            m.d.sync += [e_5[k].eq(e_4[k]) for k in range(n)]
            for pos in range(x_bits, sum_bits):  # the highest set bit wins (last assignment)
                with m.If(total_4[pos]):
                    m.d.sync += [
                        lead_5.eq(pos),
                        index_5.eq((total_4 >> (pos - m_bits))[:m_bits]),
                    ]
            m.d.sync += [e_6[k].eq(e_5[k]) for k in range(n)]
            m.d.comb += recip_port.addr.eq(index_5)
            m.d.sync += [lead_6.eq(lead_5), recip_6.eq(recip_port.data)]
            for k in range(n):
                product = Signal(unsigned(x_bits + m_bits + 2), name=f"product{k}")
                m.d.comb += product.eq(e_6[k] * recip_6)
                prob = Signal(unsigned(x_bits + m_bits + 2), name=f"prob{k}")
                with m.Switch(lead_6):
                    for pos in range(x_bits, sum_bits):
                        shift = m_bits + pos - cfg.prob_bits
                        with m.Case(pos):
                            m.d.comb += prob.eq((product + (1 << (shift - 1))) >> shift)
                    with m.Default():  # unreachable: the leading one is never below X
                        m.d.comb += prob.eq(0)
                m.d.sync += out[k].eq(Mux(prob > cfg.prob_one, cfg.prob_one, prob))
        return m
