"""Layer fetch: everything the fused layer reads, from memory through one AXI4 burst reader:
the projections' constants, then the map x, then the queries, each record onto its port.

Contract:

* Memory: records of ``record_kinds(cfg, units)`` packed as their layouts (bit 0 at bit 0 of
  the first byte, little-endian bytes), each zero-padded to whole beats of ``word_bits``
  (``cfg.lanes * cfg.value_bits``):

  - at ``const_base``, per projection in ``KINDS`` order, its weight words (``w_data``,
    address order) then its channel constants (``c_data``, channel order): a fixed size,
    ``const_beats``;
  - at ``x_base``, the map: ``pixels * chunks`` rows of ``proj_lanes`` activation codes in
    the value loader's order (levels, raster order, a pixel's chunks);
  - at ``query_base``, per query: its reference points (``ref_x``, ``ref_y``), then its
    ``chunks`` rows of activation codes.

* ``start`` (a pulse, while ``idle``) takes the bases (multiples of the beat's bytes: the
  caller checks), ``pixels`` (at least 1) and ``queries``; the fetch then reads the three
  regions in that order (requests of at most ``CHUNK`` beats).
* Constants: one write per record on the projections' ``<kind>_w_*``/``<kind>_c_*`` ports.
  The map's rows go out on ``x``; a query's reference on ``refs`` (its ``tag``: the query's
  index in the run), its rows on ``queries``. The first reference waits until the map's last
  row has been taken and ``loading`` (the layer's) is low, as the layer's contract asks.
* ``error``: the reader's (bit 0 a beat answered SLVERR/DECERR, its data still used; bit 1 a
  malformed request), sticky until ``clear``. ``idle``: every record of the run has left.

Timing: a record is assembled beat by beat into registers (each beat written at its index:
no shift by a run-time amount), handed whole to the output register, so a port's ``ready``
reaches only that register's enable; the kind of the next record and its beat count are
registers. Throughput: a record per ``max(beats, 2)`` cycles of the reader's beats.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.layer.projection import KINDS, ProjectionUnit
from rtl.memory.axi_reader import AxiReader, axi_read_signature

__all__ = ["CHUNK", "LayerFetch", "RecordKind", "record_kinds"]

#: beats per read request (the reader splits each into bursts of ``max_burst``)
CHUNK = 256


class RecordKind(NamedTuple):
    """One kind of record in the layer's memory: its name, layout and beats (padded)."""

    name: str
    layout: data.Layout
    beats: int


