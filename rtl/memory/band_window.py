"""Band window: keeps a level's band of map rows on chip (``cfg.window_rows``), refilled from
external memory, in front of the level's sampler.

Contract:

* ``points`` in, ``issued`` out to the sampler, in order, each unchanged but for ``patch``.
  A point needs the on-map rows ``lo .. hi`` among ``y0, y0 + 1`` (and some on-map column
  among ``x0, x0 + 1``; a point with no corner on the map needs nothing and passes at once).
  The band holds rows ``[top, loaded)`` of one head, in a ring of ``R = window_rows[level]``
  rows: a point of that head whose rows lie there passes at once (one point per cycle; three
  registers: its rows, its decision, the output; ``points.ready`` is a register, a skid
  register holding the point that arrives while the first stage is held). The decision is
  taken from flags registered a cycle before (as the point enters, and again every cycle
  while it waits), so in the cycle after the band's state changes (its top, rows, head) no
  point passes: one cycle per fetch into the band and, with one chunk per point, after each
  point that pulls the band down.
* A point that passes with rows in the band pulls its top down to ``min(max(top, hi - reach
  + 1), max(0, H - R))`` (``reach = cfg.band_reach(level)``); the rows entering the band, up
  to ``min(top + R, H)``, are fetched ahead, row by row, once the sampler's latency
  has passed since the top last moved (no point issued before can still read the ring rows
  they replace). Points keep passing meanwhile.
* Otherwise the point waits: first for every row due ahead, then until the points issued
  before it have left the sampler's buffer reads (its latency after the last one):
  - another head, or a row at or below the band's end: a new band (top 0 for another head,
    the same formula); of its rows ``[max(loaded, top'), min(top' + R, H))`` those down to
      the point's (``hi``) are fetched at once, row by row, then the point passes and the
    rest are fetched ahead as above (their slots hold no row of the band, so no drain is
    due);
  - a row above the band (``lo < top``, the same head): the slow path. Its on-map corners
    are read (its one or two on-map pixels in each on-map row) into the buffer's patch,
    and the point passes with ``patch`` set: its corners are read from there.
  Rows fetched and slow paths depend only on the points' order (``sim.band.band_trace``).
* Memory (``requests``, ``beats``): map ``l`` lives at ``base`` as ``[head][row][column]
  [channel]`` (``value_bits`` each), so one head's row is ``width * head_dim`` values in a
  row, a run of its pixels one request. ``beats`` (one buffer word each, channel order) go
  to the buffer through ``fill`` a cycle later; ``beats.ready`` is always high (the reader's
  queue holds what it asked for). ``requests`` leaves from registers.
* A fetch is usable ``SETTLE`` cycles after the cycle that follows its last beat (the fill
  register and the bank's write stages; the sampler's read comes later still).
* ``refill`` pulses once per row fetched (as its last mask bit is probed), ``slow`` once per
  slow-path point, ``wait`` is high in every cycle a point waits here for memory (draining
  the sampler included); ``idle``: no fetch under way or due (rows are fetched ahead after
  the last point has passed: wait for ``idle`` before reading counters or changing the map).
* FWP: a fetch asks only for kept pixels. Its rows' mask bits are probed (``probe_x``,
  ``probe_y`` from registers; ``probe_keep`` two cycles after), one pixel per cycle, and each
  run of kept pixels (ended by a masked pixel, the row's end or, unless the rows are fetched
  ahead, ``RUN_BURSTS`` bursts) is one request, its beats placed by a queue of runs; a
  masked pixel's slot keeps what it held (the sampler reads a masked corner as 0). While
  ``any_masked`` (the FWP state's: some pixel may be masked) is low as a fetch starts, its
  rows are not probed: a row each cycle, each one request.
* ``width``, ``height``, ``base``: the level's shape and map address (CSRs); hold them
  steady while points are in flight. ``reset_band``: forget the band (a new map in memory,
  or a new FWP mask), at the latest in the cycle a new shape arrives.

Timing: every decision is taken from registers (the point's rows and the compares against
the band are registered as it enters, the band's state is registers, nothing leaves the block
combinationally but ``issued.valid``, a register); the address is computed in registered
steps (a shift-and-add multiply, ``mul_steps`` cycles), the refill's bounds one compare or
one add per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import TAG_BITS, fill_layout, head_bits, point_layout, side_bits
from rtl.core.sampler import Sampler
from rtl.memory.burst_split import request_layout

__all__ = ["BandWindow"]

#: cycles from a refill's last beat to the point's release (the fill register and the three
#: write stages of a bank come before any read of the sampler)
SETTLE = 4


class BandWindow(wiring.Component):
    #: a fetch a point waits for asks for at most this many bursts per run: a long run's
    #: request leaves once that much of it is scanned (a row fetched ahead is not in a hurry:
    #: its runs are whole, a row without masked pixels one request)
    RUN_BURSTS = 4
    RUN_QUEUE = 4  # runs scanned, not yet asked for
    PLACE_QUEUE = 8  # runs asked for whose beats have not all come

    @staticmethod
    def beats_bits_of(cfg: DefaConfig, level: int) -> int:
        """Bits of a request's beat count: a band's rows of the widest map."""
        _, width = cfg.max_shapes[level]
        return (cfg.window_rows[level] * width * cfg.cycles_per_point).bit_length()

    @staticmethod
    def request_layout_of(cfg: DefaConfig, level: int):
        return request_layout(cfg.addr_bits, BandWindow.beats_bits_of(cfg, level))

    @staticmethod
    def beat_layout_of(cfg: DefaConfig):
        return data.StructLayout({"data": cfg.lanes * cfg.value_bits, "last": 1})

    def __init__(self, cfg: DefaConfig, level: int, *, tag_bits: int = TAG_BITS):
        if not cfg.streamed:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                "a band window needs window_rows (one band height per level, a power of two "
                ">= 2): this config keeps whole maps on chip"
            )
        if not 0 <= level < cfg.levels:
            self._MustUse__silence = True
            raise ValueError(f"level={level} is out of range: allowed [0, {cfg.levels - 1}]")
        self._cfg, self._level = cfg, level
        self.rows = cfg.window_rows[level]
        _, self.max_width = cfg.max_shapes[level]
        self.word_bits = cfg.lanes * cfg.value_bits
        self.pixel_bytes = cfg.head_dim * cfg.value_bits // 8
        self.beats_bits = self.beats_bits_of(cfg, level)
        # a row's index in memory (head * height + row) and the steps multiplying it
        self.mul_steps = head_bits(cfg) + side_bits(cfg) + 1
        super().__init__(
            {
                "points": In(stream.Signature(point_layout(cfg, tag_bits))),
                "issued": Out(stream.Signature(point_layout(cfg, tag_bits, patch=True))),
                "requests": Out(stream.Signature(request_layout(cfg.addr_bits, self.beats_bits))),
                "beats": In(
                    stream.Signature(data.StructLayout({"data": self.word_bits, "last": 1}))
                ),
                "fill": Out(stream.Signature(fill_layout(cfg, level))),
                "width": In(unsigned(side_bits(cfg))),
                "height": In(unsigned(side_bits(cfg))),
                "base": In(unsigned(cfg.addr_bits)),
                "reset_band": In(1),
                "probe_x": Out(unsigned(side_bits(cfg))),
                "probe_y": Out(unsigned(side_bits(cfg))),
                "probe_keep": In(1),
                "any_masked": In(1),
                "refill": Out(1),
                "slow": Out(1),
                "wait": Out(1),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        f = cfg.coord_frac_bits
        r = self.rows
        m = Module()
        index = signed(cfg.coord_bits - f + 1)
        side = unsigned(side_bits(cfg))
        width, height = self.width, self.height

        # The band: head, rows [top, loaded), valid.
        band_valid = Signal()
        band_head = Signal(head_bits(cfg))
        top = Signal(side)
        loaded = Signal(side)
        busy = Signal()  # the memory side works for the point in s2
        patch_ready = Signal()  # s2's corners are in the patch
        # The band's state changes at the coming edge (``touch``); decisions are taken from
        # flags registered a cycle before, so in the cycle after a change (``stale``) none is.
        touch = Signal()
        stale = Signal()
        m.d.sync += stale.eq(touch | self.reset_band)
        # the rows a point may pull the band down to without waiting (the rest are fetched
        # ahead of the points: ``cfg.band_reach``)
        reach = cfg.band_reach(self._level)

        # skid: the point that arrived while s1 could not move on (``points.ready`` is this
        # register's complement: the crossing from the point queue is a register)
        point = self.points.payload
        skid = Signal(point.shape())
        skid_valid = Signal()
        # s1: the point and its corner rows (y1 = y0 + 1, yr = y0 + 2 - reach), registered.
        s1 = Signal(point.shape())
        s1_valid = Signal()
        x0 = Signal(index)
        y0 = Signal(index)
        y1 = Signal(index)
        yr = Signal(signed(index.width + 1))
        # s2: the point, whether it needs any row, its rows and columns on the map, and its
        # decision's flags: registered as it enters from s1 (``*_in``), recomputed from s2
        # every cycle while it waits (``*_held``).
        s2 = Signal(point.shape())
        s2_valid = Signal()
        s2_new = Signal()  # s2 was loaded at the last edge: its ``*_in`` flags apply
        need = Signal()
        lo = Signal(side)
        hi = Signal(side)
        col_lo = Signal(side)
        col_hi = Signal(side)
        advance = Signal(side)  # the band's top once this point has passed
        hit_in, hit_held = Signal(), Signal()  # its rows are in the band (or it needs none)
        raise_in, raise_held = Signal(), Signal()  # advance > top
        # out: the register the sampler reads.
        out = Signal(self.issued.payload.shape())
        out_valid = Signal()

        max_top = Signal(side)
        row_bytes = Signal(cfg.addr_bits)
        m.d.sync += [
            max_top.eq(Mux(height > r, height - r, 0)),
            row_bytes.eq(width * self.pixel_bytes),
        ]
        hit = Signal()
        go = Signal()
        out_load = Signal()
        s2_free = Signal()
        s1_free = Signal()
        s1_move = Signal()
        m.d.comb += [
            hit.eq(Mux(s2_new, hit_in, hit_held)),
            go.eq((hit & ~stale & ~busy) | patch_ready),
            out_load.eq(s2_valid & go & (~out_valid | self.issued.ready)),
            s2_free.eq(~s2_valid | out_load),
            s1_move.eq(s1_valid & s2_free),
            s1_free.eq(~s1_valid | s2_free),
            self.points.ready.eq(~skid_valid),
            self.issued.valid.eq(out_valid),
            self.issued.payload.eq(out),
            self.wait.eq(s2_valid & ~go),
        ]
        # s1 takes the skid's point first, else the arriving one; a point arriving while s1
        # is held waits in the skid.
        take = self.points.valid & ~skid_valid
        src = Signal(point.shape())
        m.d.comb += src.eq(Mux(skid_valid, skid, point))
        with m.If(s1_free):
            m.d.sync += [
                s1.eq(src),
                s1_valid.eq(skid_valid | take),
                skid_valid.eq(0),
                x0.eq((src.ref_x + src.off_x - (1 << (f - 1))) >> f),
                y0.eq((src.ref_y + src.off_y - (1 << (f - 1))) >> f),
                y1.eq((src.ref_y + src.off_y + (1 << (f - 1))) >> f),
                yr.eq((src.ref_y + src.off_y + ((3 - 2 * reach) << (f - 1))) >> f),
            ]
        with m.Elif(take):
            m.d.sync += [skid.eq(point), skid_valid.eq(1)]
        # the flags of the point entering s2, from s1 (lo = max(y0, 0), hi = min(y1, H - 1))
        on_map = (x0 >= -1) & (x0 < width) & (y0 >= -1) & (y0 < height)
        in_band = band_valid & (s1.head == band_head)
        with m.If(s1_move):
            m.d.sync += [
                s2.eq(s1),
                need.eq(on_map),
                lo.eq(Mux(y0 < 0, 0, y0)),
                hi.eq(Mux(y1 >= height, y0, y1)),
                col_lo.eq(Mux(x0 < 0, 0, x0)),
                col_hi.eq(Mux(x0 + 1 >= width, x0, x0 + 1)),
                # min(max(hi - reach + 1, 0), max_top), hi = min(y0 + 1, H - 1)
                advance.eq(Mux(yr > max_top, max_top, Mux(yr < 0, 0, yr))),
                hit_in.eq(
                    ~on_map
                    | (in_band & ((top == 0) | (y0 >= top)) & ((y1 < loaded) | (loaded == height)))
                ),
                raise_in.eq((yr > top) & (max_top > top)),
            ]
        m.d.sync += [
            s2_new.eq(s1_move),
            hit_held.eq(
                ~need | (band_valid & (s2.head == band_head) & (lo >= top) & (hi < loaded))
            ),
            raise_held.eq(advance > top),
        ]
        with m.If(s2_free):
            m.d.sync += s2_valid.eq(s1_move)
        evicted = Signal()  # the band's top moves down (rows leave it)
        with m.If(out_load):
            m.d.sync += [getattr(out, name).eq(getattr(s2, name)) for name, _ in point.shape()]
            m.d.sync += [out.patch.eq(patch_ready), patch_ready.eq(0)]
            # a point that passes with rows in the band pulls it down after it
            with m.If(need & ~patch_ready & Mux(s2_new, raise_in, raise_held)):
                m.d.sync += top.eq(advance)
                m.d.comb += [evicted.eq(1), touch.eq(1)]
        with m.If(out_load):
            m.d.sync += out_valid.eq(1)
        with m.Elif(self.issued.ready):
            m.d.sync += out_valid.eq(0)

        # Drained: no point issued for the sampler's latency (its buffer reads are done).
        drain = Sampler.latency_of(cfg)
        quiet = Signal(range(drain + 1))
        with m.If(out_valid):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != drain):
            m.d.sync += quiet.eq(quiet + 1)
        drained = Signal()
        m.d.comb += drained.eq(~out_valid & (quiet == drain))

        # Rows are fetched ahead (into the slots of rows that left the band) up to the band's
        # end, min(top + R, H), once no point issued before they left can still read them.
        wanted_end = Signal(side.width + 1)
        m.d.sync += wanted_end.eq(Mux(top + r > height, height, top + r))
        evict_quiet = Signal(range(drain + 1))
        with m.If(evicted):
            m.d.sync += evict_quiet.eq(0)
        with m.Elif(evict_quiet != drain):
            m.d.sync += evict_quiet.eq(evict_quiet + 1)
        behind = Signal()  # rows of the band still to fetch (a cycle late: see ``stale``)
        m.d.sync += behind.eq(band_valid & (loaded < wanted_end))
        prefetching = Signal()
        fetch_head = Signal.like(band_head)  # the head whose rows are fetched

        # The memory side: the band's new bounds (or the slow path's rows), the first row's
        # address (shift-and-add), then the rows' mask scanned into runs of kept pixels, a
        # request per run, the beats placed by the runs' queue.
        switch = Signal()
        cand = Signal(signed(side.width + 2))
        new_top = Signal(side)
        first = Signal(side)
        end = Signal(side.width + 1)
        kept_rows = Signal()  # rows of the band fetched before stay (loaded > new top)
        past_end = Signal()  # the band would end past the map
        head_rows = Signal(head_bits(cfg) + side.width)  # the rows of the heads before
        product = Signal(cfg.addr_bits)
        multiplicand = Signal(cfg.addr_bits)
        multiplier = Signal(head_bits(cfg) + side.width + 1)  # the first row's index in memory
        step = Signal(range(max(self.mul_steps, SETTLE) + 2))
        row_addr = Signal(cfg.addr_bits)  # the first row's column 0
        x_first = Signal(side)  # the first and last column of each row fetched
        x_last = Signal(side)
        rows = Signal(range(r + 1))  # rows to fetch
        is_patch = Signal()
        start_scan = Signal()
        scan_done = Signal()  # every run of the fetch is asked for
        fetched = Signal()  # and every beat of it has come
        addr_ready = Signal()  # row_addr holds the first row's address
        scan = self._scan(
            m,
            start_scan,
            first,
            rows,
            x_first,
            x_last,
            row_addr,
            addr_ready,
            row_bytes,
            is_patch,
            capped=~prefetching,
        )
        m.d.comb += [scan_done.eq(scan["done"]), fetched.eq(scan["fetched"])]

        m.d.sync += self.slow.eq(0)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(stale):  # the band changed at the last edge: its flags are due
                    pass
                with m.Elif(behind):
                    with m.If(evict_quiet == drain):  # the next row, ahead of the points
                        m.d.sync += [
                            prefetching.eq(1),
                            fetch_head.eq(band_head),
                            is_patch.eq(0),
                            first.eq(loaded),
                            end.eq(loaded + 1),
                            x_first.eq(0),
                            x_last.eq(width - 1),
                        ]
                        m.next = "ROWS"
                with m.Elif(s2_valid & ~hit & ~patch_ready & drained):
                    m.d.sync += [
                        busy.eq(1),
                        prefetching.eq(0),
                        fetch_head.eq(s2.head),
                        switch.eq(~band_valid | (s2.head != band_head)),
                        cand.eq(hi - (reach - 1)),
                    ]
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(~switch & (lo < top)):  # above the band: the slow path
                    m.d.sync += [
                        is_patch.eq(1),
                        first.eq(lo),
                        end.eq(hi + 1),
                        x_first.eq(col_lo),
                        x_last.eq(col_hi),
                        self.slow.eq(1),
                    ]
                    m.next = "ROWS"
                with m.Else():  # the band moves down (or starts over for another head)
                    base_top = Mux(switch, 0, top)
                    m.d.sync += [
                        is_patch.eq(0),
                        new_top.eq(Mux(cand > base_top, cand, base_top)),
                        loaded.eq(Mux(switch, 0, loaded)),
                        band_valid.eq(0),
                        x_first.eq(0),
                        x_last.eq(width - 1),
                    ]
                    m.d.comb += touch.eq(1)
                    m.next = "CLAMP"
            with m.State("CLAMP"):
                clamped = Mux(new_top > max_top, max_top, new_top)
                m.d.sync += [new_top.eq(clamped), end.eq(clamped + r)]
                m.next = "ORDER"
            with m.State("ORDER"):  # the bounds' compares, registered
                m.d.sync += [kept_rows.eq(loaded > new_top), past_end.eq(end > height)]
                m.next = "BOUNDS"
            with m.State("BOUNDS"):
                m.d.sync += [
                    first.eq(Mux(kept_rows, loaded, new_top)),
                    end.eq(Mux(past_end, height, end)),
                    top.eq(new_top),
                ]
                m.d.comb += touch.eq(1)
                m.next = "NEED"
            with m.State("NEED"):  # now only the rows down to the point's: the rest ahead
                m.d.sync += end.eq(Mux(end > hi, hi + 1, end))
                m.next = "ROWS"
            with m.State("ROWS"):
                m.d.sync += [
                    head_rows.eq(fetch_head * height),
                    rows.eq(end - first),
                    product.eq(0),
                    multiplicand.eq(row_bytes),
                    step.eq(0),
                ]
                m.next = "MULTIPLY"
            with m.State("MULTIPLY"):  # (the scan starts meanwhile)
                m.d.comb += start_scan.eq(step == 0)
                m.d.sync += multiplier.eq(head_rows + first)
                with m.If(step != 0):
                    with m.If(multiplier[0]):
                        m.d.sync += product.eq(product + multiplicand)
                    m.d.sync += [
                        multiplicand.eq(multiplicand << 1),
                        multiplier.eq(multiplier >> 1),
                    ]
                m.d.sync += step.eq(step + 1)
                with m.If(step == self.mul_steps):
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):
                m.d.sync += [row_addr.eq(self.base + product), addr_ready.eq(1), step.eq(0)]
                m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scan_done):
                    m.d.sync += addr_ready.eq(0)
                    m.next = "RECEIVE"
            with m.State("RECEIVE"):
                with m.If(fetched):
                    m.next = "SETTLE"
            with m.State("SETTLE"):
                m.d.sync += step.eq(step + 1)
                with m.If(step == SETTLE - 1):
                    m.d.sync += busy.eq(0)
                    with m.If(is_patch):
                        m.d.sync += patch_ready.eq(1)
                    with m.Elif(prefetching):
                        m.d.sync += loaded.eq(end)
                        m.d.comb += touch.eq(1)
                    with m.Else():
                        m.d.sync += [loaded.eq(end), band_head.eq(fetch_head), band_valid.eq(1)]
                        m.d.comb += touch.eq(1)
                    m.next = "IDLE"
        with m.If(self.reset_band):
            m.d.sync += band_valid.eq(0)
        # (a band that moved down has its fetch due only once its old rows are drained)
        m.d.comb += self.idle.eq(
            fsm.ongoing("IDLE") & ~stale & ~behind & (evict_quiet == drain) & ~(s2_valid & ~go)
        )

        return m

    def _scan(
        self,
        m,
        start,
        first,
        rows,
        x_first,
        x_last,
        row_addr,
        addr_ready,
        row_bytes,
        is_patch,
        *,
        capped,
    ):
        """The fetch's rows ``first ..`` (``rows`` of them, columns ``x_first .. x_last``),
        from ``start`` on: each pixel's mask bit probed (one per cycle, row by row, while the
        run queue has room for what is in flight), the kept pixels gathered into runs (a
        masked pixel, a row's end or, with ``capped``, ``cap`` pixels end one) with their
        addresses from the fetch's start, a request per run once ``addr_ready`` (``row_addr``:
        row ``first``'s column 0), and each run's beats placed in the buffer as they come.
        Returns ``done`` (every run asked for) and ``fetched`` (every beat come)."""
        cfg = self._cfg
        r = self.rows
        side = unsigned(side_bits(cfg))
        chunks = cfg.cycles_per_point
        cap = max(1, self.RUN_BURSTS * cfg.max_burst // chunks)
        ring_bits = max(1, (r - 1).bit_length())
        run_layout = data.StructLayout(
            {"first": side, "end": side.width + 1, "ring": ring_bits, "addr": cfg.addr_bits}
        )
        place_layout = data.StructLayout(
            {"first": side, "last": side, "ring": ring_bits, "patch": 1}
        )
        m.submodules.runs = runs = fifo.SyncFIFOBuffered(
            width=run_layout.size, depth=self.RUN_QUEUE
        )
        m.submodules.places = places = fifo.SyncFIFOBuffered(
            width=place_layout.size, depth=self.PLACE_QUEUE
        )

        # Issue: pixel (sx, srow) probed; ``at_last``: sx is the row's last column. ``whole``:
        # nothing is masked, a row per cycle, each one run.
        whole = Signal()
        x_end = Signal(side.width + 1)
        row_step = Signal()
        scanning = Signal()
        sx = Signal(side)
        srow = Signal(side)
        sring = Signal(ring_bits)
        saddr = Signal(cfg.addr_bits)
        sleft = Signal(range(r + 1))
        at_last = Signal()
        single = Signal()  # one column per row
        x_before_last = Signal(side)
        issue = Signal()
        m.d.comb += [
            row_step.eq(at_last | whole),
            issue.eq(scanning & (runs.level <= self.RUN_QUEUE - 3)),
            self.probe_x.eq(sx),
            self.probe_y.eq(srow),
        ]
        # the probed pixel, a cycle later, and again a cycle later with its mask bit (the FWP
        # state registers the probe's word address: ``ImportanceMap.probe_latency``)
        pv = Signal()
        px = Signal(side)
        pend = Signal(side.width + 1)  # px + 1
        pring = Signal(ring_bits)
        paddr = Signal(cfg.addr_bits)
        plast = Signal()
        m.d.sync += [pv.eq(issue), self.refill.eq(issue & row_step & ~is_patch)]
        with m.If(issue):
            m.d.sync += [
                px.eq(sx),
                pend.eq(sx + 1),
                pring.eq(sring),
                paddr.eq(saddr),
                plast.eq(at_last),
            ]
            with m.If(row_step):
                m.d.sync += [
                    sx.eq(x_first),
                    at_last.eq(single),
                    srow.eq(srow + 1),
                    sring.eq(sring + 1),
                    saddr.eq(saddr + row_bytes),
                    sleft.eq(sleft - 1),
                ]
                with m.If(sleft == 1):
                    m.d.sync += scanning.eq(0)
            with m.Else():
                m.d.sync += [sx.eq(sx + 1), at_last.eq(sx == x_before_last)]
        qv = Signal()
        qx = Signal.like(px)
        qend = Signal.like(pend)
        qring = Signal.like(pring)
        qaddr = Signal.like(paddr)
        qlast = Signal()
        m.d.sync += [
            qv.eq(pv),
            qx.eq(px),
            qend.eq(pend),
            qring.eq(pring),
            qaddr.eq(paddr),
            qlast.eq(plast),
        ]
        with m.If(start):
            m.d.sync += [
                scanning.eq(rows != 0),
                whole.eq(~self.any_masked),
                x_end.eq(x_last + 1),
                sx.eq(x_first),
                at_last.eq(x_first == x_last),
                single.eq(x_first == x_last),
                x_before_last.eq(x_last - 1),
                srow.eq(first),
                sring.eq(first),
                saddr.eq(0),
                sleft.eq(rows),
            ]

        # Runs: kept pixels in a row, at most ``cap``; one ends at a masked pixel (before it),
        # at the row's end or at ``cap`` pixels.
        in_run = Signal()
        run_first = Signal(side)
        run_len = Signal(range(cap + 1))
        emitted = data.View(run_layout, runs.w_data)

        def emit(first, end):
            # (every field in the same branch: a field driven apart would be a Verilog
            # process of its own, which Icarus runs only once its input first changes)
            return [
                runs.w_en.eq(1),
                emitted.first.eq(first),
                emitted.end.eq(end),
                emitted.ring.eq(qring),
                emitted.addr.eq(qaddr + first * self.pixel_bytes),
            ]

        with m.If(qv & whole):
            m.d.comb += emit(x_first, x_end)
        with m.Elif(qv):
            with m.If(self.probe_keep):
                with m.If(qlast | (capped & ((in_run & (run_len == cap - 1)) | (cap == 1)))):
                    m.d.comb += emit(Mux(in_run, run_first, qx), qend)
                    m.d.sync += in_run.eq(0)
                with m.Else():
                    with m.If(in_run):
                        m.d.sync += run_len.eq(run_len + 1)
                    with m.Else():
                        m.d.sync += [run_first.eq(qx), run_len.eq(1), in_run.eq(1)]
            with m.Elif(in_run):
                m.d.comb += emit(run_first, qx)
                m.d.sync += in_run.eq(0)

        # Requests: a run's, from registers, once there is room to place its beats.
        run = data.View(run_layout, runs.r_data)
        take = Signal()
        m.d.comb += [
            take.eq(
                runs.r_rdy
                & addr_ready
                & (~self.requests.valid | self.requests.ready)
                & places.w_rdy
            ),
            runs.r_en.eq(take),
            places.w_en.eq(take),
        ]
        placed = data.View(place_layout, places.w_data)
        m.d.comb += [
            placed.first.eq(run.first),
            placed.last.eq(run.end - 1),
            placed.ring.eq(run.ring),
            placed.patch.eq(is_patch),
        ]
        with m.If(take):
            m.d.sync += [
                self.requests.payload.addr.eq(row_addr + run.addr),
                self.requests.payload.beats.eq((run.end - run.first) * chunks),
                self.requests.valid.eq(1),
            ]
        with m.Elif(self.requests.ready):
            m.d.sync += self.requests.valid.eq(0)

        # Beats: their place (column, chunk, ring row) from the oldest run asked for, then a
        # register.
        place = data.View(place_layout, places.r_data)
        fresh = Signal(init=1)  # the next beat starts a run
        fx = Signal(side)
        chunk = Signal(range(max(2, chunks)))  # (one bit, 0, with one chunk per point)
        col = Signal(side)
        fill = Signal(self.fill.payload.shape())
        fill_valid = Signal()
        m.d.comb += [
            col.eq(Mux(fresh, place.first, fx)),
            self.beats.ready.eq(1),
            self.fill.payload.eq(fill),
            self.fill.valid.eq(fill_valid),
        ]
        m.d.sync += fill_valid.eq(self.beats.valid)
        with m.If(self.beats.valid):
            m.d.sync += [
                fill.x.eq(col),
                fill.row.eq(place.ring),
                fill.chunk.eq(chunk),
                fill.patch.eq(place.patch),
                fill.data.eq(self.beats.payload.data),
            ]
            with m.If(chunk == chunks - 1):
                m.d.sync += [chunk.eq(0), fx.eq(col + 1), fresh.eq(col == place.last)]
                m.d.comb += places.r_en.eq(col == place.last)
            with m.Else():
                m.d.sync += [chunk.eq(chunk + 1), fx.eq(col), fresh.eq(0)]
        with m.If(start):
            m.d.sync += in_run.eq(0)
        return {
            "done": ~scanning & ~pv & ~qv & (runs.level == 0) & ~self.requests.valid,
            "fetched": places.level == 0,
        }
