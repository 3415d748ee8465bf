"""Cycle model of the core: predicts the RTL's cycle count from a workload and a config.

The model follows each (query, head) job through the core at job granularity, with the
timing the RTL documents (``rtl/core.py`` and its blocks):

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

import heapq

import numpy as np

from gen.config import DefaConfig
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
    "predict",
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


def predict(cfg: DefaConfig, kept: np.ndarray) -> dict:
    """Cycles of the core for jobs with ``kept`` (J, L) surviving points."""
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
            for _ in range(k):
                if len(issued) >= points:
                    issue = max(issue, issued[-points] + back)
                for _ in range(chunks):
                    # a chunk's credit comes back when the chunk `depth` before it leaves
                    while len(sampler.left) <= len(sampler.entered) - depth:
                        sampler.leave(hold)
                    last_enter = sampler.enter(issue + x)
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
    return {
        "cycles": int(join[-1]) + aggregator_latency(cfg) + _OFFSET,
        "busy": busy,
        "ideal": int(np.ceil(kept.sum() * chunks / levels)),
        "jobs": jobs,
    }