def record_kinds(cfg: DefaConfig, units: dict[str, ProjectionUnit]) -> list[RecordKind]:
    """Every kind of record, in reading order: per projection its weights and its channel
    constants, then ``x``, ``ref`` and ``query`` (rows of codes)."""
    word = cfg.lanes * cfg.value_bits
    lv = cfg.levels
    layouts = []
    for kind in KINDS:
        unit = units[kind]
        layouts.append((f"{kind}_w", unit.w_data.shape()))
        layouts.append((f"{kind}_c", unit.c_data.shape()))
    row = data.ArrayLayout(units["value"].rows.payload.shape().elem_shape, cfg.proj_lanes)
    ref = data.StructLayout(
        {
            "ref_x": data.ArrayLayout(unsigned(cfg.ref_bits), lv),
            "ref_y": data.ArrayLayout(unsigned(cfg.ref_bits), lv),
        }
    )
    layouts += [("x", row), ("ref", ref), ("query", row)]
    return [RecordKind(n, lay, -(-data.Layout.cast(lay).size // word)) for n, lay in layouts]


class LayerFetch(wiring.Component):
    def __init__(
        self,
        cfg: DefaConfig,
        units: dict[str, ProjectionUnit],
        *,
        tag_bits: int,
        pixel_bits: int = 24,
    ):
        self._cfg, self._units, self.tag_bits = cfg, units, tag_bits
        self.word_bits = cfg.lanes * cfg.value_bits
        self.kinds = record_kinds(cfg, units)
        self.chunks = units["value"].chunks
        #: records per constants kind, in order
        self.const_counts = []
        for kind in KINDS:
            unit = units[kind]
            self.const_counts += [unit.n_out * unit.chunks, unit.n_out]
        self.const_beats = sum(
            n * k.beats for n, k in zip(self.const_counts, self.kinds, strict=False)
        )
        by_name = {k.name: k for k in self.kinds}
        ref_layout = data.StructLayout(
            {"tag": unsigned(tag_bits), **dict(by_name["ref"].layout.members.items())}
        )
        ports = {}
        for kind in KINDS:
            for name in ("w_en", "w_addr", "w_data", "c_en", "c_addr", "c_data"):
                ports[f"{kind}_{name}"] = Out(getattr(units[kind], name).shape())
        super().__init__(
            {
                "start": In(1),
                "const_base": In(unsigned(cfg.addr_bits)),
                "x_base": In(unsigned(cfg.addr_bits)),
                "query_base": In(unsigned(cfg.addr_bits)),
                "pixels": In(unsigned(pixel_bits)),
                "queries": In(unsigned(tag_bits + 1)),
                "loading": In(1),
                **ports,
                "x": Out(stream.Signature(by_name["x"].layout)),
                "refs": Out(stream.Signature(ref_layout)),
                "queries_": Out(stream.Signature(by_name["query"].layout)),
                "axi": Out(axi_read_signature(cfg.addr_bits, self.word_bits)),
                "error": Out(2),
                "clear": In(1),
                "idle": Out(1, init=1),
            }
        )

    def elaborate(self, platform):
        cfg, word, kinds = self._cfg, self.word_bits, self.kinds
        n_kinds = len(kinds)
        X, REF, QUERY = n_kinds - 3, n_kinds - 2, n_kinds - 1
        DONE = n_kinds
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

        # -- the run's numbers, a cycle after start ------------------------------------------
        chunks = self.chunks
        per_query = kinds[REF].beats + chunks * kinds[QUERY].beats
        x_records = Signal(self.pixels.shape().width + chunks.bit_length())
        x_beats = Signal(x_records.shape().width + kinds[X].beats.bit_length())
        query_beats = Signal(self.queries.shape().width + per_query.bit_length())
        queries = Signal.like(self.queries)
        started = Signal()
        m.d.sync += started.eq(self.start)
        with m.If(self.start):
            m.d.sync += [
                x_records.eq(self.pixels * chunks),
                x_beats.eq(self.pixels * (chunks * kinds[X].beats)),
                query_beats.eq(self.queries * per_query),
                queries.eq(self.queries),
            ]

        # -- requests: the three regions in order, CHUNK beats at a time ---------------------
        region = Signal(range(4), init=3)  # 3: none left
        beats_left = Signal(max(x_beats.shape().width, query_beats.shape().width, 32))
        addr = Signal(cfg.addr_bits)
        full_chunk = Signal()
        asking = Signal()
        m.d.comb += [
            reader.requests.valid.eq(asking),
            reader.requests.payload.addr.eq(addr),
            reader.requests.payload.beats.eq(Mux(full_chunk, CHUNK, beats_left)),
        ]
        m.d.sync += full_chunk.eq(beats_left >= CHUNK)
        with m.If(started):
            m.d.sync += [region.eq(0), beats_left.eq(self.const_beats), addr.eq(self.const_base)]
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
        with m.Elif(region < 2):
            m.d.sync += region.eq(region + 1)
            with m.If(region == 0):
                m.d.sync += [beats_left.eq(x_beats), addr.eq(self.x_base)]
            with m.Else():
                m.d.sync += [beats_left.eq(query_beats), addr.eq(self.query_base)]
        with m.Elif(region == 2):
            m.d.sync += region.eq(3)

        # -- the record being assembled: its kind, records left of it, its index ------------
        kind = Signal(range(DONE + 1), init=DONE)
        left = Signal(max(x_records.shape().width, 24))
        index = Signal(left.shape().width)
        queries_left = Signal.like(queries)
        last_beat = Signal(range(max(k.beats for k in kinds)))
        beat = Signal.like(last_beat)
        max_beats = max(k.beats for k in kinds)
        assembly = Signal(max_beats * word)
        whole = Signal()  # assembly holds a whole record
        m.d.comb += reader.data.ready.eq(~whole & (kind != DONE))
        with m.If(reader.data.valid & reader.data.ready):
            with m.Switch(beat):
                for i in range(max_beats):
                    with m.Case(i):
                        m.d.sync += assembly[i * word : (i + 1) * word].eq(reader.data.payload.data)
            with m.If(beat == last_beat):
                m.d.sync += [beat.eq(0), whole.eq(1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)

        # -- the output register: a whole record, its kind (one-hot), index and tag ----------
        record = Signal(max(data.Layout.cast(k.layout).size for k in kinds))
        onehot = Signal(n_kinds)
        rec_index = Signal.like(index)
        rec_tag = Signal(self.tag_bits)
        tag = Signal(self.tag_bits)
        rec_valid = Signal()
        take = Signal()  # the record leaves this cycle
        readies = [Signal(1, init=1) for _ in range(n_kinds)]  # constants are always taken
        m.d.comb += [
            readies[X].eq(self.x.ready),
            readies[REF].eq(self.refs.ready),
            readies[QUERY].eq(self.queries_.ready),
            take.eq(rec_valid & (onehot & Cat(*readies)).any()),
        ]
        with m.If(take):
            m.d.sync += rec_valid.eq(0)

        # The first reference waits for the map: its last row taken, then ``loading`` low
        # (read two cycles on, when the loader has seen the row).
        settle = Signal(2)
        m.d.sync += settle.eq(Cat(~rec_valid & (kind == REF) & ~self.loading, settle[0]))
        first_ref = Signal()
        gate = Signal()
        m.d.comb += gate.eq(~first_ref | (kind != REF) | (settle[1] & ~self.loading))

        move = Signal()
        m.d.comb += move.eq(whole & ~rec_valid & gate)
        with m.If(started):
            m.d.sync += [
                kind.eq(0),
                left.eq(self.const_counts[0]),
                index.eq(0),
                last_beat.eq(kinds[0].beats - 1),
                tag.eq(0),
                first_ref.eq(1),
            ]
        with m.Elif(move):
            m.d.sync += [
                record.eq(assembly[: record.shape().width]),
                onehot.eq(1 << kind),
                rec_index.eq(index),
                rec_tag.eq(tag),
                rec_valid.eq(1),
                whole.eq(0),
                index.eq(index + 1),
                left.eq(left - 1),
            ]
            with m.If(left == 1):
                self._next_kind(m, kind, left, index, last_beat, queries, queries_left, x_records)
            with m.If(kind == REF):
                m.d.sync += first_ref.eq(0)
            with m.If((kind == QUERY) & (left == 1)):
                m.d.sync += tag.eq(tag + 1)

        # -- the ports -----------------------------------------------------------------------
        for i, k in enumerate(kinds[:X]):
            prefix = k.name[:-2] + ("_w_" if k.name.endswith("_w") else "_c_")
            m.d.comb += [
                getattr(self, prefix + "en").eq(rec_valid & onehot[i]),
                getattr(self, prefix + "addr").eq(rec_index),
                getattr(self, prefix + "data").eq(record),
            ]
        m.d.comb += [
            self.x.valid.eq(rec_valid & onehot[X]),
            self.x.payload.eq(record),
            self.refs.valid.eq(rec_valid & onehot[REF]),
            self.refs.payload.tag.eq(rec_tag),
            self.refs.payload.as_value()[self.tag_bits :].eq(record),
            self.queries_.valid.eq(rec_valid & onehot[QUERY]),
            self.queries_.payload.eq(record),
        ]
        m.d.sync += self.idle.eq((kind == DONE) & ~rec_valid & ~whole & ~self.start & ~started)
        return m

    def _next_kind(self, m, kind, left, index, last_beat, queries, queries_left, x_records):
        """After a kind's last record: the next kind, its count and its beats."""
        kinds = self.kinds
        n_kinds = len(kinds)
        X, REF, QUERY = n_kinds - 3, n_kinds - 2, n_kinds - 1
        DONE = n_kinds

        def go(next_kind, count):
            m.d.sync += [kind.eq(next_kind), left.eq(count), index.eq(0)]
            m.d.sync += last_beat.eq(0 if next_kind == DONE else kinds[next_kind].beats - 1)

        with m.Switch(kind):
            for i in range(X):
                with m.Case(i):
                    if i + 1 < X:
                        go(i + 1, self.const_counts[i + 1])
                    else:
                        go(X, x_records)
            with m.Case(X):
                with m.If(queries == 0):
                    go(DONE, 0)
                with m.Else():
                    go(REF, 1)
                    m.d.sync += queries_left.eq(queries)
            with m.Case(REF):
                go(QUERY, self.chunks)
            with m.Case(QUERY):
                with m.If(queries_left == 1):
                    go(DONE, 0)
                with m.Else():
                    go(REF, 1)
                    m.d.sync += queries_left.eq(queries_left - 1)
