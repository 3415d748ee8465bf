"""The band window's point-level model (sim/band.py) on hand-worked traces, and the memory
layout against a direct construction."""

import numpy as np
import pytest

from gen.config import preset
from sim.band import band_trace, corner_rows, memory_layout, runs


def _trace(rows, height, width, points, reach=None):
    head = np.array([h for h, _, _ in points])
    x0 = np.array([x for _, x, _ in points])
    y0 = np.array([y for _, _, y in points])
    return band_trace(rows, height, width, head, x0, y0, reach=reach)


def test_band_moves_down_fetching_each_row_once():
    # 4 rows, reach 3, a 10-row map 5 wide; points (head, x0, y0)
    t = _trace(4, 10, 5, [(0, 1, 0), (0, 1, 1), (0, 2, 4), (0, 2, 5), (0, 0, 8)], reach=3)
    # first point: rows 0-1, top 0, band [0, 4) fetched (waits); (0, 1, 1) inside; y0 4:
    # hi 5 >= 4: top = 5 - 2 = 3, rows [4, 7) (waits); y0 5: hi 6 < 7: passes, top 4, row 7
    # ahead; y0 8: hi 9 >= 8: top min(7, 6) = 6, rows [8, 10) (waits)
    assert [(e.kind, e.first, e.rows) for e in t.events] == [
        ("refill", 0, 4),
        ("refill", 4, 3),
        ("ahead", 7, 1),
        ("refill", 8, 2),
    ]
    assert t.rows_fetched == 10 and t.slow_points == 0
    assert t.pixels_fetched == 10 * 5


def test_slow_path_above_the_band_and_a_new_head():
    t = _trace(
        4, 10, 5, [(0, 1, 7), (0, 4, 2), (0, -1, 5), (1, 0, 0), (0, 9, 9), (0, 2, -3)], reach=3
    )
    # (0, 1, 7): rows 7-8, top 6, rows [6, 10); (0, 4, 2) rows 2-3 above: slow, 1 column
    # (x 4 is the last); (0, -1, 5): rows 5-6, 5 < 6: slow, column 0 only; head 1 at row 0:
    # a new band [0, 4); (0, 9, 9): x0 9 is off the map (needs nothing); (0, 2, -3) neither
    kinds = [(e.index, e.kind, e.first, e.rows, e.pixels) for e in t.events]
    assert kinds == [
        (0, "refill", 6, 4, 5),
        (1, "slow", 2, 2, 1),
        (2, "slow", 5, 2, 1),
        (3, "refill", 0, 4, 5),
    ]
    assert t.slow_points == 2 and t.rows_fetched == 8
    assert t.pixels_fetched == 8 * 5 + 2 + 2


def test_whole_map_in_a_taller_band_and_bad_reach():
    t = _trace(8, 3, 4, [(0, 0, 2), (0, 0, -1), (0, 3, 0)])
    assert [(e.kind, e.first, e.rows) for e in t.events] == [("refill", 0, 3)]
    with pytest.raises(ValueError, match="reach=5"):
        _trace(4, 10, 5, [(0, 0, 0)], reach=5)


def test_reach_of_the_presets_rows():
    cfg = preset("tiny", offset_bits=16, max_shapes=((40, 11), (24, 6)), window_rows=(32, 2))
    assert cfg.band_reach(0) == 28 and cfg.band_reach(1) == 2
    assert preset("tiny", window_rows=(4, 8)).band_reach(0) == 3
    assert preset("tiny", window_rows=(4, 8)).band_reach(1) == 7


def test_corner_rows_floor_half_pixel():
    # ref + off - 1/2 in 8-bit fractions: 1.5 px -> 1, 0.25 px -> -1 (floor)
    x0, y0 = corner_rows(np.array([[384, 64]]), np.array([[0, 0]]), 8)
    assert (int(x0[0]), int(y0[0])) == (1, -1)


def test_memory_layout_is_head_row_column_channel():
    h, w, heads, dim = 2, 3, 2, 4
    rng = np.random.default_rng(0)
    values = rng.integers(-128, 128, (h * w, heads, dim))
    image = np.frombuffer(memory_layout(values, h, w), dtype=np.int8)
    for head in range(heads):
        for y in range(h):
            for x in range(w):
                offset = ((head * h + y) * w + x) * dim
                assert list(image[offset : offset + dim]) == list(values[y * w + x, head])
    with pytest.raises(ValueError, match="int8"):
        memory_layout(values * 4, h, w)
    with pytest.raises(ValueError, match="3x3"):
        memory_layout(values, 3, 3)


def test_runs_of_kept_pixels_by_hand():
    keep = np.array([[1, 1, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    # row 0: [0, 2) ends at the masked pixel 2, [3, 6) at the row's end; row 1: none; row 2
    # in runs of at most 4
    got = [(r.scan, r.pixels) for r in runs(keep, 4)]
    assert got == [(2, 2), (5, 3), (15, 4), (17, 2)]
    assert runs(np.zeros((2, 3), bool), 4) == []


def test_masked_pixels_are_not_fetched():
    rng = np.random.default_rng(3)
    keep = rng.random((10, 5)) < 0.6
    points = [(0, 1, 0), (0, 1, 1), (0, 2, 4), (0, 2, 5), (0, 0, 8), (0, 3, 2)]
    head = np.array([h for h, _, _ in points])
    x0 = np.array([x for _, x, _ in points])
    y0 = np.array([y for _, _, y in points])
    full = band_trace(4, 10, 5, head, x0, y0, reach=3)
    masked = band_trace(4, 10, 5, head, x0, y0, reach=3, keep=keep)
    # the same rows and slow paths; the pixels fetched are the kept ones among them: every
    # row once, and the slow point (0, 3, 2)'s corners rows 2-3, columns 3-4
    assert [(e.kind, e.first, e.rows) for e in masked.events] == [
        (e.kind, e.first, e.rows) for e in full.events
    ]
    assert full.slow_points == masked.slow_points == 1
    assert masked.pixels_fetched == keep.sum() + keep[2:4, 3:5].sum()
    with pytest.raises(ValueError, match="10x5"):
        band_trace(4, 10, 5, head, x0, y0, keep=keep[:5])


def test_host_stores_only_kept_pixels():
    from fpga.host import _kept_runs

    h, w, heads, dim = 3, 4, 2, 2
    rng = np.random.default_rng(1)
    values = rng.integers(-128, 128, (h * w, heads, dim))
    image = memory_layout(values, h, w)
    keep = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    stored = bytearray(len(image))
    for addr, part in _kept_runs(100, image, keep, heads):
        stored[addr - 100 : addr - 100 + len(part)] = part
    want = bytearray(len(image))
    for head in range(heads):
        for y, x in zip(*np.nonzero(keep), strict=True):
            at = ((head * h + y) * w + x) * dim
            want[at : at + dim] = image[at : at + dim]
    assert stored == want
    assert len(_kept_runs(0, image, keep, heads)) == heads * 3  # [0], [2, 4) and row 2
