"""Cycle model of the core: predicts the RTL's cycle count from a workload and a config.

The model follows each (query, head) job through the core at job granularity, with the
timing the RTL documents (``rtl/core/core.py`` and its blocks):

* with ``cfg.softmax`` a job reaches the dispatcher ``softmax_latency(cfg)`` cycles after it
  entered the softmax unit, which takes one job per cycle while fewer than
  ``softmax_depth(cfg)`` are in flight (its output queue; a job's credit is back two cycles
  after the dispatcher took it);
* blocks talk over registered crossings with credits: a beat sent in cycle t (from the
  sender's register at t+1) is readable in the receiver's inbox at t+3, the next one no
  earlier than the cycle after the previous was taken; a beat taken in cycle t frees its
  credit at the sender from t+2 on;
* the dispatcher accepts at most one job per cycle, and only while it holds credits for an
  entry at every level (``entry_depth``; a job takes one at every level, and a level where
  it kept nothing gives it back two cycles later) and for a descriptor (``descriptor_depth``);
* level l's sampler takes one chunk per cycle: a job with k kept points there needs
  ``k * head_dim/lanes`` chunks, back to back with the previous job, from the cycle after its
  entry is readable (the point selector holds the entry: it takes it from the inbox, freeing
  its credit, when it is readable and the previous entry's last chunk enters); a chunk is
  visible at the sampler's output ``sampler_latency(cfg)`` cycles after it entered; the
  sampler's pipeline never stalls, and a chunk enters only while fewer than
  ``sampler_latency(cfg) + 3`` (its output queue) are in flight (credits: a chunk's is back
  two cycles after it left the queue);
* the accumulator takes beats while fewer than ``sum_depth`` of its sums are in flight (a sum
  is in flight from its last beat until its credit is back); a job's sum is sent (its valid
  register set) a cycle after its last beat;
* the crossings into the aggregator (descriptors, level sums) carry ``cfg.relay_stages``
  relays: a beat is readable that many cycles later, and its credit is back that many
  cycles later again;
* the dispatcher sends a job's descriptor a cycle after its entries;
* the aggregator joins one job per cycle once its descriptor and the sums of its non-empty
  levels are readable; its pipeline adds ``aggregator_latency(cfg)`` cycles.

``predict`` returns the cycle count the core's ``cycles`` counter shows after the last output
when jobs are offered back to back and outputs are always taken (the cocotb ``measure`` test),
plus per-level busy cycles and the ideal count (kept points / levels, in chunks).
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass

import numpy as np

from gen.config import DefaConfig
from sim import band
from sim.bittrue import LOG2E_Q

__all__ = [
    "CROSSING_LATENCY",
    "CREDIT_RETURN",
    "aggregator_latency",
    "descriptor_depth",
    "entry_depth",
    "point_depth",
    "sum_depth",
    "kept_points",
    "AXI_RAM",
    "BandGate",
    "Memory",
    "predict",
    "predict_projection",
    "predict_streamed",
    "projection_latency",
    "sampler_latency",
    "softmax_depth",
    "softmax_latency",
]

#: cycles from a beat's send (the sender's decision) until the receiver can read it
CROSSING_LATENCY = 3
#: cycles from a beat's take at the receiver until its credit is free at the sender again
CREDIT_RETURN = 2


def _tree(n: int) -> int:
    """Register stages of the RTL's reduction trees: one per level, at least one."""
    return max(1, (n - 1).bit_length())


def sampler_latency(cfg: DefaConfig) -> int:
    """Input register, coordinates (three stages), the coefficient pipeline (input register, two
    shift-and-add trees over the coordinate fraction bits, four more stages; the buffer read,
    8 cycles, is shorter and starts later), the masked coefficients' copies, the multipliers'
    input registers, products, pair sums, the corner sums, the queue's write word, then the
    output queue (two cycles)."""
    coefficients = 5 + 2 * _tree(cfg.coord_frac_bits)
    return 1 + 3 + coefficients + 1 + 7


def aggregator_latency(cfg: DefaConfig) -> int:
    """Input register, the sum over levels, rounding, the out-of-range flag, the saturating
    select into the output queue (two cycles)."""
    return 5 + _tree(cfg.levels)


def entry_depth(cfg: DefaConfig) -> int:
    """Entries a level unit's inbox holds (credits at the dispatcher)."""
    return cfg.queue_depth + 3


