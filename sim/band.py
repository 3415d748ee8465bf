"""The band window of one level as the hardware runs it: point by point, in the order the
sampler receives them (``sim.window`` studies the same policy query by query).

Each point needs the on-map rows among ``y0, y0 + 1`` (none if no corner is on the map); the
band follows the points down and its rows are fetched once each, in order (``band_trace``); a
row above it takes the slow path: the point's on-map corners fetched alone. Only pixels that
FWP keeps are fetched: each fetch scans its rows' mask bits and asks for each run of kept
pixels (``runs``). ``memory_layout`` writes the maps as the hardware reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BandEvent",
    "BandTrace",
    "LevelTrace",
    "Run",
    "band_trace",
    "corner_rows",
    "level_traces",
    "memory_layout",
    "runs",
]


def corner_rows(ref: np.ndarray, off: np.ndarray, frac_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer corners ``(x0, y0)`` of points given in hardware units (``ref`` = ref * size
    and ``off`` in pixels, both with ``frac_bits`` fraction bits): ``floor(ref + off - 1/2)``."""
    pos = np.asarray(ref, np.int64) + np.asarray(off, np.int64) - (1 << (frac_bits - 1))
    return pos[..., 0] >> frac_bits, pos[..., 1] >> frac_bits


@dataclass(frozen=True)
class BandEvent:
    """What point ``index`` cost: ``refill``, rows ``first`` .. ``first + rows - 1`` fetched
    while it waits (a new band, or a row below the band's end); ``ahead``, the rows it pulled
    into the band, fetched in the background after it passed (each ``pixels`` pixels);
    ``slow``, its on-map corners fetched alone (``rows`` rows of ``pixels`` pixels from
    column ``col``)."""

    index: int
    kind: str  # "refill", "ahead" or "slow"
    first: int
    rows: int
    pixels: int  # pixels per row fetched (masked ones included: the columns scanned)
    hi: int = 0  # the lowest row the point needs
    col: int = 0  # the first column


@dataclass(frozen=True)
class Run:
    """A run of kept pixels one request asks for: ``pixels`` of them, ending with the fetch's
    scanned pixel ``scan`` (counted from 0 over its rows, row by row; for a run that a masked
    pixel ends, that pixel: where the run is known to end)."""

    scan: int
    pixels: int


def runs(keep: np.ndarray, cap: int) -> list[Run]:
    """The runs of a fetch whose scanned pixels' mask bits are ``keep`` (rows x columns, True:
    kept): kept pixels next to each other in a row, at most ``cap`` each."""
    out = []
    cols = keep.shape[1]
    for r, row in enumerate(np.asarray(keep, bool)):
        length = 0
        for c, kept in enumerate(row.tolist()):
            k = r * cols + c
            if kept:
                length += 1
                if c == cols - 1 or length == cap:
                    out.append(Run(k, length))
                    length = 0
            elif length:
                out.append(Run(k, length))
                length = 0
    return out


@dataclass
class BandTrace:
    rows_fetched: int = 0
    slow_points: int = 0
    pixels_fetched: int = 0  # band rows' pixels and slow-path pixels
    events: list[BandEvent] = field(default_factory=list)


