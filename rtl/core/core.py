"""MSDA core: L level units in parallel behind a pruning dispatcher, joined by an aggregator.

Contract:

* ``jobs``: one (query, head) per beat with all its L*P points (``job_layout``): attention
  logits when ``cfg.softmax`` (the fused ``SoftmaxUnit`` turns them into probabilities,
  ``softmax_latency(cfg)`` cycles, one job per cycle), else probabilities. ``outputs``: one
  rounded head vector per job, in job order (``output_layout``), bit-exact to
  ``sim.bittrue.core`` (with the same ``tau_p``). A job whose points are all pruned yields
  zeros.
* Throughput: the dispatcher takes one job per cycle while it holds credits; level l needs
  ``kept points x head_dim/lanes`` cycles per job, so the core runs at the pace of its busiest
  level, and levels with fewer surviving points run ahead by ``queue_depth`` jobs and more.
* Timing: the blocks meet only over registered crossings (``rtl.lib.inbox``): the dispatcher
  sends entries to each level unit and descriptors to the aggregator, each level unit sends
  its sums to the aggregator, from registers into the receiver's inbox, with credits coming
  back through registers (``rtl.lib.credits``). CSRs, loads, FWP commands and the counters'
  events reach their blocks through registers too.
* ``load``: writes one word into the buffer of level ``level`` (a word outside that level's
  buffer is dropped) a few cycles later. ``widths``/``heights``: each level's current shape
  (CSRs); ``tau_p``: PAP threshold in probability units (CSR). Hold them steady while jobs are
  in flight (they reach the blocks a cycle late).
* FWP (``ImportanceMap`` per level): the samplers count each pixel's importance as they go;
  ``fwp`` takes commands (``fwp_command_layout``): CLEAR and DERIVE act on every level in
  parallel, READ and MASK on pixel (x, y) of ``level`` (< ``levels``). A command waits until
  every accepted job has left on ``outputs``, holds new jobs back meanwhile, and completes
  with ``fwp.ready``; READ answers on ``fwp_result`` (a register) first, and completes once
  the answer is taken. ``tau_f``: the DERIVE threshold
  (CSR, ``tau_f_bits`` fraction). A masked pixel reads 0, and a load into it is not stored.
* Mask probes (``probes=True``, whole maps: the fused layer's value projection skips masked
  pixels): ``probe`` asks for the mask bit of pixel (``x``, ``y``) of ``level``; it is taken
  in a cycle without a ``load`` (``probe.ready`` is ``~load.valid``) and answered in order on
  ``probe_keep`` (always ready: 1 kept, 0 masked) ``PROBE_LATENCY`` cycles later. A pixel
  outside its level's buffer answers kept.
* Maps in external memory (``cfg.window_rows``): no ``load``; each level unit keeps a band
  of its map (``BandWindow``) read through ``axi`` (AXI4 AR/R, one burst reader shared round
  robin by the levels) from ``bases[l]`` (layout ``[head][row][column][channel]``);
  ``new_maps`` (a pulse, with or before any change of shapes or bases) forgets the bands.
  Jobs should come head by head, queries in raster order of their reference points (any
  order is correct; others fetch more). ``mem_error``: the reader's sticky status (cleared
  by ``clear`` and by ``new_maps``); ``mem_idle``: no fetch under way or due. Counters per level
  ``rows_fetched``, ``slow_points``, ``memory_wait`` (cycles a point waited for memory),
  and ``beats_read``.
* Counters (``counter_bits``, wrapping; ``clear`` zeroes them): ``cycles``, ``jobs_in``,
  ``jobs_out``, ``points_kept``, ``points_pruned``, ``off_map`` (kept points entirely off the
  map), ``pixels_masked`` (by DERIVE), ``loads_masked`` (load words not stored, and probes
  answered masked: pixels the fused layer did not project) and per level
  ``busy`` (a chunk entered the sampler) and ``stall`` (a point waited at the sampler's input:
  its output queue full, the level's sums not yet taken by the aggregator, or an FWP command).
  An event shows in its counter ``COUNTER_LAG`` cycles after it happened.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.aggregator import Aggregator
from rtl.core.dispatcher import Dispatcher
from rtl.core.layouts import (
    FwpOp,
    chunk_bits,
    fwp_command_layout,
    fwp_result_layout,
    head_bits,
    job_layout,
    output_layout,
    side_bits,
)
from rtl.core.level_unit import LevelUnit
from rtl.core.softmax import SoftmaxUnit
from rtl.lib.stages import Stages, copy_register
from rtl.memory.axi_reader import AxiReader, axi_read_signature
from rtl.memory.band_window import BandWindow
from rtl.memory.burst_split import request_layout
from rtl.memory.read_arbiter import ReadArbiter

__all__ = [
    "COUNTER_BITS",
    "COUNTER_LAG",
    "PROBE_LATENCY",
    "Core",
    "core_load_layout",
    "probe_layout",
]

COUNTER_BITS = 32
#: an event in cycle t shows in its counter from cycle t + COUNTER_LAG on (``cycles`` counts
#: every cycle as it comes)
COUNTER_LAG = 3
#: cycles from a mask probe taken to its answer on ``probe_keep`` (the level unit's load
#: register, the sampler's with the mask's read, the level unit's answer register, the core's)
PROBE_LATENCY = 4


def core_load_layout(cfg: DefaConfig) -> data.StructLayout:
    max_h = max(h for h, _ in cfg.max_shapes)
    max_w = max(w for _, w in cfg.max_shapes)
    return data.StructLayout(
        {
            "level": unsigned(max(1, (cfg.levels - 1).bit_length())),
            "x": unsigned(max(1, (max_w - 1).bit_length())),
            "y": unsigned(max(1, (max_h - 1).bit_length())),
            "head": unsigned(head_bits(cfg)),
            "chunk": unsigned(chunk_bits(cfg)),
            "data": data.ArrayLayout(signed(cfg.value_bits), cfg.lanes),
        }
    )


def probe_layout(cfg: DefaConfig) -> data.StructLayout:
    """A mask probe: the pixel (``x``, ``y``) of ``level`` (fields as ``core_load_layout``'s)."""
    return data.StructLayout({n: core_load_layout(cfg)[n].shape for n in ("level", "x", "y")})


class Core(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16, probes: bool = False):
        if not 1 <= tag_bits <= 64:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"tag_bits={tag_bits} is out of range: allowed [1, 64]")
        if probes and cfg.streamed:
            self._MustUse__silence = True
            raise ValueError("probes=True needs whole maps on chip: window_rows must be empty")
        self._cfg = cfg
        self._tag_bits = tag_bits
        self._probes = probes
        lv = cfg.levels
        counter = unsigned(COUNTER_BITS)
        if cfg.streamed:
            word = cfg.lanes * cfg.value_bits
            memory = {
                "bases": In(data.ArrayLayout(unsigned(cfg.addr_bits), lv)),
                "new_maps": In(1),
                "axi": Out(axi_read_signature(cfg.addr_bits, word)),
                "mem_error": Out(2),
                "mem_idle": Out(1, init=1),
                "rows_fetched": Out(data.ArrayLayout(counter, lv)),
                "slow_points": Out(data.ArrayLayout(counter, lv)),
                "beats_read": Out(counter),
                "memory_wait": Out(data.ArrayLayout(counter, lv)),
            }
        else:
            memory = {"load": In(stream.Signature(core_load_layout(cfg)))}
            if probes:
                memory["probe"] = In(stream.Signature(probe_layout(cfg)))
                memory["probe_keep"] = Out(stream.Signature(1, always_ready=True))
        super().__init__(
            {
                "jobs": In(stream.Signature(job_layout(cfg, tag_bits))),
                "outputs": Out(stream.Signature(output_layout(cfg, tag_bits))),
                **memory,
                "widths": In(data.ArrayLayout(unsigned(side_bits(cfg)), lv)),
                "heights": In(data.ArrayLayout(unsigned(side_bits(cfg)), lv)),
                "tau_p": In(unsigned(cfg.prob_bits + 1)),
                "clear": In(1),
                "fwp": In(stream.Signature(fwp_command_layout(cfg))),
                "fwp_result": Out(stream.Signature(fwp_result_layout(cfg))),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "cycles": Out(counter),
                "jobs_in": Out(counter),
                "jobs_out": Out(counter),
                "points_kept": Out(counter),
                "points_pruned": Out(counter),
                "off_map": Out(counter),
                "pixels_masked": Out(counter),
                "loads_masked": Out(counter),
                "busy": Out(data.ArrayLayout(counter, lv)),
                "stall": Out(data.ArrayLayout(counter, lv)),
            }
        )

    @property
    def tag_bits(self) -> int:
        return self._tag_bits

    def _fuse_softmax(self, m, dispatcher, admit):
        """Logits -> SoftmaxUnit -> dispatcher; the rest of the job rides along as its tag."""
        cfg = self._cfg
        plain = job_layout(cfg, self._tag_bits, probs=True)
        rest = data.StructLayout({n: f.shape for n, f in plain if n != "prob"})
        m.submodules.softmax = softmax = SoftmaxUnit(cfg, tag_bits=rest.size)
        job = self.jobs.payload
        carried = Signal(rest)
        for name, _ in rest:
            m.d.comb += carried[name].eq(job[name])
        npts = cfg.points
        m.d.comb += [
            softmax.logits.payload.tag.eq(carried.as_value()),
            softmax.logits.valid.eq(self.jobs.valid & admit),
            self.jobs.ready.eq(softmax.logits.ready & admit),
        ]
        for level in range(cfg.levels):
            for p in range(npts):
                m.d.comb += softmax.logits.payload.values[level * npts + p].eq(job.logit[level][p])
        back = data.View(rest, softmax.probs.payload.tag)
        for name, _ in rest:
            m.d.comb += dispatcher.jobs.payload[name].eq(back[name])
        for level in range(cfg.levels):
            m.d.comb += dispatcher.jobs.payload.keep[level].eq(
                softmax.probs.payload.keep[level * npts : (level + 1) * npts]
            )
            for p in range(npts):
                m.d.comb += dispatcher.jobs.payload.prob[level][p].eq(
                    softmax.probs.payload.values[level * npts + p]
                )
        m.d.comb += [
            softmax.tau_p.eq(self.tau_p),
            dispatcher.jobs.valid.eq(softmax.probs.valid),
            softmax.probs.ready.eq(dispatcher.jobs.ready),
        ]

    def _fwp(self, m, units):
        """FWP commands: wait until no job is in flight, then send them to their levels through
        a register per level; the command completes once every level it names has finished."""
        # in_flight counts jobs accepted and not yet out (far fewer fit in the core) from the
        # registered handshakes; idle (a register) is in_flight == 0 a cycle late, and drained
        # (a register) also waits for the jobs accepted in the last three cycles, which idle
        # does not show yet: drained is never early, and late by three cycles at most. No
        # adder reaches a compare in one cycle.
        in_flight = Signal(16)
        idle = Signal(init=1)
        drained = Signal(init=1)
        accepted = self.jobs.valid & self.jobs.ready
        job_in = Signal()
        job_out = Signal()
        recent = Signal(2)  # accepted one and two cycles ago (job_in is the first)
        m.d.sync += [
            job_in.eq(accepted),
            job_out.eq(self.outputs.valid & self.outputs.ready),
            recent.eq(Cat(accepted, recent[0])),
            in_flight.eq(in_flight + job_in - job_out),
            idle.eq(in_flight == 0),
            drained.eq(idle & ~accepted & ~recent.any()),
        ]
        cmd = self.fwp.payload
        every_level = (cmd.op == FwpOp.CLEAR) | (cmd.op == FwpOp.DERIVE)
        go = self.fwp.valid & drained
        finished = []
        for level, unit in enumerate(units):
            issued = Signal(name=f"fwp_issued{level}")  # sent to this level (until the end)
            done = Signal(name=f"fwp_done{level}")  # this level has finished the command
            target = Signal(name=f"fwp_target{level}")
            m.d.comb += target.eq(every_level | (cmd.level == level))
            # the level's own register of the command (kept by synthesis, see copy_register)
            command = copy_register(unit.fwp.payload.shape(), name=f"fwp_command{level}")
            m.d.comb += unit.fwp.payload.eq(command)
            m.d.sync += [
                command.op.eq(cmd.op),
                command.x.eq(cmd.x),
                command.y.eq(cmd.y),
                command.keep.eq(cmd.keep),
            ]
            with m.If(self.fwp.ready):
                m.d.sync += [issued.eq(0), done.eq(0), unit.fwp.valid.eq(0)]
            with m.Elif(unit.fwp.valid & unit.fwp.ready):
                m.d.sync += [done.eq(1), unit.fwp.valid.eq(0)]
            with m.Elif(go & target & ~issued):
                m.d.sync += [issued.eq(1), unit.fwp.valid.eq(1)]
            finished.append(~target | done)
            # READ's answer, registered on its way out (one level answers per command)
            m.d.comb += unit.fwp_result.ready.eq(~self.fwp_result.valid)
            with m.If(unit.fwp_result.valid & ~self.fwp_result.valid):
                m.d.sync += [
                    self.fwp_result.payload.eq(unit.fwp_result.payload),
                    self.fwp_result.valid.eq(1),
                ]
        with m.If(self.fwp_result.valid & self.fwp_result.ready):
            m.d.sync += self.fwp_result.valid.eq(0)
        # A command completes only once its answer is out (READ answers before ``fwp.ready``);
        # ``fwp.ready`` is a register (a pulse the cycle after every level named has finished),
        # so the levels' state and the drain reach no one else's decision in the same cycle.
        answered = ~self.fwp_result.valid
        complete = Signal(name="fwp_complete")
        m.d.sync += complete.eq(go & Cat(*finished).all() & answered & ~complete)
        m.d.comb += self.fwp.ready.eq(complete)

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.dispatcher = dispatcher = Dispatcher(cfg, self._tag_bits)
        m.submodules.aggregator = aggregator = Aggregator(cfg, self._tag_bits)
        admit = ~self.fwp.valid  # an FWP command holds new jobs back
        if cfg.softmax:
            self._fuse_softmax(m, dispatcher, admit)
        else:
            # probabilities from outside: PAP's compares here, on the way into the dispatcher
            job = self.jobs.payload
            tau_p = Signal.like(self.tau_p, name="tau_p_local")
            m.d.sync += tau_p.eq(self.tau_p)
            for name, _ in job.shape():
                m.d.comb += dispatcher.jobs.payload[name].eq(job[name])
            for level in range(cfg.levels):
                for p in range(cfg.points):
                    m.d.comb += dispatcher.jobs.payload.keep[level][p].eq(
                        job.prob[level][p] >= tau_p
                    )
            m.d.comb += [
                dispatcher.jobs.valid.eq(self.jobs.valid & admit),
                self.jobs.ready.eq(dispatcher.jobs.ready & admit),
            ]
        wiring.connect(m, aggregator.outputs, wiring.flipped(self.outputs))
        wiring.connect(m, dispatcher.descriptors, aggregator.descriptors)

        units = []
        for level in range(cfg.levels):
            unit = LevelUnit(cfg, level)
            m.submodules[f"level{level}"] = unit
            units.append(unit)
            wiring.connect(m, dispatcher.entries[level], unit.entries)
            wiring.connect(m, unit.sums, aggregator.sums[level])
            m.d.comb += [
                unit.width.eq(self.widths[level]),
                unit.height.eq(self.heights[level]),
                unit.tau_f.eq(self.tau_f),
            ]
        if cfg.streamed:
            self._memory(m, units)
        else:
            self._loads(m, units)

        self._fwp(m, units)
        self._counters(m, dispatcher, units)
        return m

    def _loads(self, m, units):
        """Whole maps on chip: each load word to its level's buffer; with probes, a probe takes
        the load path in a cycle without a load, and the levels' answers come back through
        registers."""
        cfg = self._cfg
        m.d.comb += self.load.ready.eq(1)
        load = self.load.payload
        # what reaches the levels this cycle (plain selects, no conditional block: Icarus
        # leaves such a block X until one of its inputs changes)
        word = Signal(core_load_layout(cfg))
        asking = Signal()  # a probe, not a load
        probe = self.probe.payload if self._probes else None
        for name, _ in word.shape():
            chosen = load[name]
            if self._probes and name in ("level", "x", "y"):
                chosen = Mux(self.load.valid, load[name], probe[name])
            m.d.comb += word[name].eq(chosen)
        if self._probes:
            m.d.comb += [self.probe.ready.eq(~self.load.valid), asking.eq(self.probe.valid)]
        level_hit = Signal(cfg.levels)  # one-hot of the word's level
        m.d.comb += level_hit.eq(1 << word.level)
        outside = Signal()  # a probe outside its level's buffer: the core answers it
        hits = []
        for level, unit in enumerate(units):
            height, width = cfg.max_shapes[level]
            inside = level_hit[level] & (word.x < width) & (word.y < height)
            hits.append(inside)
            m.d.comb += [
                unit.load.valid.eq((self.load.valid | asking) & inside),
                unit.load.payload.x.eq(word.x),
                unit.load.payload.y.eq(word.y),
                unit.load.payload.head.eq(word.head),
                unit.load.payload.chunk.eq(word.chunk),
                unit.load.payload.data.eq(word.data),
                unit.load.payload.probe.eq(asking & ~self.load.valid),
            ]
        if not self._probes:
            return
        m.d.comb += outside.eq(asking & ~self.load.valid & ~Cat(*hits).any())
        # the core's own answers travel as long as the levels' (PROBE_LATENCY - 1 registers,
        # then the answer register)
        stray = Signal(PROBE_LATENCY - 1)
        m.d.sync += stray.eq(Cat(outside, stray[:-1]))
        answered = Cat(*(unit.probed for unit in units)).any()
        kept = Cat(*(unit.probed & unit.probed_keep for unit in units)).any()
        m.d.sync += [
            self.probe_keep.valid.eq(answered | stray[-1]),
            self.probe_keep.payload.eq(kept | stray[-1]),
        ]

    #: bursts the map reader keeps in flight
    OUTSTANDING = 4

    def _memory(self, m, units):
        """Maps in external memory: the levels' band windows share one AXI4 burst reader
        through a round-robin arbiter; bases and ``new_maps`` reach them through the units'
        registers, as the shapes do."""
        cfg = self._cfg
        word = cfg.lanes * cfg.value_bits
        beats_bits = max(BandWindow.beats_bits_of(cfg, lv) for lv in range(cfg.levels))
        layout = request_layout(cfg.addr_bits, beats_bits)
        m.submodules.reader = reader = AxiReader(
            addr_bits=cfg.addr_bits,
            data_bits=word,
            beats_bits=beats_bits,
            max_burst=cfg.max_burst,
            queue_depth=2 * cfg.max_burst,
            outstanding=self.OUTSTANDING,
        )
        m.submodules.arbiter = arbiter = ReadArbiter(
            cfg.levels, layout, word, depth=self.OUTSTANDING + 2
        )
        wiring.connect(m, arbiter.request, reader.requests)
        wiring.connect(m, reader.data, arbiter.data)
        wiring.connect(m, wiring.flipped(self.axi), reader.axi)
        m.d.comb += [self.mem_error.eq(reader.error), reader.clear.eq(self.clear | self.new_maps)]
        m.d.sync += self.mem_idle.eq(Cat(*(u.memory_idle for u in units)).all())
        for level, unit in enumerate(units):
            requests = arbiter.requests[level]
            m.d.comb += [
                requests.valid.eq(unit.requests.valid),
                requests.payload.addr.eq(unit.requests.payload.addr),
                requests.payload.beats.eq(unit.requests.payload.beats),
                unit.requests.ready.eq(requests.ready),
                unit.beats.valid.eq(arbiter.beats[level].valid),
                unit.beats.payload.eq(arbiter.beats[level].payload),
                arbiter.beats[level].ready.eq(1),
                unit.base.eq(self.bases[level]),
                # registered in the unit, as the shapes are: the band is forgotten in the
                # cycle a new shape arrives, so no fetch starts from the old band
                unit.new_map.eq(self.new_maps),
            ]
        self._reader = reader

    def _counters(self, m, dispatcher, units):
        """Event counters. Every event reaches its counter through registers (the level units'
        pulses, then a registered sum over levels), ``COUNTER_LAG`` cycles at most after it
        happened; ``cycles`` counts every cycle as it comes."""

        registered = Stages(m).reg  # one register each, on every cycle
        kept = registered(
            Mux(dispatcher.accepted, dispatcher.kept, 0), dispatcher.kept.shape(), "ev_kept"
        )
        pruned = registered(
            Mux(dispatcher.accepted, dispatcher.pruned, 0), dispatcher.pruned.shape(), "ev_pruned"
        )
        per_level = range(len(units) * 4 + 1)
        events = [
            (self.cycles, 1),
            (self.jobs_in, registered(dispatcher.accepted, 1, "ev_in")),
            (self.jobs_out, registered(self.outputs.valid & self.outputs.ready, 1, "ev_out")),
            (self.points_kept, kept),
            (self.points_pruned, pruned),
            (self.off_map, registered(sum(u.off_map for u in units), per_level, "ev_off_map")),
            (self.pixels_masked, registered(sum(u.masked for u in units), per_level, "ev_masked")),
            (
                self.loads_masked,
                registered(sum(u.load_masked for u in units), per_level, "ev_loads_masked"),
            ),
        ]
        for level, unit in enumerate(units):
            events += [(self.busy[level], unit.busy), (self.stall[level], unit.stall)]
        if self._cfg.streamed:
            beat = self._reader.data
            events.append((self.beats_read, registered(beat.valid & beat.ready, 1, "ev_beats")))
            for lv, u in enumerate(units):
                events += [
                    (self.rows_fetched[lv], u.refill),
                    (self.slow_points[lv], u.slow),
                    (self.memory_wait[lv], u.wait),
                ]
        for counter, increment in events:
            with m.If(self.clear):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + increment)