def descriptor_depth(cfg: DefaConfig) -> int:
    """Descriptors the aggregator's inbox holds (credits at the dispatcher): the round trip
    includes a level sum's relays and the credit's."""
    return cfg.queue_depth + sampler_latency(cfg) + 14 + 2 * cfg.relay_stages


def point_depth(cfg: DefaConfig) -> int:
    """Points a sampler's inbox holds (credits at the point selector): the round trip from a
    point's issue until its credit is free again."""
    return CROSSING_LATENCY + CREDIT_RETURN


def sum_depth(cfg: DefaConfig) -> int:
    """Level sums the aggregator's inbox holds per level (credits at the accumulator)."""
    return cfg.queue_depth + 5 + 2 * cfg.relay_stages


def softmax_latency(cfg: DefaConfig) -> int:
    """The fused softmax's pipeline depth (it delays only the start: one job per cycle): 14
    stages, its output queue (2), the exponent ``d * log2(e)`` as a tree of shifted copies of
    d (one per set bit of ``LOG2E_Q``) and the rounding constant, and two reduction trees over
    the L*P logits (maximum: two register stages per tree level, sum: one)."""
    exponent = _tree(bin(LOG2E_Q).count("1") + 1)
    return 16 + exponent + 3 * _tree(cfg.points_per_head)