def band_trace(
    rows: int,
    height: int,
    width: int,
    head: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    *,
    reach: int | None = None,
    keep: np.ndarray | None = None,
) -> BandTrace:
    """Run points (``head``, corner ``x0``, ``y0`` each (N,), in order) through a band of
    ``rows`` rows on a ``height x width`` map; the band starts empty.

    The band holds rows ``[top, end)`` of one head, ``end = min(top + rows, H)``: every row up
    to its end is fetched (ahead of the points when the memory keeps up, else while a point
    waits: the rows and the points' paths are the same, only the time differs). A point of
    that head with a row above ``top`` takes the slow path; any other point with a corner on
    the map passes (after its rows arrive) and pulls the top down to ``min(max(top, hi -
    reach + 1), max(0, H - rows))``, ``reach`` (default ``rows``) the rows it may pull the
    band down to without waiting (``DefaConfig.band_reach``: the rest are fetched ahead);
    another head starts a new band there. ``keep`` (``height x width``, True: kept; default
    all): FWP's mask; ``pixels_fetched`` counts the kept pixels of what is fetched."""
    trace = BandTrace()
    reach = rows if reach is None else reach
    if not 1 <= reach <= rows:
        raise ValueError(f"reach={reach} is out of range: allowed [1, {rows}]")
    max_top = max(0, height - rows)
    if keep is not None and np.shape(keep) != (height, width):
        raise ValueError(f"keep has shape {np.shape(keep)}: the map is {height}x{width}")
    kept_rows = None if keep is None else np.asarray(keep, bool).sum(axis=1)

    def kept(r0: int, r1: int, c0: int, c1: int) -> int:
        if keep is None:
            return (r1 - r0) * (c1 - c0)
        if c0 == 0 and c1 == width:
            return int(kept_rows[r0:r1].sum())
        return int(np.asarray(keep[r0:r1, c0:c1], bool).sum())

    valid = False
    band_head = top = end = 0
    for i, (h, x, y) in enumerate(zip(head.tolist(), x0.tolist(), y0.tolist(), strict=True)):
        if not (-1 <= x < width and -1 <= y < height):
            continue  # no corner on the map
        lo, hi = max(y, 0), min(y + 1, height - 1)
        if valid and h == band_head and lo < top:
            col = max(x, 0)
            cols = min(x + 1, width - 1) - col + 1
            trace.slow_points += 1
            trace.pixels_fetched += kept(lo, hi + 1, col, col + cols)
            trace.events.append(BandEvent(i, "slow", lo, hi - lo + 1, cols, hi, col))
            continue
        waits = not valid or h != band_head or hi >= end
        if not valid or h != band_head:
            top = end = 0
        top = min(max(top, hi - reach + 1), max_top)
        first, end_now = max(end, top), min(top + rows, height)
        if end_now > first:
            trace.rows_fetched += end_now - first
            trace.pixels_fetched += kept(first, end_now, 0, width)
            kind = "refill" if waits else "ahead"
            trace.events.append(BandEvent(i, kind, first, end_now - first, width, hi))
            end = end_now
        band_head, valid = h, True
    return trace


@dataclass(frozen=True)
class LevelTrace:
    """One level's band trace for a job order, with what it was computed from: the kept
    points' corners (``x0``, ``y0``, in job order) and the level's FWP mask (``keep``,
    ``height x width``, True: kept)."""

    trace: BandTrace
    x0: np.ndarray
    y0: np.ndarray
    keep: np.ndarray


def level_traces(cfg, qc, tau_p_q: int, order, pixel_mask=None) -> list[LevelTrace]:
    """Every level's band (``cfg.window_rows``) over the points PAP keeps at ``tau_p_q`` of
    the jobs in ``order`` ((query, head) pairs, as sent; points in order within a job) of the
    quantized workload ``qc``; ``pixel_mask`` (all levels' pixels, flattened as the value
    rows; True: kept; default all): FWP's mask."""
    sizes = [int(h) * int(w) for h, w in qc.shapes]
    starts = np.cumsum([0, *sizes])
    if pixel_mask is None:
        pixel_mask = np.ones(starts[-1], bool)
    elif np.shape(pixel_mask) != (starts[-1],):
        raise ValueError(f"pixel_mask has shape {np.shape(pixel_mask)}: the maps have {starts[-1]}")
    kept = qc.probs >= tau_p_q
    qs = np.array([q for q, _ in order])
    hs = np.array([h for _, h in order])
    out = []
    for level, (h, w) in enumerate(qc.shapes):
        keep = np.asarray(pixel_mask[starts[level] : starts[level + 1]], bool)
        keep = keep.reshape(int(h), int(w))
        k = kept[qs, hs, level]  # (jobs, P)
        ref = np.broadcast_to(qc.ref_w[qs, None, level], k.shape + (2,))[k]
        off = qc.offsets[qs, hs, level][k]
        heads = np.broadcast_to(hs[:, None], k.shape)[k]
        x0, y0 = corner_rows(ref, off, cfg.coord_frac_bits)
        trace = band_trace(
            cfg.window_rows[level],
            int(h),
            int(w),
            heads,
            x0,
            y0,
            reach=cfg.band_reach(level),
            keep=keep,
        )
        out.append(LevelTrace(trace, x0, y0, keep))
    return out


def memory_layout(values: np.ndarray, height: int, width: int) -> bytes:
    """One level's map as it lives in memory: ``[head][row][column][channel]``, int8 values
    (two's complement) from ``values`` (H*W, heads, head_dim)."""
    hw, heads, dim = values.shape
    if hw != height * width:
        raise ValueError(f"values hold {hw} pixels; a {height}x{width} map has {height * width}")
    if values.min() < -128 or values.max() > 127:
        raise ValueError("memory_layout writes int8 values: allowed [-128, 127]")
    planes = np.asarray(values, np.int64).reshape(height, width, heads, dim).transpose(2, 0, 1, 3)
    return planes.astype(np.int8).tobytes()
