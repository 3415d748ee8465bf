"""Grid-sampling unit of one level: sampling points in, probability-weighted bilinear head
vectors out, ``lanes`` channels per cycle.

Contract:

* ``points`` (stream of ``point_layout``): a point of one head. ``partials`` (stream of
  ``partial_layout``): for each point, ``head_dim // lanes`` beats (chunks) in channel order,
  the last with ``last`` set, each carrying the point's ``tag``; lane i of chunk c is
  ``sum_k coeff_k * v[corner_k, head, c*lanes + i]`` exactly as ``sim.bittrue.sample_points``
  (no rounding here: the aggregation rounds once).
* Order: outputs leave in the order points arrived; nothing is lost or duplicated under any
  pattern of input gaps and output backpressure. The pipeline itself never stalls (no enable
  on its registers): it ends in a queue of ``Sampler.queue_depth_of(cfg)`` beats, and a chunk
  enters only while fewer beats than that are in flight, so ``partials.ready`` low fills the
  queue and then holds new chunks back.
* Throughput: one chunk per cycle, so one point per cycle when ``lanes == head_dim``
  (initiation interval 1); ``points.ready`` is high on the last chunk of a point.
* Latency: ``Sampler.latency_of(cfg)`` (23 for 8 coordinate fraction bits) cycles from a
  point's acceptance (``points.ready``, which comes with its last chunk) to its last beat on
  ``partials`` when the queue is empty; its first beat leaves ``head_dim // lanes - 1`` cycles
  earlier. Pipeline: A input register, B coordinates, C the coefficient unit (and, started
  to finish with it, the FWP read: mask bits and importance update), then the masked
  coefficients registered once per group of ``GROUP`` multipliers while the buffer read
  (started to finish a cycle later) delivers its words; D both in the multipliers' input
  registers, E products (their output registers), F the products summed in pairs, G the sums
  of the four corners, H the queue's write word (readable two cycles later).
* ``off_map`` flags a point none of whose corners lies on the map; ``busy`` is high in cycles
  where a chunk enters the pipeline.
* ``width``, ``height``: the level's shape (1 .. max_shapes[level]); hold them steady while
  points are in flight. ``load``: writes the level buffer (see ``LevelBuffer``) four cycles
  after acceptance, unless FWP masks the pixel: then the word is not stored and
  ``load_masked`` pulses. A ``load`` word with ``probe`` set writes nothing: one cycle after
  acceptance ``probed`` pulses with ``probed_keep``, the pixel's mask bit (1 outside the
  level's buffer; ``load_masked`` pulses for a masked one).
* FWP (see ``ImportanceMap``): every point updates the importance counters of its four
  corners with its coefficients; a masked corner reads as 0. An ``fwp`` command waits for the
  pipeline to drain, holds new points back (at a point boundary, from the cycle after
  ``fwp.valid`` rises) until it is done, and completes with ``fwp.ready``, a register that
  pulses the cycle after: the sender drops ``fwp.valid`` after that pulse, and a command is
  taken again only after ``fwp.valid`` has been low. READ answers on ``fwp_result`` from a
  register. ``masked`` counts the pixels DERIVE masks, per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.coeff import CoefficientUnit
from rtl.core.coord import CoordinateUnit
from rtl.core.importance_map import ImportanceMap
from rtl.core.layouts import (
    TAG_BITS,
    chunk_bits,
    fill_layout,
    fwp_command_layout,
    fwp_result_layout,
    head_bits,
    load_layout,
    partial_bits,
    partial_layout,
    point_layout,
    side_bits,
)
from rtl.core.level_buffer import LevelBuffer
from rtl.lib.credit_queue import CreditQueue
from rtl.lib.inbox import slices_of
from rtl.lib.multiplier import Multiplier
from rtl.lib.stages import copy_register

__all__ = ["Sampler"]


class Sampler(wiring.Component):
    #: cycles from acceptance of a point to its last output beat (no stalls)
    @staticmethod
    def latency_of(cfg: DefaConfig) -> int:
        return 1 + CoordinateUnit.latency + Sampler.reads_of(cfg) + 7

    #: multipliers (lanes of one bank) that share one copy of a masked coefficient
    GROUP = 4

    @staticmethod
    def reads_of(cfg: DefaConfig) -> int:
        """Cycles from the coordinates to the multipliers' inputs: the coefficient unit and
        the register of masked coefficient copies."""
        return CoefficientUnit.latency_of(cfg) + 1

    #: beats the output queue holds: the pipeline's depth and three, so that credits never
    #: throttle a sampler whose output is taken every cycle
    @staticmethod
    def queue_depth_of(cfg: DefaConfig) -> int:
        return Sampler.latency_of(cfg) + 3

    def __init__(self, cfg: DefaConfig, level: int = 0, *, tag_bits: int = TAG_BITS):
        if not 1 <= tag_bits <= 64:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"tag_bits={tag_bits} is out of range: allowed [1, 64]")
        if not 0 <= level < cfg.levels:
            self._MustUse__silence = True
            raise ValueError(f"level={level} is out of range: allowed [0, {cfg.levels - 1}]")
        self._cfg = cfg
        self._level = level
        self._tag_bits = tag_bits
        self.latency = self.latency_of(cfg)
        super().__init__(
            {
                "points": In(stream.Signature(point_layout(cfg, tag_bits, patch=cfg.streamed))),
                "partials": Out(stream.Signature(partial_layout(cfg, tag_bits))),
                # the consumer's ready again, one equal bit per slice of the output queue
                "partials_ready_slices": In(slices_of(partial_layout(cfg, tag_bits))),
                **(
                    {
                        "fill": In(stream.Signature(fill_layout(cfg, level))),
                        "probe_x": In(unsigned(side_bits(cfg))),
                        "probe_y": In(unsigned(side_bits(cfg))),
                        "probe_keep": Out(1),
                        "any_masked": Out(1),
                    }
                    if cfg.streamed
                    else {
                        "load": In(stream.Signature(load_layout(cfg, level))),
                        "probed": Out(1),
                        "probed_keep": Out(1),
                    }
                ),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "busy": Out(1),
                "fwp": In(stream.Signature(fwp_command_layout(cfg, level))),
                "fwp_result": Out(stream.Signature(fwp_result_layout(cfg))),
                "tau_f": In(unsigned(cfg.tau_f_bits)),
                "masked": Out(range(5)),
                "load_masked": Out(1),
            }
        )

    @property
    def cycles_per_point(self) -> int:
        return self._cfg.cycles_per_point

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.coord = coord = CoordinateUnit(cfg)
        m.submodules.coeff = coeff = CoefficientUnit(cfg)
        m.submodules.buffer = buffer = LevelBuffer(cfg, self._level)
        m.submodules.fwp = fwp = ImportanceMap(cfg, self._level)
        m.d.comb += [
            fwp.width.eq(self.width),
            fwp.height.eq(self.height),
            fwp.tau_f.eq(self.tau_f),
            self.masked.eq(fwp.masked),
        ]
        # READ's answer leaves through a register: the map's FSM reaches no other block
        result_valid = Signal()
        m.d.comb += [fwp.result.ready.eq(~result_valid), self.fwp_result.valid.eq(result_valid)]
        # (the payload loads whenever nothing is held: its enable is a register, not the FSM's
        # decode of a valid answer, and it holds the answer from the cycle valid is set; one
        # copy of that register per four bits, each next to its bits)
        payload, answer = self.fwp_result.payload.as_value(), fwp.result.payload.as_value()
        for i, lsb in enumerate(range(0, len(payload), 4)):
            held = copy_register(1, name=f"fwp_result_held{i}")
            with m.If(~held):
                m.d.sync += payload[lsb : lsb + 4].eq(answer[lsb : lsb + 4])
            with m.If(fwp.result.valid & ~result_valid):
                m.d.sync += held.eq(1)
            with m.Elif(self.fwp_result.ready):
                m.d.sync += held.eq(0)
        with m.If(fwp.result.valid & ~result_valid):
            m.d.sync += result_valid.eq(1)
        with m.Elif(self.fwp_result.ready):
            m.d.sync += result_valid.eq(0)

        if cfg.streamed:
            # A band's fills go straight in (the band window decides what and when, and
            # probes the mask to fetch no masked pixel); FWP still zeroes a masked corner's
            # coefficient as it is read.
            wiring.connect(m, wiring.flipped(self.fill), buffer.fill)
            m.d.comb += [
                fwp.probe_x.eq(self.probe_x),
                fwp.probe_y.eq(self.probe_y),
                self.probe_keep.eq(fwp.probe_keep),
                self.any_masked.eq(fwp.any_masked),
                self.load_masked.eq(0),
            ]
        else:
            self._loads(m, buffer, fwp)
        self._pipeline(m, coord, coeff, buffer, fwp)
        return m

    def _loads(self, m, buffer, fwp):
        """Loads: the pixel's mask bit is probed while the word waits one cycle; a probe word
        (``probe``) writes nothing and answers on ``probed``/``probed_keep`` then."""
        load = Signal(self.load.payload.shape())
        load_valid = Signal()
        height, width = self._cfg.max_shapes[self._level]
        inside = (load.x < width) & (load.y < height)
        m.d.sync += [load.eq(self.load.payload), load_valid.eq(self.load.valid)]
        m.d.comb += [
            self.load.ready.eq(1),
            fwp.probe_x.eq(self.load.payload.x),
            fwp.probe_y.eq(self.load.payload.y),
            buffer.load.payload.eq(load),
            buffer.load.valid.eq(load_valid & ~load.probe & fwp.probe_keep),
            self.load_masked.eq(load_valid & ~fwp.probe_keep & inside),
            self.probed.eq(load_valid & load.probe),
            self.probed_keep.eq(fwp.probe_keep | ~inside),
        ]

    def _pipeline(self, m, coord, coeff, buffer, fwp):
        cfg = self._cfg
        chunks = cfg.cycles_per_point

        # The pipeline never stalls (no enable fans out to its registers): it ends in a queue
        # of `depth` beats, and a chunk enters only while fewer than `depth` are in flight
        # (inside the pipeline or waiting in the queue), so the queue never overflows.
        for unit in (coord, coeff):
            m.d.comb += unit.en.eq(1)
        # (its storage's pointers copied per 16 bits: the lanes' words feed accumulators spread
        # along the level's multipliers)
        m.submodules.queue = queue = CreditQueue(
            self.partials.payload.shape(),
            self.queue_depth_of(cfg),
            room_copies=1,
            slice_ready=True,
            address_group=16,
            late_enter=True,  # the take is decided at the input, the count sits by the queue
        )
        wiring.connect(m, queue.out, wiring.flipped(self.partials))
        m.d.comb += queue.ready_slices.eq(self.partials_ready_slices)

        def stage(name, shape):
            return Signal(shape, name=name)

        def registered(signals: dict, name: str) -> dict:
            """``signals`` one cycle later: a register each, named ``<name>_<key>``."""
            out = {key: Signal.like(value, name=f"{name}_{key}") for key, value in signals.items()}
            m.d.sync += [out[key].eq(value) for key, value in signals.items()]
            return out

        # A: input register; a point is presented once per chunk.
        # An FWP command holds new points back from the next point boundary on.
        chunk_count = Signal(unsigned(chunk_bits(cfg)))
        take = Signal()
        hold = Signal()  # an FWP command is waiting (a register: from the cycle after)
        m.d.sync += hold.eq(self.fwp.valid)
        # ``points.ready`` (high on a point's last chunk with room) is decided from registers
        # of its own, kept apart for the selector's side: copies of the queue's room, of the
        # hold and of "this is the last chunk"; the chunk position is kept in flags, not
        # decoded from the count. (It does not wait for ``points.valid``: the selector's pop
        # decision does not go through this unit.)
        if chunks > 1:
            first_chunk = Signal(init=1, name="first_chunk")  # chunk_count == 0
            last_chunk = Signal(name="last_chunk")  # chunk_count == chunks - 1
            last_sel = copy_register(1, name="last_chunk_sel")
            with m.If(take):
                m.d.sync += [
                    chunk_count.eq(Mux(last_chunk, 0, chunk_count + 1)),
                    first_chunk.eq(last_chunk),
                    last_chunk.eq(chunk_count == chunks - 2),
                    last_sel.eq(chunk_count == chunks - 2),
                ]
            # on a last chunk (never the first) only the room counts
            m.d.comb += self.points.ready.eq(last_sel & queue.room_copies[0])
        else:
            # one chunk per point: the count is a constant 0 and every chunk the last (spelled
            # out: synthesis would keep a register that never leaves 0 on the selector's path)
            first_chunk, last_chunk = Const(1, 1), Const(1, 1)
            hold_sel = copy_register(1, name="hold_sel")
            m.d.sync += hold_sel.eq(self.fwp.valid)
            m.d.comb += self.points.ready.eq(queue.room_copies[0] & ~hold_sel)
        m.d.comb += take.eq(queue.room & ~(hold & first_chunk) & self.points.valid)
        m.d.comb += [self.busy.eq(take), queue.enter.eq(take), queue.enter_copies.eq(take)]
        point = self.points.payload
        a = {
            "valid": stage("a_valid", 1),
            "point": Signal(self.points.payload.shape(), name="a_point"),
            "chunk": stage("a_chunk", chunk_bits(cfg)),
            "last": stage("a_last", 1),
        }
        m.d.sync += [
            a["valid"].eq(take),
            a["point"].eq(point),
            a["chunk"].eq(chunk_count),
            a["last"].eq(last_chunk),
        ]

        # B: coordinates (CoordinateUnit registers them).
        m.d.comb += [
            coord.ref_x.eq(a["point"].ref_x),
            coord.ref_y.eq(a["point"].ref_y),
            coord.off_x.eq(a["point"].off_x),
            coord.off_y.eq(a["point"].off_y),
            coord.width.eq(self.width),
            coord.height.eq(self.height),
        ]
        tail = ("valid", "chunk", "last", "tag", "head", "prob") + (
            ("patch",) if cfg.streamed else ()
        )
        carried = {
            **({"patch": (1, a["point"].patch)} if cfg.streamed else {}),
            "valid": (1, a["valid"]),
            "chunk": (chunk_bits(cfg), a["chunk"]),
            "last": (1, a["last"]),
            "tag": (self._tag_bits, a["point"].tag),
            "head": (head_bits(cfg), a["point"].head),
            "prob": (cfg.prob_bits + 1, a["point"].prob),
        }
        b = {}  # the tail, delayed to meet the coordinates
        for key in tail:
            width, src = carried[key]
            for i in range(CoordinateUnit.latency):
                last = i == CoordinateUnit.latency - 1
                reg = stage(f"b_{key}" if last else f"b{i}_{key}", width)
                m.d.sync += reg.eq(src)
                src = reg
            b[key] = src

        # C: the coefficient unit starts. The FWP read starts so that its mask bits (and the
        # importance update) meet the coefficients; the masked coefficients are registered once
        # per group of multipliers (a short net to each); the buffer read starts so that its
        # words meet those copies at the multipliers, a cycle after the coefficients.
        coeff_latency = CoefficientUnit.latency_of(cfg)
        reads = self.reads_of(cfg)
        assert max(ImportanceMap.latency, LevelBuffer.latency) <= coeff_latency
        m.d.comb += [
            coeff.prob.eq(b["prob"]),
            coeff.fx.eq(coord.fx),
            coeff.fy.eq(coord.fy),
            coeff.x_odd.eq(coord.x0[0]),
            coeff.y_odd.eq(coord.y0[0]),
            coeff.valid.eq(coord.valid),
        ]
        window = {
            "x0": coord.x0,
            "y0": coord.y0,
            "corners": coord.valid,
            "head": b["head"],
            "chunk": b["chunk"],
            "update": b["valid"] & (b["chunk"] == 0),
            **({"patch": b["patch"]} if cfg.streamed else {}),
        }
        delays = {
            "fwp": coeff_latency - ImportanceMap.latency,
            "buffer": reads - LevelBuffer.latency,
        }
        chain = [window]  # chain[i]: the window delayed by i cycles
        for i in range(max(delays.values())):
            chain.append(registered(chain[-1], f"read_d{i}"))
        windows = {name: chain[delay] for name, delay in delays.items()}
        m.d.comb += [
            buffer.x0.eq(windows["buffer"]["x0"]),
            buffer.y0.eq(windows["buffer"]["y0"]),
            buffer.head.eq(windows["buffer"]["head"]),
            buffer.chunk.eq(windows["buffer"]["chunk"]),
            *([buffer.patch.eq(windows["buffer"]["patch"])] if cfg.streamed else []),
            fwp.x0.eq(windows["fwp"]["x0"]),
            fwp.y0.eq(windows["fwp"]["y0"]),
            fwp.corners.eq(windows["fwp"]["corners"]),
            fwp.update.eq(windows["fwp"]["update"]),
            *(fwp.coeff[bank].eq(coeff.coeff[bank]) for bank in range(4)),
        ]
        prev = {key: b[key] for key in ("valid", "chunk", "last", "tag")}
        prev["off_map"] = ~coord.valid.any()
        for i in range(reads):
            prev = registered(prev, f"c{i}")

        # The masked coefficients (a masked pixel reads 0), one register per group of
        # multipliers (copies kept by synthesis).
        group = self.GROUP
        kept = [[None] * cfg.lanes for _ in range(4)]
        for bank in range(4):
            for first in range(0, cfg.lanes, group):
                copy = copy_register(
                    coeff.coeff[bank].shape(), name=f"c_kept{bank}_{first // group}"
                )
                m.d.sync += copy.eq(Mux(fwp.keep[bank], coeff.coeff[bank], 0))
                for lane in range(first, min(cfg.lanes, first + group)):
                    kept[bank][lane] = copy

        # D: the masked coefficients and the buffer words enter the multipliers' input
        # registers (a masked pixel reads 0); E: four products per lane, from the multipliers'
        # output registers (on ECP5 both inside each MULT18X18D); their sum goes to the
        # output queue.
        assert Multiplier.latency == 2  # D and E
        e = registered(registered(prev, "d"), "e")
        products = [[None] * cfg.lanes for _ in range(4)]
        for bank in range(4):
            for lane in range(cfg.lanes):
                word = buffer.data[bank][lane]
                mult = Multiplier(kept[bank][lane].shape(), word.shape())
                m.submodules[f"mult{bank}_{lane}"] = mult
                m.d.comb += [mult.a.eq(kept[bank][lane]), mult.b.eq(word)]
                products[bank][lane] = mult.p

        # F: the products summed in pairs (banks 0+1, 2+3), next to the multipliers; G: the
        # lane sums, registered by the adders; H: the queue's write word (a register beside the
        # queue, no logic in front).
        f = registered(e, "f")
        pairs = []
        for lane in range(cfg.lanes):
            pair = [Signal(signed(partial_bits(cfg)), name=f"f_pair{lane}_{i}") for i in (0, 1)]
            m.d.sync += [
                pair[0].eq(products[0][lane] + products[1][lane]),
                pair[1].eq(products[2][lane] + products[3][lane]),
            ]
            pairs.append(pair)
        g = registered(f, "g")
        sums = [Signal(signed(partial_bits(cfg)), name=f"g_sum{lane}") for lane in range(cfg.lanes)]
        m.d.sync += [sums[lane].eq(pairs[lane][0] + pairs[lane][1]) for lane in range(cfg.lanes)]
        out = Signal(self.partials.payload.shape())
        m.d.sync += [
            out.chunk.eq(g["chunk"]),
            out.last.eq(g["last"]),
            out.off_map.eq(g["off_map"]),
            out.tag.eq(g["tag"]),
        ]
        m.d.sync += [out.lanes[lane].eq(sums[lane]) for lane in range(cfg.lanes)]
        m.d.comb += [queue.w_data.eq(out), queue.w_en_next.eq(g["valid"])]

        # FWP commands run once nothing is in flight (their valid through a register); the
        # completion leaves as a registered pulse, and the command is not taken again before
        # the sender has dropped its valid.
        idle = queue.idle & first_chunk
        command_valid = Signal()
        finished = Signal()  # done, the sender's valid not yet dropped
        completed = Signal()
        m.d.comb += completed.eq(fwp.command.valid & fwp.command.ready)
        with m.If(completed):
            m.d.sync += command_valid.eq(0)
        with m.Elif(self.fwp.valid & idle & ~finished):
            m.d.sync += command_valid.eq(1)
        with m.If(completed):
            m.d.sync += finished.eq(1)
        with m.Elif(~self.fwp.valid):
            m.d.sync += finished.eq(0)
        ready = Signal()
        m.d.sync += ready.eq(completed)
        m.d.comb += [
            fwp.command.payload.eq(self.fwp.payload),
            fwp.command.valid.eq(command_valid),
            self.fwp.ready.eq(ready),
        ]
        return m