def softmax_depth(cfg: DefaConfig) -> int:
    """Jobs in flight in the softmax unit (its output queue, ``SoftmaxUnit.queue_depth_of``):
    the round trip (the pipeline and three), cut to what gives one job per
    ``cycles_per_point`` cycles but no less than 16."""
    round_trip = softmax_latency(cfg) + 3
    return min(round_trip, max(16, -(-round_trip // cfg.cycles_per_point)))


def projection_latency(cfg: DefaConfig, n_in: int | None = None) -> int:
    """A projection unit's pipeline (``rtl/layer/projection.py``), from a channel's last chunk
    starting to its word in the output queue's storage: the row and weight reads (2), the
    products (2), their sum (a tree over ``proj_lanes``), the accumulator and the bias (2),
    the requantizing products (2) and their sum (a tree over the accumulator's 17-bit
    pieces), the rounding shift (two bits of shift per stage), the rounding step, saturation
    (2)."""
    acc, req = cfg.proj_acc_bits, cfg.requant_bits
    pieces = -(-acc // 17)
    barrel = -(-max(1, (acc + req - 1).bit_length()) // 2)
    return 2 + 2 + _tree(cfg.proj_lanes) + 2 + 2 + _tree(pieces) + barrel + 1 + 2


def predict_projection(cfg: DefaConfig, rows: int, n_out: int) -> dict:
    """Cycles of one projection unit over ``rows`` rows of ``d_model`` inputs with ``n_out``
    outputs each, the rows offered back to back and the outputs always taken: a row's
    ``ceil(d_model / proj_lanes)`` beats arrive (the first row's set the start), then every
    output channel takes that many cycles, one channel after another (the next row arrives
    meanwhile: two row buffers); the last word is readable ``projection_latency + 2`` cycles
    after its last chunk started. Returns cycles, MACs (row x n_out x d_model) and the
    multiplier utilization."""
    if rows < 0 or n_out < 1:
        raise ValueError(f"rows={rows}, n_out={n_out}: allowed rows >= 0, n_out >= 1")
    chunks = -(-cfg.d_model // cfg.proj_lanes)
    if rows == 0:
        return {"cycles": 0, "macs": 0, "utilization": 0.0}
    busy = rows * n_out * chunks
    cycles = chunks + busy + projection_latency(cfg) + 2
    macs = rows * n_out * cfg.d_model
    return {"cycles": cycles, "macs": macs, "utilization": macs / (cycles * cfg.proj_lanes)}


#: cycles from the value loader asking for a pixel's mask bit to the answer in its queue (the
#: probe register, the core's four cycles, the queue's write)
PROBE_ROUND_TRIP = 6


def predict_value_projection(cfg: DefaConfig, keep) -> dict:
    """Cycles of the fused layer's value projection over a map whose pixels FWP keeps where
    ``keep`` (Nv bool, the pixels in the loader's order) is True: the loader asks for the mask
    bits ahead of the rows, a masked pixel's ``ceil(d_model / proj_lanes)`` rows are dropped a
    row a cycle while the unit works (so only those ahead of the first kept pixel cost
    cycles), the kept ones are projected back to back (``predict_projection``). Returns
    cycles, MACs done and skipped (the masked pixels')."""
    keep = np.asarray(keep, dtype=bool)
    if keep.ndim != 1:
        raise ValueError(f"keep must be a 1-d bool array, got shape {keep.shape}")
    chunks = -(-cfg.d_model // cfg.proj_lanes)
    kept = int(keep.sum())
    lead = int(np.argmax(keep)) if kept else len(keep)  # masked pixels before the first kept
    cycles = PROBE_ROUND_TRIP + lead * chunks + predict_projection(cfg, kept, cfg.d_model)["cycles"]
    per_pixel = cfg.d_model * cfg.d_model
    return {
        "cycles": cycles,
        "macs": kept * per_pixel,
        "skipped_macs": (len(keep) - kept) * per_pixel,
    }


def _constant_records(cfg: DefaConfig) -> list[tuple[int, int]]:
    """(records, beats each) of the fused layer's constants as the layer top reads them
    (``rtl/layer/layer_fetch.py``): per projection, each output channel's ``ceil(d_model /
    proj_lanes)`` weight words of ``proj_lanes * weight_bits`` and its bias, multiplier and
    shift word, each padded to whole beats of ``lanes * value_bits``."""
    word = cfg.lanes * cfg.value_bits
    chunks = -(-cfg.d_model // cfg.proj_lanes)
    acc, req = cfg.proj_acc_bits, cfg.requant_bits
    channel = acc + req + (acc + req).bit_length()
    beats = lambda bits: -(-bits // word)  # noqa: E731
    per_head = cfg.heads * cfg.levels * cfg.points
    outputs = cfg.d_model + 2 * per_head + per_head + cfg.d_model  # value, offsets, logits, out
    return [
        (outputs * chunks, beats(cfg.proj_lanes * cfg.weight_bits)),
        (outputs, beats(channel)),
    ]


def layer_constant_beats(cfg: DefaConfig) -> int:
    """Memory beats of the fused layer's constants (``_constant_records``)."""
    return sum(n * b for n, b in _constant_records(cfg))


def layer_constant_cycles(cfg: DefaConfig) -> int:
    """Cycles the layer top takes over its constants with memory at a beat a cycle: a record
    per ``max(beats, 2)`` cycles (the fetch's output register frees a cycle after its record
    is written)."""
    return sum(n * max(b, 2) for n, b in _constant_records(cfg))


#: cycles between the counter clear and the first job offered, plus the output's edge
_OFFSET = 2


class _Sampler:
    """A sampler that never stalls inside: chunk n enters at the earliest one cycle after chunk
    n-1, and only from the second cycle after chunk n-D left its output queue (D = ``queue``:
    credits); it is
    visible at the output ``latency`` cycles after it entered, and leaves in order, one per
    cycle, when the accumulator takes it."""

    def __init__(self, latency: int, queue: int):
        self.latency, self.queue = latency, queue
        self.entered: list[int] = []
        self.left: list[int] = []

    def enter(self, t: int) -> int:
        """The cycle the next chunk enters, offered from cycle t on."""
        n = len(self.entered)
        if n:
            t = max(t, self.entered[-1] + 1)
        if n >= self.queue:
            t = max(t, self.left[n - self.queue] + 2)
        self.entered.append(t)
        return t

    def leave(self, hold: int = 0) -> int:
        """The cycle the oldest chunk not yet out leaves, taken no earlier than ``hold``."""
        n = len(self.left)
        t = max(self.entered[n] + self.latency, hold)
        if n:
            t = max(t, self.left[-1] + 1)
        self.left.append(t)
        return t


def kept_points(probs_q: np.ndarray, tau_p_q: int) -> np.ndarray:
    """(J, L) kept points per job and level, jobs in (query, head) order, from integer
    probabilities (Nq, M, L, P) and the PAP threshold in probability units."""
    keep = probs_q >= tau_p_q
    nq, m, lv, _ = probs_q.shape
    return keep.sum(-1).reshape(nq * m, lv)


def predict(cfg: DefaConfig, kept: np.ndarray, *, bands=None) -> dict:
    """Cycles of the core for jobs with ``kept`` (J, L) surviving points. ``bands`` (with the
    maps in external memory, ``cfg.window_rows``): one ``BandGate`` per level, which delays
    the points that wait for memory (``predict_streamed`` builds them)."""
    kept = np.asarray(kept, dtype=np.int64)
    jobs, levels = kept.shape
    if levels != cfg.levels:
        raise ValueError(f"kept has {levels} levels; the config has levels={cfg.levels}")
    if jobs == 0:
        return {"cycles": 0, "busy": [0] * levels, "ideal": 0, "jobs": 0}
    chunks = cfg.cycles_per_point
    x, back = CROSSING_LATENCY, CREDIT_RETURN
    relay = cfg.relay_stages  # into the aggregator: each way
    entries, descriptors, sums = entry_depth(cfg), descriptor_depth(cfg), sum_depth(cfg)
    join = np.zeros(jobs, dtype=np.int64)  # the aggregator joins the job
    # per level: when each outstanding entry credit comes back (a min-heap)
    entry_back: list[list[int]] = [[] for _ in range(levels)]
    # per level, per job with a kept point there: when the aggregator took its sum
    sum_taken: list[list[int]] = [[] for _ in range(levels)]
    entry_free = [0] * levels  # the level's previous entry's last point was issued
    # per level, per point: the cycle the sampler took it (its last chunk entered)
    point_taken: list[list[int]] = [[] for _ in range(levels)]
    points = point_depth(cfg)
    depth = sampler_latency(cfg) + 3  # the sampler's output queue (Sampler.queue_depth_of)
    samplers = [_Sampler(sampler_latency(cfg), depth) for _ in range(levels)]
    # the softmax unit, modelled like a sampler: job j enters (offered back to back from cycle
    # 0) as its credits allow, and is readable at the dispatcher `latency` cycles later
    softmax = _Sampler(softmax_latency(cfg), softmax_depth(cfg)) if cfg.softmax else None
    prev_accept = -1
    for j in range(jobs):
        a = prev_accept + 1
        if softmax is not None:
            a = max(a, softmax.enter(0) + softmax.latency)
        if j >= descriptors:
            a = max(a, join[j - descriptors] + back + relay)
        for lv in range(levels):
            heap = entry_back[lv]
            while len(heap) >= entries:
                a = max(a, heapq.heappop(heap))
        prev_accept = a
        if softmax is not None:
            softmax.left.append(a)
        # the descriptor is readable (sent a cycle after the entries)
        ready = max(a + x + 1 + relay, join[j - 1] + 1 if j else 0)
        for lv in range(levels):
            k = kept[j, lv]
            if not k:
                heapq.heappush(entry_back[lv], a + back)
                continue
            # the point selector takes the entry from the inbox when it is readable and
            # nothing is held, or with the previous entry's last point; it issues a point per
            # cycle from the cycle after, while it has credits (a point's is free again two
            # cycles after the sampler took it, with its last chunk), and each is readable at
            # the sampler three cycles after its issue
            take = max(a + x, entry_free[lv])
            heapq.heappush(entry_back[lv], take + back)
            # Every chunk enters as soon as credits allow; the accumulator takes beats only
            # while fewer than `sums` of its sums are in flight: the job's beats wait for the
            # credit of the sum `sums` jobs (with points here) back.
            taken = sum_taken[lv]
            hold = taken[-sums] + back + relay if len(taken) >= sums else 0
            sampler = samplers[lv]
            issued = point_taken[lv]
            issue = take + 1
            gate = bands[lv] if bands is not None else None
            for _ in range(k):
                if len(issued) >= points:
                    issue = max(issue, issued[-points] + back)
                offer = issue + x
                if gate is not None:  # the band window's three registers, and memory
                    offer = gate.offer(offer + BandGate.PIPELINE)
                for _ in range(chunks):
                    # a chunk's credit comes back when the chunk `depth` before it leaves
                    while len(sampler.left) <= len(sampler.entered) - depth:
                        sampler.leave(hold)
                    last_enter = sampler.enter(offer)
                if gate is not None:
                    gate.taken(last_enter)
                    # the point's inbox slot is freed when the window takes it: once the
                    # point three ahead has entered the sampler (the window holds three)
                    issued.append(
                        max(offer - BandGate.PIPELINE, gate.taken_before(BandGate.PIPELINE))
                    )
                else:
                    issued.append(last_enter)
                issue += 1
            entry_free[lv] = issue - 1
            while len(sampler.left) < len(sampler.entered):
                last_beat = sampler.leave(hold)
            # its valid register set a cycle after the last beat
            sum_ready = last_beat + 1 + x + relay
            if taken:
                sum_ready = max(sum_ready, taken[-1] + 1)
            ready = max(ready, sum_ready)
        t = max(ready, join[j - 1] + 1) if j else ready
        join[j] = t
        for lv in range(levels):
            if kept[j, lv]:
                sum_taken[lv].append(t)
    busy = (kept.sum(0) * chunks).tolist()
    memory = {}
    if bands is not None:
        memory = {
            "memory_wait": [g.waited for g in bands],
            "rows_fetched": [g.rows for g in bands],
            "slow_points": [g.slow for g in bands],
        }
    return {
        **memory,
        "cycles": int(join[-1]) + aggregator_latency(cfg) + _OFFSET,
        "busy": busy,
        "ideal": int(np.ceil(kept.sum() * chunks / levels)),
        "jobs": jobs,
    }


@dataclass(frozen=True)
class Memory:
    """External memory as the cycle model sees it: ``latency``, cycles from a band window's
    request (its valid register set) to the request's first beat back at the window (the
    arbiter, the reader's split and registers, the memory itself); ``beats_per_cycle``,
    the bus's sustained bandwidth in beats (one buffer word each) per cycle; ``row_gap``,
    cycles between consecutive requests of one fetch (the arbiter's grant, the split)."""

    # defaults: the core's arbiter and reader before a memory that keeps up (``AXI_RAM``: the
    # regressions' memory model)
    latency: int = 10
    beats_per_cycle: float = 1.0
    row_gap: int = 5

    def __post_init__(self):
        if self.latency < 1:
            raise ValueError(f"latency={self.latency} is out of range: allowed >= 1")
        if not 0 < self.beats_per_cycle <= 1:
            raise ValueError(
                f"beats_per_cycle={self.beats_per_cycle} is out of range: allowed (0, 1]"
            )


#: the memory of the RTL regressions (cocotbext-axi's AxiRamRead at full speed behind the
#: core's reader), fitted to the RTL's cycles: within 2% on three workloads of
#: tests/test_perf.py's config and on a 2000-job slice of the fpga preset's encoder (the
#: bench's ``--rtl-jobs``); the slice's long rows (42 bursts each) show the memory model
#: delivering about 16 beats in 17 cycles
AXI_RAM = Memory(latency=10, beats_per_cycle=16 / 17, row_gap=5)


class _Bus:
    """The one read port the levels share: each request's beats take the first stretch of
    the bus that is free from its first beat's earliest cycle on (the levels' requests reach
    the model out of time order: it follows jobs, the levels run apart)."""

    KEEP = 256  # busy stretches remembered (older ones lie before any new request)

    def __init__(self, memory: Memory):
        self.memory = memory
        self.busy: list[tuple[float, float]] = []  # sorted, disjoint [start, end)

    def fetch(self, request: int, beats: int) -> int:
        """The cycle the last beat of a request made in cycle ``request`` arrives."""
        length = beats / self.memory.beats_per_cycle
        start = float(request + self.memory.latency)
        i = bisect.bisect_left(self.busy, (start, start))
        if i and self.busy[i - 1][1] > start:
            i -= 1
        while i < len(self.busy):
            begin, end = self.busy[i]
            if start + length <= begin:
                break
            start = max(start, end)
            i += 1
        self.busy.insert(i, (start, start + length))
        if len(self.busy) > self.KEEP:
            del self.busy[: len(self.busy) - self.KEEP]
        return int(np.ceil(start + length)) - 1


class BandGate:
    """One level's band window (``rtl.memory.band_window``) in the cycle model: when each
    point may enter the sampler, given the band's events (``sim.band.band_trace``) and the
    memory. The window adds ``PIPELINE`` registers; a point that waits for memory (a new band,
    rows below the band's end, the slow path) waits for the sampler to drain after the point
    before it, the window's steps (bounds, the shift-and-add address), the fetch and
    ``SETTLE`` cycles; a new band fetches only the rows down to the point's at once, the rest
    of it like the rows pulled into the band by a passing point: in the background (once the
    rows they replace have drained), a point needing one waiting for it. A fetch scans its
    pixels' mask bits, one per cycle, and asks for each run of kept pixels (``sim.band.runs``)
    ``RUN_DELAY`` cycles after scanning its end, ``memory.row_gap`` cycles after the one
    before at the earliest."""

    PIPELINE = 3  # s1, s2 and the output register
    SETTLE = 5  # the places queue's count, then the window's SETTLE cycles
    #: cycles from the window's decision (IDLE) to the first row's address: refill, slow
    #: path, ahead (and the multiply's steps, ``self.mul``; the scan starts with the multiply)
    STEPS = {"refill": 9, "slow": 5, "ahead": 4}
    #: from a run's end scanned to its request: the probe (two registers), the runs queue
    #: (two) and the request register
    RUN_DELAY = 6
    #: a fetch into the band changes its state, and the window decides from flags registered
    #: a cycle earlier: one cycle more before the next decision (no change for a slow path)
    STALE = 1

    def __init__(self, cfg: DefaConfig, events, his, memory: Memory, bus, keep):
        self.drain = sampler_latency(cfg)
        self.mul = head_bits_of(cfg) + cfg.max_side.bit_length() + 1
        self.chunks = cfg.cycles_per_point
        self.cap = max(1, 4 * cfg.max_burst // self.chunks)  # BandWindow.RUN_BURSTS
        self.memory, self.bus = memory, bus
        self.keep = keep  # the level's mask (H x W, True: kept)
        self.whole = bool(keep.all())  # the window's probes are skipped
        self.width = keep.shape[1]
        self.events = {e.index: e for e in events}
        self.his = his  # per point the lowest row it needs (-1: none)
        self.index = 0  # the next point
        self.last_taken = -(10**9)
        self.fsm_free = 0  # the window's state machine is idle again
        self.evicted = -(10**9)  # the last time the band moved down
        self.row_ready: dict[int, int] = {}  # rows fetched ahead: when each is usable
        self.pending: list[int] = []  # rows due ahead
        self.ahead = None  # the event of the point just offered, applied when it is taken
        self.raised = False  # the point taken last pulled the band down
        self.waited = self.rows = self.slow = 0
        self.takes: list[int] = []

    def _request(self, decide: int, kind: str, first: int, rows: int, col=0, cols=None) -> int:
        """The cycle the fetch decided in ``decide`` is settled (the window idle again)."""
        cols = self.width if cols is None else cols
        address = decide + self.STEPS[kind] + self.mul  # the address is ready (SCAN)
        start = address - self.mul - 2  # the scan starts with the multiply
        if self.whole:  # nothing masked: no probes, a row per cycle, each one run
            runs = [band.Run(r, cols) for r in range(rows)]
            scan = rows
        else:
            cap = cols if kind == "ahead" else self.cap  # a row fetched ahead: runs uncapped
            runs = band.runs(self.keep[first : first + rows, col : col + cols], cap)
            scan = rows * cols
        last, before = max(address, start + scan) + 2, -(10**9)
        # A row's runs asked for before the bus could have delivered the ones before them
        # follow those on the bus as one train (as a row's single request did: each run
        # apart, interleaved with the other levels' requests, underestimated the RTL by 15%
        # on the fpga encoder's rows of 11 runs; a train per row keeps it within 1%).
        train = None  # [first request, beats, when its data would end on a free bus, row]
        for run in runs:
            at = max(
                start + run.scan + self.RUN_DELAY, address + 1, before + 1 + self.memory.row_gap
            )
            beats = run.pixels * self.chunks
            row = run.scan if self.whole else run.scan // cols
            if train is not None and at <= train[2] and row == train[3]:
                train[1] += beats
                train[2] += beats / self.memory.beats_per_cycle
            else:
                if train is not None:
                    last = max(last, self.bus.fetch(train[0], train[1]))
                end = at + self.memory.latency + beats / self.memory.beats_per_cycle
                train = [at, beats, end, row]
            before = at
        if train is not None:
            last = max(last, self.bus.fetch(train[0], train[1]))
        return last + 1 + self.SETTLE

    def _run_ahead(self, until: int, last: int | None = None) -> None:
        """Fetch the rows due ahead, in order, while the window is free, up to ``until`` (and
        no further than row ``last``: the bus takes each level's requests as they are due)."""
        while self.pending:
            start = max(self.fsm_free, self.evicted + 1 + self.drain)
            if start > until:
                return
            row = self.pending.pop(0)
            done = self._request(start, "ahead", row, 1) + self.STALE
            self.row_ready[row] = self.fsm_free = done
            if row == last:
                return

    def offer(self, t: int) -> int:
        """The cycle the point offered at ``t`` (without memory) may enter the sampler."""
        i = self.index
        self.index += 1
        event = self.events.get(i)
        self._run_ahead(t)
        if event is None or event.kind == "ahead":
            hi = int(self.his[i])
            if hi >= 0 and hi in self.pending:
                self._run_ahead(10**12, last=hi)
            ready = self.row_ready.get(hi, 0) + 1 if hi >= 0 else 0
            if self.raised and self.chunks == 1:
                # the point before pulled the band down as it passed: this one's flags were
                # registered against the old top (with more chunks per point it is hidden)
                ready = max(ready, self.last_taken + 2)
            if ready > t:  # its row is still on its way
                self.waited += ready - t
                t = ready
            self.ahead = event
            return t
        # it waits: the rows due ahead first, then the drain, then its own fetch
        self._run_ahead(10**12)
        decide = max(t - 1, self.fsm_free, self.last_taken + 1 + self.drain)
        if event.kind == "slow":
            done = self._request(decide, "slow", event.first, event.rows, event.col, event.pixels)
            self.slow += 1
        else:  # a new band: the point's rows at once, the rest of the band ahead of the points
            hi = int(self.his[i])
            now = max(1, min(event.rows, hi - event.first + 1))
            done = self._request(decide, "refill", event.first, now) + self.STALE
            self.rows += event.rows
            self.row_ready = {}
            self.pending = list(range(event.first + now, event.first + event.rows))
        self.fsm_free = done
        ready = max(t, done + 1)
        self.waited += ready - t
        return ready

    def taken_before(self, n: int) -> int:
        """When the point ``n`` before the last one entered the sampler (-1: none)."""
        return self.takes[-n - 1] if len(self.takes) > n else -1

    def taken(self, t: int) -> None:
        """The point's last chunk entered the sampler in cycle ``t``."""
        self.last_taken = t
        self.takes.append(t)
        event, self.ahead = self.ahead, None
        self.raised = event is not None
        if event is not None:  # it pulled rows into the band: due once the old ones drain
            self.evicted = t - 1
            self.pending += list(range(event.first, event.first + event.rows))
            self.rows += event.rows


def head_bits_of(cfg: DefaConfig) -> int:
    return max(1, (cfg.heads - 1).bit_length())


def predict_streamed(
    cfg: DefaConfig, qc, tau_p_q: int, order, memory: Memory, pixel_mask=None
) -> dict:
    """The cycle model with the maps in external memory: the jobs ``order`` (``(query,
    head)`` pairs, as sent), each level's band window (``BandGate``) over ``memory``;
    ``pixel_mask`` (all levels' pixels, flattened as the value rows; True: kept; default all):
    FWP's mask, whose masked pixels are not fetched."""
    if not cfg.streamed:
        raise ValueError("predict_streamed needs window_rows (maps in external memory)")
    bus = _Bus(memory)
    gates, pixels = [], []
    traces = band.level_traces(cfg, qc, tau_p_q, order, pixel_mask)
    for (h, w), lt in zip(qc.shapes, traces, strict=True):
        on_map = (lt.x0 >= -1) & (lt.x0 < int(w)) & (lt.y0 >= -1) & (lt.y0 < int(h))
        his = np.where(on_map, np.minimum(lt.y0 + 1, int(h) - 1), -1)
        gates.append(BandGate(cfg, lt.trace.events, his, memory, bus, lt.keep))
        pixels.append(lt.trace.pixels_fetched)
    keep = qc.probs >= tau_p_q
    qs = np.array([q for q, _ in order])
    hs = np.array([h for _, h in order])
    kept = keep[qs, hs].sum(-1)
    result = predict(cfg, kept, bands=gates)
    result["pixels_fetched"] = pixels  # per level: the kept pixels of the rows fetched
    return result
