"""Cycle model of the core: predicts the RTL's cycle count from a workload and a config.

The model follows each (query, head) job through the core at job granularity, with the
timing the RTL documents (``rtl/core.py`` and its blocks):

* with ``cfg.softmax`` a job reaches the dispatcher ``softmax_latency(cfg)`` cycles after it
  is offered (the softmax unit takes one job per cycle; its output queue absorbs the
  dispatcher's holds);
* the dispatcher accepts at most one job per cycle, and only while every level's entry and
  descriptor queue (``queue_depth`` each) has room;
* a queue makes a written item readable two cycles later (Amaranth's ``SyncFIFOBuffered``);
* level l's sampler takes one chunk per cycle: a job with k kept points there needs
  ``k * head_dim/lanes`` chunks, back to back with the previous job; a chunk is visible at
  the sampler's output ``sampler_latency(cfg)`` cycles after it entered; the sampler's
  pipeline never stalls, and a chunk enters only while fewer than ``sampler_latency(cfg) + 2``
  (its output queue) are in flight (credits);
* the accumulator takes a job's beats only once the previous job's sum is out (jobs in order),
  emits one level sum per cycle at most, the sum of a job with no kept point as soon as its
  descriptor is readable, and holds the emitting beat while its output queue is full;
* the aggregator joins one job per cycle when all level sums are readable; its pipeline adds
  ``aggregator_latency(cfg)`` cycles.

``predict`` returns the cycle count the core's ``cycles`` counter shows after the last output
when jobs are offered back to back and outputs are always taken (the cocotb ``measure`` test),
plus per-level busy cycles and the ideal count (kept points / levels, in chunks).
"""

from __future__ import annotations

import numpy as np

from gen.config import DefaConfig

__all__ = [
    "FIFO_LATENCY",
    "aggregator_latency",
    "kept_points",
    "predict",
    "sampler_latency",
    "softmax_latency",
]

FIFO_LATENCY = 2


def _tree(n: int) -> int:
    """Register stages of the RTL's reduction trees: one per two levels, at least one."""
    return max(1, -(-((n - 1).bit_length()) // 2))


def sampler_latency(cfg: DefaConfig) -> int:
    """Input register, coordinates, the coefficient pipeline (input register, two
    shift-and-add trees over the coordinate fraction bits, three more stages; the buffer read,
    3 cycles, is shorter and starts later), the masked coefficients' copies, the multipliers'
    input registers, products, pair sums, the corner sums' register, then the output queue
    (two cycles)."""
    coefficients = 4 + 2 * _tree(cfg.coord_frac_bits)
    return 1 + 1 + coefficients + 1 + 6


def aggregator_latency(cfg: DefaConfig) -> int:
    """Input register, the sum over levels, rounding, saturation into the output queue (two
    cycles)."""
    return 4 + _tree(cfg.levels)


def softmax_latency(cfg: DefaConfig) -> int:
    """The fused softmax's pipeline depth (it delays only the start: one job per cycle): 13
    stages, its output queue (2), and two reduction trees over the L*P logits (maximum, sum)
    of one register stage per two tree levels each."""
    return 15 + 2 * _tree(cfg.points_per_head)


#: cycles between the counter clear and the first job offered, plus the output's edge
_OFFSET = 2


class _Sampler:
    """A sampler that never stalls inside: chunk n enters at the earliest one cycle after chunk
    n-1, and only once chunk n-D has left its output queue (D = ``queue``: credits); it is
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
            t = max(t, self.left[n - self.queue] + 1)
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
    # A queue of depth D is a (D-1)-deep FIFO plus an output register: item n may be written
    # once item n-(D-1) has moved to the register, i.e. is visible to the reader.
    room = cfg.queue_depth - 1
    q = FIFO_LATENCY
    accept = np.zeros(jobs, dtype=np.int64)
    emit = np.zeros((levels, jobs), dtype=np.int64)  # a level sum is written to its queue
    desc_visible = np.zeros((levels, jobs), dtype=np.int64)
    sum_visible = np.zeros((levels, jobs), dtype=np.int64)
    take = np.zeros(jobs, dtype=np.int64)  # the aggregator joins a job
    entry_visible: list[list[int]] = [[] for _ in range(levels)]  # per non-empty entry
    sampler_free = [0] * levels  # first cycle the selector may present a new point
    depth = sampler_latency(cfg) + 2  # the sampler's output queue (Sampler.queue_depth_of)
    samplers = [_Sampler(sampler_latency(cfg), depth) for _ in range(levels)]
    prev_accept = (softmax_latency(cfg) if cfg.softmax else 0) - 1
    for j in range(jobs):
        a = prev_accept + 1
        for lv in range(levels):
            if j >= room:
                a = max(a, desc_visible[lv, j - room])
            seen = entry_visible[lv]
            if len(seen) >= room:
                a = max(a, seen[len(seen) - room])
        accept[j] = prev_accept = a
        for lv in range(levels):
            k = kept[j, lv]
            after_previous = emit[lv, j - 1] + 1 if j else 0
            desc_visible[lv, j] = max(a + q, after_previous)
            sum_room = sum_visible[lv, j - room] if j >= room else 0
            if k:
                start = max(a + q, sampler_free[lv])
                entry_visible[lv].append(start)
                # Every chunk enters as soon as credits allow; the accumulator takes the
                # first beat only once the previous job's sum is out (jobs in order), the
                # last one only with room in the sum queue, the others as they come.
                sampler = samplers[lv]
                beats, first = k * chunks, len(sampler.entered)
                holds = [0] * beats
                holds[0] = after_previous
                holds[-1] = max(holds[-1], sum_room)
                for _ in range(beats):
                    # a chunk's credit comes back when the chunk `depth` before it leaves
                    while len(sampler.left) <= len(sampler.entered) - depth:
                        sampler.leave(holds[len(sampler.left) - first])
                    last_accept = sampler.enter(start)
                while len(sampler.left) < len(sampler.entered):
                    e = sampler.leave(holds[len(sampler.left) - first])
                sampler_free[lv] = last_accept + 1
            else:
                e = max(desc_visible[lv, j], sum_room)
            emit[lv, j] = e
        t = int(emit[:, j].max()) + q
        if j:
            t = max(t, take[j - 1] + 1)
        take[j] = t
        for lv in range(levels):
            sum_visible[lv, j] = max(emit[lv, j] + q, take[j - 1] + 1 if j else 0)
    busy = (kept.sum(0) * chunks).tolist()
    return {
        "cycles": int(take[-1]) + aggregator_latency(cfg) + _OFFSET,
        "busy": busy,
        "ideal": int(np.ceil(kept.sum() * chunks / levels)),
        "jobs": jobs,
    }
