"""Level accumulator: sums a job's sampler partials at one level, exactly, and sends one level
sum per job (with at least one kept point here) to the aggregator, in job order.

Contract:

* Partial beats are summed, chunk by chunk, up to the beat that is the last chunk (``last``)
  of the job's last point (``tag`` = 1). A taken beat is registered first (with copies of its
  enable, one per ``GROUP`` lanes of each chunk: no enable reaches every accumulator bit) and
  added the cycle after; the cycle after that the sum leaves on ``sums`` (a registered
  crossing into the aggregator's inbox of ``sum_depth_of(cfg)`` sums, ``acc_bits`` per channel,
  never overflowing: the config sizes ``acc_bits`` for all L*P points). Jobs without a kept
  point at this level send nothing (the aggregator's descriptor says so).
* ``partials.ready`` is high while fewer than ``sum_depth_of(cfg)`` sums are in flight (sent,
  or being summed to their last beat, and not yet given back by the aggregator's credit): a
  register, so backpressure reaches the sampler without a path from the aggregator, and the
  payload (the sampler queue's LUT RAM read) reaches only registers: a job's end enters the
  count a cycle late (``job_done_r``), and ``ready`` counts it meanwhile (the same decision in
  every cycle as an immediate count), set a cycle ahead from the count's next values.
  ``ready_slices``: more registers equal to ``partials.ready``, one per slice of the sender's
  queue (``Sampler.partials_ready_slices``), each next to the load enable it drives.
* ``off_map`` pulses for each accepted point that had no corner on the map.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import SUM_GROUP, level_sum_layout, partial_layout
from rtl.lib.credits import Credits
from rtl.lib.inbox import crossing, send, slices_of
from rtl.lib.stages import copy_register

__all__ = ["Accumulator"]


class Accumulator(wiring.Component):
    #: sums the aggregator's inbox holds per level: the queue depth and the credit round trip
    #: (a sum whose last beat was taken in cycle e is readable at e+4+r, its credit back at
    #: the earliest at e+6+2r, r = ``cfg.relay_stages``)
    @staticmethod
    def sum_depth_of(cfg: DefaConfig) -> int:
        return cfg.queue_depth + 5 + 2 * cfg.relay_stages

    #: accumulator lanes that share one copy of the registered beat's enable and clear (one:
    #: a copy reaches one lane's adder, acc_bits LUTs)
    GROUP = 1

    #: copies of ``partials.ready`` (``ready_slices``), one per slice of the sender's queue
    @staticmethod
    def slices_of(cfg: DefaConfig) -> int:
        return slices_of(partial_layout(cfg, tag_bits=1))

    def __init__(self, cfg: DefaConfig):
        self._cfg = cfg
        super().__init__(
            {
                "partials": In(stream.Signature(partial_layout(cfg, tag_bits=1))),
                "sums": Out(crossing(level_sum_layout(cfg), SUM_GROUP)),
                "off_map": Out(1),
                "ready_slices": Out(self.slices_of(cfg), init=(1 << self.slices_of(cfg)) - 1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        lanes, chunks = cfg.lanes, cfg.cycles_per_point
        m = Module()
        m.submodules.credits = credits = Credits(self.sum_depth_of(cfg))
        slices = self.slices_of(cfg)
        beat = self.partials.payload
        take = Signal()
        job_done = Signal()
        done_r = Signal(name="job_done_r")  # registered: the count takes it a cycle late
        m.d.sync += done_r.eq(job_done)
        # ready = Mux(done_r, room_after_one, room), each copy a register set a cycle ahead
        # from the values those take at the edge (the same bit every cycle): one for the take
        # here, one per slice of the sampler's output queue (its load enables)
        ready = copy_register(1, name="ready", init=1)
        copies = [copy_register(1, name=f"ready{k}", init=1) for k in range(slices)]
        ahead = Mux(job_done, credits.room_after_one_next, credits.room_next)
        m.d.sync += [r.eq(ahead) for r in (ready, *copies)]
        m.d.comb += self.ready_slices.eq(Cat(*copies))
        m.d.comb += [
            self.partials.ready.eq(ready),
            take.eq(self.partials.valid & ready),
            job_done.eq(take & beat.last & beat.tag),
            credits.enter.eq(done_r),
            credits.freed.eq(self.sums.credit),
        ]

        # The taken beat, registered per chunk and group of lanes: a copy of its lanes (no
        # enable), of "this chunk was taken" and of "this chunk holds nothing of the job yet",
        # so each group's adders take their operands from registers beside them.
        # fresh[k]: chunk k of acc holds nothing of the current job yet (read as zero)
        fresh = Signal(chunks, init=(1 << chunks) - 1)
        chunk_hit = Signal(chunks)  # one-hot of the beat's chunk
        m.d.comb += chunk_hit.eq(1 << beat.chunk if chunks > 1 else 1)
        with m.If(take):
            with m.If(job_done):
                m.d.sync += fresh.eq((1 << chunks) - 1)
            with m.Else():
                m.d.sync += fresh.eq(fresh & ~chunk_hit)
        acc = [Signal(signed(cfg.acc_bits), name=f"acc{c}") for c in range(cfg.head_dim)]
        width = len(beat.lanes[0])  # of one lane's partial
        for chunk in range(chunks):
            for first in range(0, lanes, self.GROUP):
                hit = copy_register(1, name=f"hit{chunk}_{first // self.GROUP}")
                clear = copy_register(1, name=f"clear{chunk}_{first // self.GROUP}")
                group = range(first, min(lanes, first + self.GROUP))
                lanes_r = copy_register(
                    len(group) * width, name=f"lanes{chunk}_{first // self.GROUP}"
                )
                m.d.sync += [
                    hit.eq(take & chunk_hit[chunk]),
                    clear.eq(fresh[chunk]),
                    lanes_r.eq(Cat(*(beat.lanes[lane] for lane in group))),
                ]
                for i, lane in enumerate(group):
                    c = chunk * lanes + lane
                    value = lanes_r[i * width : (i + 1) * width].as_signed()
                    with m.If(hit):
                        m.d.sync += acc[c].eq(Mux(clear, 0, acc[c]) + value)

        # The finished sum is in acc two cycles after its last beat was taken: sent from there.
        send(m, self.sums, done_r, "sums_valid")
        m.d.comb += [self.sums.payload[c].eq(acc[c]) for c in range(cfg.head_dim)]
        m.d.comb += self.off_map.eq(take & beat.last & beat.off_map)
        return m
