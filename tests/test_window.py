"""The level-window study (sim/window.py): query orders, and the traffic each window policy
counts, against hand-worked traces and a brute-force cache."""

import numpy as np
import pytest

from sim.window import Window, hilbert_index, level_touches, query_order, simulate


def test_hilbert_curve_visits_every_point_once_in_unit_steps():
    bits = 4
    ys, xs = np.divmod(np.arange(1 << (2 * bits)), 1 << bits)
    d = hilbert_index(ys, xs, bits)
    assert sorted(d.tolist()) == list(range(1 << (2 * bits)))
    path = np.argsort(d)
    steps = np.abs(np.diff(ys[path])) + np.abs(np.diff(xs[path]))
    assert (steps == 1).all()


def test_query_orders_are_permutations_and_raster_is_row_major():
    rng = np.random.default_rng(3)
    ref = np.repeat(rng.random((50, 1, 2)), 2, axis=1)
    shapes = np.array([[20, 30], [10, 15]])
    for order in ("given", "raster", "hilbert"):
        perm = query_order(ref, shapes, order)
        assert sorted(perm.tolist()) == list(range(50))
    perm = query_order(ref, shapes, "raster")
    key = np.floor(ref[perm, 0, 1] * 20) * 30 + np.floor(ref[perm, 0, 0] * 30)
    assert (np.diff(key) >= 0).all()
    assert (query_order(ref, shapes, "given") == np.arange(50)).all()
    with pytest.raises(ValueError, match="order='zigzag'.*given"):
        query_order(ref, shapes, "zigzag")


def _trace(points):
    """Queries of one touched pixel each: ys, xs (Nq, 1)."""
    ys = np.array([[y] for y, _ in points])
    xs = np.array([[x] for _, x in points])
    return ys, xs


def test_band_follows_the_queries_fetches_each_row_once_and_counts_the_slow_path():
    height, width = 10, 7
    # queries on rows 0..9, each touching its own row: a 4-row band (1 above, 3 below)
    ys, xs = _trace([(y, 3) for y in range(height)])
    anchor = np.arange(height)
    r = simulate(Window("band", rows=4, above=1), ys, xs, height, width, anchor)
    assert (r.fetched, r.slow, r.compulsory, r.capacity, r.refills) == (70, 0, 10, 28, 10)
    # Query rows 0, 5, 5, 6: the band is rows 0..3, then 4..7, then 5..8. Touches: row 3
    # (inside), row 1 twice (above it: fetched alone, once per query), row 9 (below it), row 8.
    ys, xs = _trace([(3, 0), (1, 2), (1, 2), (9, 0), (8, 1)])
    anchor = np.array([0, 5, 5, 5, 6])
    r = simulate(Window("band", rows=4, above=1), ys, xs, height, width, anchor)
    assert r.fetched == 9 * width and r.refills == 9  # rows 0..8, each once
    assert r.slow == 3 and r.compulsory == 4
    # the band stops at the map's last row
    r = simulate(Window("band", rows=4, above=1), ys[:1], xs[:1], height, width, [40])
    assert r.fetched == 4 * width
    with pytest.raises(ValueError, match="anchor"):
        simulate(Window("band", rows=4, above=1), ys, xs, height, width)
    # on demand: the band starts at rows 0..3, row 9 pulls it to rows 6..9, row 1 is then
    # fetched alone
    ys, xs = _trace([(0, 0), (9, 0), (1, 2), (8, 1)])
    r = simulate(Window("band", rows=4), ys, xs, height, width)
    assert (r.fetched, r.slow, r.refills) == (8 * width, 1, 8)  # rows 0..3, then 6..9


