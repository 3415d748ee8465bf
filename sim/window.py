"""Level windows: which part of each level map a level unit keeps on chip when the maps live
in external memory, what each choice costs in traffic, and the query orders that feed it.

A trace lists, for each query in a given order and each level, the map pixels its kept points
touch: the four bilinear corners of every kept point of every head (off-map corners and
PAP-pruned points touch nothing). A pixel is ``pixel_bytes`` bytes (all heads' channels,
int8), stored pixel-major and row-major: one pixel, or a run of pixels in one row, is one
burst.

Windows (each per level, its capacity counted in pixels):

* ``band``: ``rows`` rows of the map (full width) in a ring that only moves down (queries in
  raster order): on demand (the lowest row a query touches pulls it down) or, with
  ``above``, ahead of the queries (``above`` rows over the current query's own row, the rest
  below it). Rows are fetched once, in order, as they enter it. A pixel outside the band
  takes the slow path: fetched alone for the query that needs it, counted.
* ``tiles``: a 2-D direct-mapped window of ``wy x wx`` pixels in ``b x b`` blocks: map block
  ``(by, bx)`` lives in slot ``(by mod wy/b, bx mod wx/b)`` with its tag; a miss fetches the
  block (``b`` bursts of ``b`` pixels). Neighbours never evict each other.
* ``lru``: a set-associative cache of ``b x b`` blocks (``ways`` per set, sets indexed by the
  block's position), least recently used replaced.

Orders (``order``): ``given`` (as the workload lists its queries: an encoder level by level,
raster inside a level), ``raster`` (by reference point, row-major on the finest level's grid,
all levels' queries interleaved), ``hilbert`` (the same points along a Hilbert curve).

``compulsory`` bytes: every pixel some query touches, once. ``traffic`` over it is the figure
the external-memory issue bounds (<= 1.2).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

__all__ = ["ORDERS", "Window", "hilbert_index", "level_touches", "query_order", "simulate", "study"]

ORDERS = ("given", "raster", "hilbert")


@dataclass(frozen=True)
class Window:
    """A window policy: ``kind`` in band / tiles / lru and its shape (see the module doc)."""

    kind: str
    rows: int = 0  # band
    above: int | None = None  # band: rows kept above the query's own row (None: on demand)
    block: int = 4  # tiles, lru: block edge in pixels
    wy: int = 0  # tiles: window height in pixels (a multiple of block)
    wx: int = 0  # tiles: window width in pixels
    blocks: int = 0  # lru: capacity in blocks
    ways: int = 4  # lru

    def capacity(self, width: int) -> int:
        """Pixels held on chip for a map ``width`` pixels wide."""
        if self.kind == "band":
            return self.rows * width
        if self.kind == "tiles":
            return self.wy * self.wx
        return self.blocks * self.block * self.block

    def describe(self) -> str:
        if self.kind == "band":
            return f"band {self.rows} rows"
        if self.kind == "tiles":
            return f"tiles {self.wy}x{self.wx} ({self.block}x{self.block} blocks)"
        return f"lru {self.blocks} blocks of {self.block}x{self.block}, {self.ways} ways"


def hilbert_index(y: np.ndarray, x: np.ndarray, bits: int) -> np.ndarray:
    """Position along a Hilbert curve over a ``2**bits`` square of integer points ``(y, x)``."""
    x = np.asarray(x, dtype=np.int64).copy()
    y = np.asarray(y, dtype=np.int64).copy()
    d = np.zeros_like(x)
    s = 1 << (bits - 1)
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant so the curve continues
        flip = ~ry
        swap_x = np.where(flip & rx, s - 1 - x, x)
        swap_y = np.where(flip & rx, s - 1 - y, y)
        x, y = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
        s >>= 1
    return d


def query_order(ref: np.ndarray, shapes: np.ndarray, order: str) -> np.ndarray:
    """The permutation of queries ``order`` names (``ORDERS``), from their reference points
    ``ref`` (Nq, L, 2) normalized (x, y) on the finest level's grid ``shapes[0]``. Its
    inverse puts outputs back where they belong: ``out[perm] = out_in_order``."""
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not allowed: use one of {ORDERS}")
    nq = ref.shape[0]
    if order == "given":
        return np.arange(nq)
    h, w = (int(v) for v in shapes[0])
    qx = np.clip(np.floor(ref[:, 0, 0] * w), 0, w - 1).astype(np.int64)
    qy = np.clip(np.floor(ref[:, 0, 1] * h), 0, h - 1).astype(np.int64)
    if order == "raster":
        return np.lexsort((qx, qy))
    bits = max(1, int(np.ceil(np.log2(max(h, w)))))
    return np.argsort(hilbert_index(qy, qx, bits), kind="stable")


def level_touches(
    locations: np.ndarray, keep: np.ndarray, shapes: np.ndarray, level: int, head=None
):
    """Per query, the ``(y, x)`` pixels of ``level`` its kept points touch (of one ``head``
    only, if given): two int arrays (Nq, K) with -1 where a corner is off the map or its
    point pruned.

    locations (Nq, M, L, P, 2) normalized (x, y); keep (Nq, M, L, P) bool.
    """
    h, w = (int(v) for v in shapes[level])
    if head is not None:
        locations = locations[:, head : head + 1]
        keep = keep[:, head : head + 1]
    loc = locations[:, :, level]
    px = loc[..., 0] * w - 0.5
    py = loc[..., 1] * h - 0.5
    x0 = np.floor(px).astype(np.int64)
    y0 = np.floor(py).astype(np.int64)
    xs = np.stack([x0, x0 + 1, x0, x0 + 1], -1)
    ys = np.stack([y0, y0, y0 + 1, y0 + 1], -1)
    valid = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h) & keep[:, :, level, :, None]
    nq = loc.shape[0]
    ys = np.where(valid, ys, -1).reshape(nq, -1)
    xs = np.where(valid, xs, -1).reshape(nq, -1)
    return ys, xs


@dataclass
class LevelTraffic:
    """One level's figures, in pixels (multiply by the pixel's bytes for bytes)."""

    fetched: int  # pixels brought on chip by refills
    slow: int  # pixels fetched alone on the slow path
    compulsory: int  # distinct pixels touched
    capacity: int  # pixels the window holds
    refills: int  # bursts

    @property
    def ratio(self) -> float:
        return (self.fetched + self.slow) / max(1, self.compulsory)


def simulate(window: Window, ys, xs, height: int, width: int, anchor=None) -> LevelTraffic:
    """Run one level's touches (``level_touches``, rows already in query order) through
    ``window``; a band placed ahead of the queries also needs each query's own row on this
    map (``anchor``, Nq)."""
    valid = ys >= 0
    compulsory = int(np.unique((ys * width + xs)[valid]).size)
    capacity = window.capacity(width)
    if window.kind == "band":
        if window.above is not None and anchor is None:
            raise ValueError("a band placed ahead of the queries needs each query's row (anchor)")
        fetched, slow, refills = _band(
            window.rows, window.above, anchor, ys, xs, valid, height, width
        )
        return LevelTraffic(fetched, slow, compulsory, capacity, refills)
    b = window.block
    by, bx = ys // b, xs // b
    keys = np.where(valid, by * ((width + b - 1) // b) + bx, -1)
    seq = _per_query_unique(keys)
    if window.kind == "tiles":
        if window.wy % b or window.wx % b or window.wy < b or window.wx < b:
            raise ValueError(f"tiles window {window.wy}x{window.wx} must be whole {b}x{b} blocks")
        fetched, refills = _tiles(seq, window.wy // b, window.wx // b, (width + b - 1) // b)
    elif window.kind == "lru":
        fetched, refills = _lru(seq, window.blocks, window.ways)
    else:
        raise ValueError(f"window kind {window.kind!r} is not allowed: band, tiles or lru")
    pixels = _block_pixels(b, height, width)
    return LevelTraffic(sum(pixels[k] for k in fetched), 0, compulsory, capacity, refills * b)


def _per_query_unique(keys: np.ndarray) -> list[np.ndarray]:
    rows = np.sort(keys, axis=1)
    fresh = np.ones_like(rows, dtype=bool)
    fresh[:, 1:] = rows[:, 1:] != rows[:, :-1]
    fresh &= rows >= 0
    return [r[f] for r, f in zip(rows, fresh, strict=True)]


def _block_pixels(b: int, height: int, width: int) -> dict[int, int]:
    bw = (width + b - 1) // b
    bh = (height + b - 1) // b
    out = {}
    for y in range(bh):
        for x in range(bw):
            out[y * bw + x] = (min(height, (y + 1) * b) - y * b) * (min(width, (x + 1) * b) - x * b)
    return out


def _tiles(seq, slots_y: int, slots_x: int, blocks_wide: int):
    tags = {}
    fetched = []
    refills = 0
    for blocks in seq:
        for k in blocks.tolist():
            by, bx = divmod(k, blocks_wide)
            slot = (by % slots_y, bx % slots_x)
            if tags.get(slot) != k:
                tags[slot] = k
                fetched.append(k)
                refills += 1
    return fetched, refills


def _lru(seq, blocks: int, ways: int):
    sets = max(1, blocks // ways)
    cache = [OrderedDict() for _ in range(sets)]
    fetched = []
    refills = 0
    for query_blocks in seq:
        for k in query_blocks.tolist():
            s = cache[k % sets]
            if k in s:
                s.move_to_end(k)
                continue
            if len(s) >= ways:
                s.popitem(last=False)
            s[k] = True
            fetched.append(k)
            refills += 1
    return fetched, refills


def _band(rows, above, anchor, ys, xs, valid, height, width):
    top = 0  # the band holds rows [top, top + rows)
    loaded = 0  # rows [0, loaded) have been fetched
    fetched = slow = refills = 0
    for q, (y, x, v) in enumerate(zip(ys, xs, valid, strict=True)):
        if not v.any():
            continue
        row, col = y[v], x[v]
        if above is None:  # on demand: the band moves down to the lowest row touched
            want = int(row.max()) - rows + 1
        else:  # ahead of the queries: ``above`` rows over the query's own row
            want = int(anchor[q]) - above
        top = min(max(top, want), max(0, height - rows))
        end = min(top + rows, height)
        if end > loaded:  # the rows entering the band, each fetched once
            first = max(loaded, top)
            fetched += (end - first) * width
            refills += end - first
            loaded = end
        outside = (row < top) | (row >= end)
        if outside.any():
            slow += int(np.unique(row[outside] * width + col[outside]).size)
    return fetched, slow, refills


def study(workload, keep: np.ndarray, windows, order: str = "raster", head_major: bool = True):
    """Every level of ``workload`` through every window of ``windows`` (one list per level,
    or one list for all), queries in ``order``. Head-major: each head's queries run as a pass
    of their own through a window that holds that head's channels only (a pixel is
    ``head_dim`` bytes); otherwise one pass, a pixel all heads' channels. Returns one dict per
    (level, window): the ``LevelTraffic`` figures in bytes, the ratio to compulsory, and what
    the same samples cost without reuse (each corner of each kept point fetched)."""
    perm = query_order(workload.ref, workload.shapes, order)
    loc, kept = workload.locations[perm], keep[perm]
    heads = range(workload.heads) if head_major else [None]
    pixel_bytes = workload.head_dim * (1 if head_major else workload.heads)
    rows = []
    for level in range(workload.levels):
        h, w = (int(v) for v in workload.shapes[level])
        level_windows = windows[level] if isinstance(windows[0], (list, tuple)) else windows
        touches = [level_touches(loc, kept, workload.shapes, level, head) for head in heads]
        anchor = np.floor(workload.ref[perm, level, 1] * h).astype(np.int64)
        no_reuse = sum(int((ys >= 0).sum()) for ys, _ in touches) * pixel_bytes
        for window in level_windows:
            runs = [simulate(window, ys, xs, h, w, anchor) for ys, xs in touches]
            fetched = sum(r.fetched for r in runs) * pixel_bytes
            slow = sum(r.slow for r in runs) * pixel_bytes
            compulsory = sum(r.compulsory for r in runs) * pixel_bytes
            rows.append(
                {
                    "level": level,
                    "shape": (h, w),
                    "window": window.describe(),
                    "capacity_bytes": runs[0].capacity * pixel_bytes,
                    "fetched_bytes": fetched,
                    "slow_bytes": slow,
                    "compulsory_bytes": compulsory,
                    "no_reuse_bytes": no_reuse,  # every corner of every kept point fetched
                    "refills": sum(r.refills for r in runs),
                    "ratio": (fetched + slow) / max(1, compulsory),
                }
            )
    return rows
