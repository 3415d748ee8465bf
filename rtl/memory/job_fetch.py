"""Job fetch: a run's jobs read from memory by an AXI4 burst reader onto the core's job stream.

Contract:

* Memory layout (``job_beats``, ``job_bytes``): job k of a run lives at ``base + k *
  job_bytes``, the job packed as ``job_layout`` (bit 0 of the layout at bit 0 of the first
  byte, little-endian bytes), zero-padded to ``job_beats`` beats of ``word_bits``.
* ``start`` (a pulse, while ``idle``) takes ``base`` (a multiple of the beat's bytes: the
  caller checks) and ``count``; the fetch then reads ``count * job_beats`` beats in requests
  of at most ``CHUNK`` beats and sends ``count`` jobs on ``jobs`` in memory order.
* ``error``: the reader's (``AxiReader``: bit 0 a beat answered SLVERR/DECERR, the run still
  completes with that beat's data; bit 1 a malformed request), sticky until ``clear``.
* ``idle``: every job of the run has left on ``jobs`` (and so every beat asked for came).

Timing: requests and jobs leave registers; a job is assembled in a shift register one beat
per cycle and handed to the output register whole, so ``jobs.ready`` reaches only that
register's enable. Throughput: a job per ``max(job_beats, 2)`` cycles from the reader's
beats (the reader: one beat per cycle).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import job_layout
from rtl.memory.axi_reader import AxiReader, axi_read_signature

__all__ = ["CHUNK", "JobFetch", "job_beats"]

#: beats per read request (the reader splits each into bursts of ``max_burst``)
CHUNK = 256


def job_beats(cfg: DefaConfig, tag_bits: int) -> int:
    """Beats of ``lanes * value_bits`` bits one job takes in memory."""
    word = cfg.lanes * cfg.value_bits
    return -(-job_layout(cfg, tag_bits).size // word)


class JobFetch(wiring.Component):
    def __init__(self, cfg: DefaConfig, tag_bits: int, *, count_bits: int = 32):
        self._cfg = cfg
        self.word_bits = cfg.lanes * cfg.value_bits
        self.job_beats = job_beats(cfg, tag_bits)
        self.job_bytes = self.job_beats * self.word_bits // 8
        self._layout = job_layout(cfg, tag_bits)
        self._total_bits = count_bits + self.job_beats.bit_length()
        super().__init__(
            {
                "start": In(1),
                "base": In(unsigned(cfg.addr_bits)),
                "count": In(unsigned(count_bits)),
                "jobs": Out(stream.Signature(self._layout)),
                "axi": Out(axi_read_signature(cfg.addr_bits, self.word_bits)),
                "error": Out(2),
                "clear": In(1),
                "idle": Out(1, init=1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        word, beats_per_job = self.word_bits, self.job_beats
        m = Module()
        m.submodules.reader = reader = AxiReader(
            addr_bits=cfg.addr_bits,
            data_bits=word,
            beats_bits=CHUNK.bit_length(),
            max_burst=cfg.max_burst,
            queue_depth=2 * cfg.max_burst,
        )
        wiring.connect(m, reader.axi, wiring.flipped(self.axi))
        m.d.comb += [self.error.eq(reader.error), reader.clear.eq(self.clear)]

        # Requests: the run's beats, CHUNK at a time (the size a compare behind a register).
        beats_left = Signal(self._total_bits)
        addr = Signal(cfg.addr_bits)
        full_chunk = Signal()
        asking = Signal()
        m.d.comb += [
            reader.requests.valid.eq(asking),
            reader.requests.payload.addr.eq(addr),
            reader.requests.payload.beats.eq(Mux(full_chunk, CHUNK, beats_left)),
        ]
        m.d.sync += full_chunk.eq(beats_left >= CHUNK)
        with m.If(self.start):
            m.d.sync += [beats_left.eq(self.count * beats_per_job), addr.eq(self.base)]
        with m.Elif(asking):
            with m.If(reader.requests.ready):
                step = Mux(full_chunk, CHUNK, beats_left)
                m.d.sync += [
                    asking.eq(0),
                    beats_left.eq(beats_left - step),
                    addr.eq(addr + CHUNK * word // 8),
                ]
        with m.Elif(beats_left != 0):
            m.d.sync += asking.eq(1)

        # Assembly: beats shift in from the top; a whole job moves to the output register.
        assembly = Signal(beats_per_job * word)
        beat = Signal(range(max(2, beats_per_job)))
        whole = Signal()  # assembly holds a whole job
        m.d.comb += reader.data.ready.eq(~whole)
        with m.If(reader.data.valid & ~whole):
            m.d.sync += assembly.eq(Cat(assembly[word:], reader.data.payload.data))
            with m.If(beat == beats_per_job - 1):
                m.d.sync += [beat.eq(0), whole.eq(1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        job = Signal(self._layout.size)
        m.d.comb += self.jobs.payload.eq(job)
        with m.If(self.jobs.valid & self.jobs.ready):
            m.d.sync += self.jobs.valid.eq(0)
        with m.If(whole & ~self.jobs.valid):
            m.d.sync += [
                job.eq(assembly[: self._layout.size]),
                self.jobs.valid.eq(1),
                whole.eq(0),
            ]

        # Idle once the run's last job has left (every beat asked for was then taken).
        jobs_left = Signal.like(self.count)
        with m.If(self.start):
            m.d.sync += jobs_left.eq(self.count)
        with m.Elif(self.jobs.valid & self.jobs.ready):
            m.d.sync += jobs_left.eq(jobs_left - 1)
        m.d.sync += self.idle.eq((jobs_left == 0) & ~self.start)
        return m