def test_tiles_keep_neighbours_and_evict_blocks_sharing_a_slot():
    # a 4x8 window of 2x2 blocks: 2x4 slots; blocks (0, 0) and (2, 0) share slot (0, 0)
    w = Window("tiles", block=2, wy=4, wx=8)
    ys, xs = _trace([(0, 0), (3, 7), (1, 1), (2, 6), (0, 1)])  # all inside one window
    r = simulate(w, ys, xs, 12, 12)
    assert r.fetched == 2 * 4 and r.refills == 2 * 2
    ys, xs = _trace([(0, 0), (4, 0), (0, 0), (4, 1)])
    r = simulate(w, ys, xs, 12, 12)
    assert r.fetched == 4 * 4  # every touch a miss
    # a block on the map's edge holds only its on-map pixels
    ys, xs = _trace([(10, 10)])
    assert simulate(w, ys, xs, 11, 11).fetched == 1
    with pytest.raises(ValueError, match="whole 2x2 blocks"):
        simulate(Window("tiles", block=2, wy=3, wx=8), ys, xs, 12, 12)


def _reference_lru(blocks_seq, capacity, ways):
    sets = capacity // ways
    content = {s: [] for s in range(sets)}
    misses = 0
    for k in blocks_seq:
        lines = content[k % sets]
        if k in lines:
            lines.remove(k)
        else:
            misses += 1
            if len(lines) == ways:
                lines.pop(0)
        lines.append(k)
    return misses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lru_matches_a_brute_force_cache(seed):
    rng = np.random.default_rng(seed)
    height = width = 16
    # queries of three touches each, clustered so that some hit
    centre = rng.integers(0, 16, (200, 1, 2))
    pts = np.clip(centre + rng.integers(-2, 3, (200, 3, 2)), 0, 15)
    ys, xs = pts[..., 0], pts[..., 1]
    w = Window("lru", block=2, blocks=8, ways=2)
    r = simulate(w, ys, xs, height, width)
    seq = []
    for qy, qx in zip(ys, xs, strict=True):
        seq += sorted(set((qy // 2 * 8 + qx // 2).tolist()))
    assert r.refills == 2 * _reference_lru(seq, 8, 2), f"seed {seed}"
    assert r.fetched == 4 * _reference_lru(seq, 8, 2)


def test_touches_are_the_four_corners_of_kept_on_map_points():
    shapes = np.array([[4, 6]])
    # one query, one head, one level, two points: one inside, one pruned
    loc = np.zeros((1, 1, 1, 2, 2))
    loc[0, 0, 0, 0] = [(2 + 0.5 + 0.25) / 6, (1 + 0.5 + 0.5) / 4]  # x 2.25, y 1.5 in pixels
    loc[0, 0, 0, 1] = [0.5, 0.5]
    keep = np.array([[[[True, False]]]])
    ys, xs = level_touches(loc, keep, shapes, 0)
    assert sorted(zip(ys[0].tolist(), xs[0].tolist(), strict=True))[-4:] == [
        (1, 2), (1, 3), (2, 2), (2, 3)
    ]  # fmt: skip
    assert (ys[0] == -1).sum() == 4
    # a point left of the map keeps only its on-map corners
    loc[0, 0, 0, 0, 0] = -0.3 / 6
    ys, xs = level_touches(loc, keep, shapes, 0)
    assert sorted(set(xs[0].tolist())) == [-1, 0]


def test_study_sums_heads_in_bytes_and_prices_no_reuse():
    from sim import workload as wl
    from sim.window import study

    w = wl.encoder(input_hw=(64, 96), strides=(8, 16), heads=2, head_dim=8, points=2, seed=4)
    keep = w.probs >= 0.02
    rows = study(w, keep, [Window("band", rows=64)])  # every level fits: compulsory exactly
    assert [r["level"] for r in rows] == [0, 1]
    for r in rows:
        level = r["level"]
        h, width = (int(v) for v in w.shapes[level])
        assert r["capacity_bytes"] == 64 * width * 8
        touched = [level_touches(w.locations, keep, w.shapes, level, head) for head in (0, 1)]
        want = sum(len(set((ys * width + xs)[ys >= 0].tolist())) for ys, xs in touched) * 8
        assert r["compulsory_bytes"] == want and r["slow_bytes"] == 0
        assert r["fetched_bytes"] == 2 * h * width * 8  # the whole map, once per head
        assert r["no_reuse_bytes"] == sum(int((ys >= 0).sum()) for ys, _ in touched) * 8
