"""Level accumulator: sums a job's sampler partials at one level, exactly, and emits one
level sum per job in job order.

Contract:

* ``descriptors`` (in job order) say which jobs come and whether the level kept any point of
  them. For an ``empty`` job a zero sum is emitted without consuming any partial (no sampler
  cycle); otherwise partial beats are summed, chunk by chunk, up to the beat that is the last
  chunk (``last``) of the job's last point (``tag`` = 1), and the sum is emitted with that beat.
* ``sums``: a queue of ``queue_depth`` level sums (``acc_bits`` per channel, never
  overflowing: the config sizes ``acc_bits`` for all L*P points). Partials are accepted only
  while the queue has room, so backpressure reaches the sampler.
* ``off_map`` pulses for each accepted point that had no corner on the map.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import descriptor_layout, level_sum_layout, partial_layout

__all__ = ["Accumulator"]


class Accumulator(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        self._tag_bits = tag_bits
        super().__init__(
            {
                "descriptors": In(stream.Signature(descriptor_layout(cfg, tag_bits))),
                "partials": In(stream.Signature(partial_layout(cfg, tag_bits=1))),
                "sums": Out(stream.Signature(level_sum_layout(cfg, tag_bits))),
                "off_map": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        lanes, chunks = cfg.lanes, cfg.cycles_per_point
        m = Module()
        sum_shape = level_sum_layout(cfg, self._tag_bits)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(
            width=sum_shape.size, depth=cfg.queue_depth
        )
        m.d.comb += [
            self.sums.payload.eq(data.View(sum_shape, queue.r_data)),
            self.sums.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.sums.ready),
        ]

        desc = self.descriptors.payload
        beat = self.partials.payload
        acc = [Signal(signed(cfg.acc_bits), name=f"acc{c}") for c in range(cfg.head_dim)]
        # fresh[k]: chunk k of acc holds nothing of the current job yet (read as zero)
        fresh = Signal(chunks, init=(1 << chunks) - 1)
        room = queue.w_rdy
        busy_job = self.descriptors.valid & ~desc.empty
        take = Signal()
        ends_job = beat.last & beat.tag  # this beat completes the job's sum
        m.d.comb += [
            # Only the beat that emits needs room in the queue.
            self.partials.ready.eq(busy_job & (room | ~ends_job)),
            take.eq(self.partials.valid & self.partials.ready),
        ]
        job_done = take & ends_job
        emit_empty = self.descriptors.valid & desc.empty & room

        # The channel sums after this beat: chunk `beat.chunk` updated, the others as they are.
        updated = []
        chunk_hit = Signal(chunks)  # one-hot of the beat's chunk
        m.d.comb += chunk_hit.eq(1 << beat.chunk if chunks > 1 else 1)
        for c in range(cfg.head_dim):
            chunk, lane = divmod(c, lanes)
            new = Signal(signed(cfg.acc_bits), name=f"sum{c}")
            hit = chunk_hit[chunk]
            base = Mux(fresh[chunk], 0, acc[c])
            m.d.comb += new.eq(Mux(hit, base + beat.lanes[lane], base))
            updated.append(new)
        with m.If(take):
            m.d.sync += [acc[c].eq(updated[c]) for c in range(cfg.head_dim)]
            with m.If(job_done):
                m.d.sync += fresh.eq((1 << chunks) - 1)
            with m.Else():
                m.d.sync += fresh.eq(fresh & ~chunk_hit)

        out = Signal(sum_shape)
        m.d.comb += [out.tag.eq(desc.tag), out.head.eq(desc.head)]
        for c in range(cfg.head_dim):
            m.d.comb += out.values[c].eq(Mux(desc.empty, 0, updated[c]))
        m.d.comb += [
            queue.w_data.eq(out.as_value()),
            queue.w_en.eq(job_done | emit_empty),
            self.descriptors.ready.eq(job_done | emit_empty),
            self.off_map.eq(take & beat.last & beat.off_map),
        ]
        return m
