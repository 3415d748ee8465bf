"""The query projector: the fused layer's offset and attention projections of each query,
assembled into the core's jobs (the offsets and logits go straight to the softmax and the
dispatcher: nothing leaves the chip).

Contract:

* ``queries``: each query's row of ``d_model`` activation codes (positional embedding already
  added) as ``ceil(d_model / proj_lanes)`` beats of ``proj_lanes`` codes; both projection
  units take each beat together.
* ``refs``: one beat per query, in the same order: its ``tag`` and its reference point per
  level (``ref_x``/``ref_y``, the job's words: ``ref * W_l`` and ``ref * H_l`` with
  ``coord_frac_bits`` fraction).
* ``jobs``: per query, one job per head in head order (the core's ``job_layout``): the
  offsets of head h are output channels ``((h * L + l) * P + p) * 2 + (0: x, 1: y)`` of the
  offset projection, its logits channels ``(h * L + l) * P + p`` of the attention projection
  (``sim.layer``'s order, transformers').
* Throughput: the offset unit's, ``2 * L * P * ceil(d_model / proj_lanes)`` cycles per head
  (the attention unit, half as long, waits on its gathered head). A job waits in a register
  until taken; ``jobs.ready`` reaches only enables of this block's registers.
* Constants load through ``offsets_*`` and ``logits_*`` (``ProjectionUnit``'s ``w_*``,
  ``c_*``) while ``idle``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import job_layout
from rtl.layer.projection import ProjectionUnit, constant_ports, drive_constants

__all__ = ["QueryProjector", "ref_layout"]


def ref_layout(cfg: DefaConfig, tag_bits: int) -> data.StructLayout:
    """A query's tag and reference point on every level (the job's fields)."""
    lv = cfg.levels
    return data.StructLayout(
        {
            "tag": unsigned(tag_bits),
            "ref_x": data.ArrayLayout(unsigned(cfg.ref_bits), lv),
            "ref_y": data.ArrayLayout(unsigned(cfg.ref_bits), lv),
        }
    )


class QueryProjector(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        if not cfg.softmax:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                "the query projector feeds attention logits to the core's softmax: it needs "
                "softmax=true"
            )
        self._cfg, self._tag_bits = cfg, tag_bits
        self.offsets = ProjectionUnit.of(cfg, "offsets")
        self.logits = ProjectionUnit.of(cfg, "logits")
        ports = {
            "queries": In(stream.Signature(self.offsets.rows.payload.shape())),
            "refs": In(stream.Signature(ref_layout(cfg, tag_bits))),
            "jobs": Out(stream.Signature(job_layout(cfg, tag_bits))),
            "idle": Out(1),
        }
        ports |= constant_ports(self.offsets, "offsets_") | constant_ports(self.logits, "logits_")
        super().__init__(ports)

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        off, log = self.offsets, self.logits
        m.submodules.offsets = off
        m.submodules.logits = log
        drive_constants(m, off, self, prefix="offsets_")
        drive_constants(m, log, self, prefix="logits_")
        # both units take each query beat together (their readies are registers)
        q = self.queries
        m.d.comb += [
            off.rows.payload.eq(q.payload),
            log.rows.payload.eq(q.payload),
            off.rows.valid.eq(q.valid & log.rows.ready),
            log.rows.valid.eq(q.valid & off.rows.ready),
            q.ready.eq(off.rows.ready & log.rows.ready),
        ]

        lv, p = cfg.levels, cfg.points
        job = Signal(self.jobs.payload.shape(), name="job")
        # -- gather one head's offsets (x, y per point) and logits ---------------------------
        off_x = Signal(job.off_x.shape(), name="off_x")
        off_y = Signal(job.off_y.shape(), name="off_y")
        logit = Signal(job.logit.shape(), name="logit")
        off_i = Signal(range(2 * lv * p), name="off_i")
        log_i = Signal(range(max(2, lv * p)), name="log_i")
        off_done = Signal(name="off_done")
        log_done = Signal(name="log_done")
        m.d.comb += [off.out.ready.eq(~off_done), log.out.ready.eq(~log_done)]
        with m.If(off.out.valid & ~off_done):
            with m.Switch(off_i):
                for i in range(2 * lv * p):
                    level, point, axis = i // (2 * p), (i // 2) % p, i % 2
                    target = (off_y if axis else off_x)[level][point]
                    with m.Case(i):
                        m.d.sync += target.eq(off.out.payload.data)
            m.d.sync += off_i.eq(off_i + 1)
            with m.If(off_i == 2 * lv * p - 1):
                m.d.sync += [off_i.eq(0), off_done.eq(1)]
        with m.If(log.out.valid & ~log_done):
            with m.Switch(log_i):
                for i in range(lv * p):
                    with m.Case(i):
                        m.d.sync += logit[i // p][i % p].eq(log.out.payload.data)
            m.d.sync += log_i.eq(0 if lv * p == 1 else log_i + 1)
            with m.If(log_i == lv * p - 1):
                m.d.sync += [log_i.eq(0), log_done.eq(1)]

        # -- the query's reference point, held for its heads ---------------------------------
        ref = Signal(self.refs.payload.shape(), name="ref")
        ref_valid = Signal(name="ref_valid")
        m.d.comb += self.refs.ready.eq(~ref_valid)
        with m.If(self.refs.valid & ~ref_valid):
            m.d.sync += [ref.eq(self.refs.payload), ref_valid.eq(1)]

        # -- a head's job into the job register ------------------------------------------------
        head = Signal(job.head.shape(), name="head")
        job_valid = Signal(name="job_valid")
        m.d.comb += [self.jobs.valid.eq(job_valid), self.jobs.payload.eq(job)]
        with m.If(job_valid & self.jobs.ready):
            m.d.sync += job_valid.eq(0)
        with m.If(off_done & log_done & ref_valid & (~job_valid | self.jobs.ready)):
            m.d.sync += [
                job.tag.eq(ref.tag),
                job.head.eq(head),
                job.ref_x.eq(ref.ref_x),
                job.ref_y.eq(ref.ref_y),
                job.off_x.eq(off_x),
                job.off_y.eq(off_y),
                job.logit.eq(logit),
                job_valid.eq(1),
                off_done.eq(0),
                log_done.eq(0),
                head.eq(head + 1),
            ]
            with m.If(head == cfg.heads - 1):
                m.d.sync += [head.eq(0), ref_valid.eq(0)]
        busy = off_done | log_done | ref_valid | job_valid | (off_i != 0) | (log_i != 0)
        m.d.comb += self.idle.eq(off.idle & log.idle & ~busy)
        return m
