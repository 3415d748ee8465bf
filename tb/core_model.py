"""Stimulus and expectations for the core: jobs from quantized workloads, in (query, head)
order, and what the bit-true model says must come out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fpga.host import band_order
from gen.config import DefaConfig
from sim import band, bittrue, golden
from sim import workload as wl

__all__ = [
    "band_counts",
    "expected",
    "job_order",
    "measure",
    "random_quantized",
    "workload_quantized",
]


def job_order(qc: bittrue.QuantizedCore, kind: str = "query") -> list[tuple[int, int]]:
    """The (query, head) jobs in the order they are sent: ``query`` (query-major, every head
    of a query together) or ``band`` (head-major passes, each over the queries in raster
    order of their reference points on the finest level: what a band window wants)."""
    nq, m = qc.probs.shape[:2]
    if kind == "query":
        return [(q, h) for q in range(nq) for h in range(m)]
    if kind != "band":
        raise ValueError(f"kind={kind!r} is not allowed: 'query' or 'band'")
    return band_order(qc.ref_w, m)


def band_counts(
    cfg: DefaConfig, qc: bittrue.QuantizedCore, tau_p_q: int, order, pixel_mask=None
) -> dict:
    """Rows the band windows fetch, slow-path points and the maps' bus beats read, over every
    level, for the jobs in ``order`` (``sim.band``: kept points, in job order, point order
    within a job); ``pixel_mask`` (every level's pixels, True: kept; default all): FWP's."""
    rows = slow = pixels = 0
    per_level = []
    for lt in band.level_traces(cfg, qc, tau_p_q, order, pixel_mask):
        rows += lt.trace.rows_fetched
        slow += lt.trace.slow_points
        pixels += lt.trace.pixels_fetched
        per_level.append((lt.trace.rows_fetched, lt.trace.slow_points))
    return {
        "rows_fetched": rows,
        "slow_points": slow,
        "beats_read": pixels * cfg.cycles_per_point,
        "per_level": per_level,
    }


def expected(
    cfg: DefaConfig, qc: bittrue.QuantizedCore, tau_p_q: int, pixel_mask=None
) -> bittrue.BitTrueResult:
    """The bit-true core with PAP at the CSR value ``tau_p_q`` (0: dense) and FWP's
    ``pixel_mask`` (default: every pixel kept)."""
    return bittrue.core(cfg, qc, tau_p_q=tau_p_q, pixel_mask=pixel_mask)


def random_quantized(
    cfg: DefaConfig,
    rng: np.random.Generator,
    queries: int,
    *,
    shapes=None,
    logit_spread: float = 2.0,
    offset_scale: float = 3.0,
):
    """A random workload on random (or given) shapes within the buffers, quantized."""
    if shapes is None:
        shapes = [
            (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))) for h, w in cfg.max_shapes
        ]
    shapes = np.array(shapes, dtype=np.int64)
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = rng.standard_normal((nv, cfg.heads, cfg.head_dim))
    ref = rng.uniform(0, 1, (queries, cfg.levels, 2))
    offsets = rng.standard_normal((queries, cfg.heads, cfg.levels, cfg.points, 2)) * offset_scale
    logits = rng.standard_normal((queries, cfg.heads, cfg.levels * cfg.points)) * logit_spread
    ls = golden.level_start_of(shapes)
    if cfg.softmax:
        return bittrue.quantize_core(cfg, value, shapes, ls, ref, offsets, logits=logits)
    probs = golden.softmax(logits).reshape(queries, cfg.heads, cfg.levels, cfg.points)
    return bittrue.quantize_core(cfg, value, shapes, ls, ref, offsets, probs)


def workload_quantized(cfg: DefaConfig, w: wl.Workload) -> bittrue.QuantizedCore:
    """The workload as the core sees it: logits when the config fuses the softmax."""
    args = (cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets)
    if cfg.softmax:
        return bittrue.quantize_core(*args, logits=w.logits)
    return bittrue.quantize_core(*args, w.probs)


def load_words(cfg: DefaConfig, qc: bittrue.QuantizedCore):
    """(level, x, y, head, chunk, data) for every buffer word of the workload's maps."""
    lanes = cfg.lanes
    for level, (h, w) in enumerate(qc.shapes):
        start = int(qc.level_start[level])
        for y in range(int(h)):
            for x in range(int(w)):
                pixel = qc.value[start + y * int(w) + x]
                for head in range(cfg.heads):
                    for chunk in range(cfg.cycles_per_point):
                        data = pixel[head, chunk * lanes : (chunk + 1) * lanes]
                        yield level, x, y, head, chunk, [int(v) for v in data]


def measure(
    cfg: DefaConfig,
    simulator: str,
    workload,
    results,
    *,
    tau_p_q: int | None = None,
    axi_pauses: tuple[float, float] | None = None,
    seed: int = 1,
    masked_layer: bool = False,
    tau_f_q: int | None = None,
) -> dict:
    """The core testbench's ``measure`` test on the workload saved at ``workload`` (jobs
    back to back, outputs always taken): the RTL's counters, as it writes them to
    ``results``. ``tau_p_q``: the PAP CSR (default the config's); ``axi_pauses``: the memory
    model's pause rates on AR and R, with the maps in memory (default the testbench's);
    ``masked_layer`` (maps in memory): the jobs again through DERIVE's mask, its counters
    as ``masked_layer``; ``tau_f_q``: the FWP CSR (default the config's)."""
    from tb.runner import run  # (not at import: the testbench itself imports this module)

    env = {"DEFA_WORKLOAD": str(workload), "DEFA_RESULTS": str(results)}
    if tau_p_q is not None:
        env["DEFA_TAU_P"] = str(tau_p_q)
    if axi_pauses is not None:
        env["DEFA_AXI_PAUSES"] = ",".join(str(p) for p in axi_pauses)
    if masked_layer:
        env["DEFA_MASKED_LAYER"] = "1"
    if tau_f_q is not None:
        env["DEFA_TAU_F"] = str(tau_f_q)
    run(
        cfg,
        simulator,
        test_module="tb.core_tb",
        block="core",
        testcase="measure",
        seed=seed,
        env=env,
    )
    return json.loads(Path(results).read_text())
