"""Dispatcher: splits each (query, head) job into per-level entries, pruning points (PAP).

Contract:

* A job is accepted (``jobs.ready``) when every level's entry and descriptor queue has room;
  throughput one job per cycle.
* PAP: point (l, p) is kept when ``prob >= tau_p`` (``tau_p`` in probability units; 0 keeps
  all). A pruned point never reaches a level unit: it costs no sampler cycle, no buffer read.
* Level l gets, in job order, a descriptor (tag, head, ``empty`` = no point kept at l) on
  ``descriptors[l]`` and, only when a point was kept, an entry (its P points and keep mask) on
  ``entries[l]``. Both are queues of ``queue_depth`` (SyncFIFOBuffered: one cycle from write to
  read).
* ``accepted`` pulses with each accepted job, ``kept`` holds the number of its kept points.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layouts import descriptor_layout, entry_layout, job_layout

__all__ = ["Dispatcher"]


class Dispatcher(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int):
        self._cfg = cfg
        self._tag_bits = tag_bits
        lv = cfg.levels
        super().__init__(
            {
                "jobs": In(stream.Signature(job_layout(cfg, tag_bits, probs=True))),
                "tau_p": In(unsigned(cfg.prob_bits + 1)),
                "entries": Out(stream.Signature(entry_layout(cfg))).array(lv),
                "descriptors": Out(stream.Signature(descriptor_layout(cfg, tag_bits))).array(lv),
                "accepted": Out(1),
                "kept": Out(range(cfg.points_per_head + 1)),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        job = self.jobs.payload
        entry_shape = entry_layout(cfg)
        desc_shape = descriptor_layout(cfg, self._tag_bits)
        room = []
        writes = []
        keep_bits = []
        for level in range(cfg.levels):
            entries = fifo.SyncFIFOBuffered(width=entry_shape.size, depth=cfg.queue_depth)
            descriptors = fifo.SyncFIFOBuffered(width=desc_shape.size, depth=cfg.queue_depth)
            m.submodules[f"entries{level}"] = entries
            m.submodules[f"descriptors{level}"] = descriptors
            keep = Signal(cfg.points, name=f"keep{level}")
            for p in range(cfg.points):
                m.d.comb += keep[p].eq(job.prob[level][p] >= self.tau_p)
            keep_bits.append(keep)
            entry = Signal(entry_shape, name=f"entry{level}")
            m.d.comb += [
                entry.head.eq(job.head),
                entry.ref_x.eq(job.ref_x[level]),
                entry.ref_y.eq(job.ref_y[level]),
                entry.off_x.eq(job.off_x[level]),
                entry.off_y.eq(job.off_y[level]),
                entry.prob.eq(job.prob[level]),
                entry.keep.eq(keep),
            ]
            desc = Signal(desc_shape, name=f"descriptor{level}")
            m.d.comb += [desc.tag.eq(job.tag), desc.head.eq(job.head), desc.empty.eq(~keep.any())]
            m.d.comb += [
                entries.w_data.eq(entry.as_value()),
                descriptors.w_data.eq(desc.as_value()),
            ]
            room += [entries.w_rdy, descriptors.w_rdy]
            writes.append((entries, descriptors, keep))
            for source, sink, shape in (
                (entries, self.entries[level], entry_shape),
                (descriptors, self.descriptors[level], desc_shape),
            ):
                m.d.comb += [
                    sink.payload.eq(data.View(shape, source.r_data)),
                    sink.valid.eq(source.r_rdy),
                    source.r_en.eq(sink.ready),
                ]
        all_room = Signal()
        m.d.comb += all_room.eq(Cat(*room).all())
        accept = Signal()
        m.d.comb += [accept.eq(self.jobs.valid & all_room), self.jobs.ready.eq(all_room)]
        for entries, descriptors, keep in writes:
            m.d.comb += [entries.w_en.eq(accept & keep.any()), descriptors.w_en.eq(accept)]
        m.d.comb += [
            self.accepted.eq(accept),
            self.kept.eq(sum(k[p] for k in keep_bits for p in range(cfg.points))),
        ]
        return m
