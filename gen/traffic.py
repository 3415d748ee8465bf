"""``defa bench stream``: what a layer costs in external-memory traffic and time when the
feature maps live off chip, from the models (``sim/window.py``, ``sim/band.py`` and the cycle
model with its memory side, which tests/test_perf.py holds within 2% of the RTL): every
figure here is a model figure.

Per workload (a full-size encoder layer and a decoder): the value bytes the level windows
fetch against compulsory (every needed value byte once: per head, the distinct pixels its
kept points touch, ``head_dim`` bytes each) and against the same samples without reuse (each
corner of each kept point fetched); the jobs' bytes (per query its reference point on every
level, per (query, head) its offsets and logits or probabilities) and the outputs' bytes;
the core's cycles from the cycle model (dense and PAP); and the layer's time per memory:
the larger of the compute time at the routed clock and the bytes at the memory's peak
bandwidth (a bound: it assumes the two overlap completely).

The windows are bands of full-width rows, one per level, in head-major passes with queries
in raster order (``docs/DESIGN.md``, Memory); ``rows`` per level is given, or the smallest
of ``ROWS`` whose traffic is within ``KNEE`` of compulsory on that level (else the one with
the least traffic; the curve is in the result).
"""

from __future__ import annotations

import json
from pathlib import Path

from gen.config import DefaConfig, preset
from sim import bittrue, perf
from sim import workload as wl
from sim.window import Window, study
from tb import core_model

__all__ = ["MEMORIES", "ROWS", "format_stream", "stream_bench"]

#: peak bandwidth of the boards' memories (bytes/s): ULX3S, 16-bit SDRAM at 100 MHz;
#: ECPIX-5, 16-bit DDR3 at 800 MT/s (ECP5's DDR3 limit)
MEMORIES = {"ulx3s-sdram": 16 / 8 * 100e6, "ecpix5-ddr3": 16 / 8 * 800e6}
ROWS = (6, 8, 10, 12, 14, 16, 20, 24, 32)
KNEE = 1.05
TARGET = 1.2  # encoder traffic over compulsory (the external-memory issue)
UTILIZATION = 0.9  # busiest sampler's busy cycles over the layer's, memory not the limit
FWP_CURVE = (0.5, 0.9)  # FWP thresholds beside the config's whose traffic the bench prints
BASELINES = Path(__file__).resolve().parents[1] / "fpga" / "baselines.json"


def _word_bytes(bits: int) -> int:
    return -(-bits // 8)


def _fmax_mhz(name: str | None, design: str = "bands") -> tuple[float | None, str]:
    """The routed Fmax that times preset ``name``'s design ``<name>-<design>`` (``bands``: with
    its maps in memory; ``layer``: the fused layer's top) as recorded (``defa synth --record
    ... --as``), else the preset's own (whole maps: the design not routed), and which it is."""
    if name is None or not BASELINES.exists():
        return None, "no routed clock recorded"
    data = json.loads(BASELINES.read_text())
    what = {"bands": "band design", "layer": "layer top"}[design]
    entry = data.get("designs", {}).get(f"{name}-{design}")
    if entry and "fmax_mhz" in entry:
        seeds = entry.get("fmax_by_seed", {})
        how = f"median of seeds {', '.join(seeds)}" if len(seeds) > 1 else "one seed"
        changes = ", ".join(f"{k}={v}" for k, v in entry.get("overrides", {}).items())
        how = f"{changes}; {how}" if changes else how
        return entry["fmax_mhz"], f"the {what} {name}-{design} as routed ({how})"
    entry = data["presets"].get(name)
    if entry and "fmax_mhz" in entry:
        return entry["fmax_mhz"], f"preset {name} with whole maps (its {what} not routed)"
    return None, "no routed clock recorded"


def full_size(cfg: DefaConfig, shapes) -> DefaConfig:
    """``cfg`` with buffers that hold maps of ``shapes`` and offsets wide enough to reach
    across them: the cycle model and the quantization need both; the windows replace the
    buffers."""
    shapes = tuple((int(h), int(x)) for h, x in shapes)
    need = cfg.replace(max_shapes=shapes, offset_bits=24, coord_frac_bits=1).min_offset_int_bits
    offset_bits = max(cfg.offset_bits, cfg.coord_frac_bits + need)
    return cfg.replace(max_shapes=shapes, offset_bits=offset_bits)


def _run(cfg: DefaConfig, w: wl.Workload, rows, fmax_mhz) -> dict:
    big = full_size(cfg, w.shapes)
    qc = core_model.workload_quantized(big, w)
    keep = qc.probs >= big.tau_p_q  # PAP, as the hardware decides it
    # The curve: every level through every candidate height (or the given ones).
    heights = ROWS if rows is None else tuple(sorted(set(rows)))
    table = study(w, keep, [Window("band", rows=r) for r in heights])
    curve = {level: [] for level in range(cfg.levels)}
    for i, row in enumerate(table):  # level by level, each through ``heights`` in order
        curve[row["level"]].append({**row, "rows": heights[i % len(heights)]})
    chosen = []
    for level in range(cfg.levels):
        if rows is not None:
            pick = next(r for r in curve[level] if r["rows"] == rows[level])
        else:
            knee = [r for r in curve[level] if r["ratio"] <= KNEE]
            pick = knee[0] if knee else min(curve[level], key=lambda r: r["ratio"])
        chosen.append(pick)
    values = {
        key: int(sum(r[f"{key}_bytes"] for r in chosen))
        for key in ("fetched", "slow", "compulsory", "no_reuse", "capacity")
    }
    values["ratio"] = (values["fetched"] + values["slow"]) / max(1, values["compulsory"])
    values["no_reuse_ratio"] = values["no_reuse"] / max(1, values["compulsory"])
    nq, heads, lv, p = w.queries, cfg.heads, cfg.levels, cfg.points
    weight_bits = cfg.logit_bits if cfg.softmax else cfg.prob_bits + 1
    point_bytes = 2 * _word_bytes(cfg.offset_bits) + _word_bytes(weight_bits)
    jobs_bytes = nq * lv * 2 * _word_bytes(cfg.ref_bits) + nq * heads * lv * p * point_bytes
    outputs_bytes = nq * heads * cfg.head_dim * _word_bytes(cfg.out_bits)
    cycles = {
        name: perf.predict(big, perf.kept_points(qc.probs, tau))["cycles"]
        for name, tau in (("dense", 0), ("pap", big.tau_p_q))
    }
    total = values["fetched"] + values["slow"] + jobs_bytes + outputs_bytes
    result = {
        "workload": w.describe(),
        "queries": nq,
        "jobs": nq * heads,
        "kept_fraction": float(keep.mean()),
        "rows": [r["rows"] for r in chosen],
        "values": values,
        "per_level": [
            {k: r[k] for k in ("level", "shape", "window", "capacity_bytes", "ratio")}
            for r in chosen
        ],
        "jobs_bytes": int(jobs_bytes),
        "outputs_bytes": int(outputs_bytes),
        "total_bytes": int(total),
        "cycles": cycles,
        "curve": {
            str(level): [
                {
                    "rows": r["rows"],
                    "ratio": r["ratio"],
                    "capacity_bytes": r["capacity_bytes"],
                }
                for r in rows_
            ]
            for level, rows_ in curve.items()
        },
    }
    if fmax_mhz:
        compute_ms = cycles["pap"] / (fmax_mhz * 1e3)
        result["fmax_mhz"] = fmax_mhz
        result["compute_ms"] = compute_ms
        result["memories"] = {}
        for name, bandwidth in MEMORIES.items():
            memory_ms = total / bandwidth * 1e3
            result["memories"][name] = {
                "bandwidth_bytes_per_s": bandwidth,
                "memory_ms": memory_ms,
                "layer_ms": max(compute_ms, memory_ms),
                "bound": "memory" if memory_ms > compute_ms else "compute",
            }
    return result


def _layer_shape(cfg: DefaConfig, input_hw, seed: int) -> dict:
    """The synthetic workloads' arguments for ``cfg``'s heads, levels and points."""
    return dict(
        input_hw=tuple(input_hw),
        strides=wl.level_strides(cfg.levels),
        heads=cfg.heads,
        head_dim=cfg.head_dim,
        points=cfg.points,
        seed=seed,
    )


def _pow2(n: int) -> int:
    return 1 << max(1, (int(n) - 1).bit_length())


def _hardware(cfg: DefaConfig, w: wl.Workload, window_rows, fmax_mhz) -> dict:
    """The band windows as built (``window_rows``, powers of two; a band fetches an eighth
    of its rows ahead): the cycle model with the memory side (``perf.predict_streamed``) for
    the layer, head-major passes in raster order, at the bus's full rate (one beat per cycle:
    memory not the limit) and at each board memory's peak (at the routed clock). Only the
    maps come from memory here (the jobs and outputs still stream in and out)."""
    big = full_size(cfg, w.shapes).replace(window_rows=tuple(window_rows))
    qc = core_model.workload_quantized(big, w)
    order = core_model.job_order(qc, "band")
    word = big.lanes * big.value_bits // 8
    rates = {"full": 1.0}
    if fmax_mhz:
        for name, bandwidth in MEMORIES.items():
            rates[name] = min(1.0, bandwidth / (fmax_mhz * 1e6 * word))
    out = {"window_rows": list(window_rows), "capacity_bytes": big.buffer_bits // 8}
    pixel_bytes = big.head_dim * big.value_bits // 8

    def entry_of(p, rate):
        entry = {
            "beats_per_cycle": rate,
            "cycles": p["cycles"],
            "utilization": max(p["busy"]) / max(1, p["cycles"]),
            "rows_fetched": p["rows_fetched"],
            "slow_points": p["slow_points"],
            "value_bytes": int(sum(p["pixels_fetched"]) * pixel_bytes),
        }
        if fmax_mhz:
            entry["layer_ms"] = p["cycles"] / (fmax_mhz * 1e3)
        return entry

    for name, rate in rates.items():
        p = perf.predict_streamed(big, qc, big.tau_p_q, order, perf.Memory(beats_per_cycle=rate))
        out[name] = entry_of(p, rate)
    # FWP: the mask this layer's own importance gives at the config's tau_f (the hardware
    # measures it in one layer and applies it to the next, which shares the token set):
    # masked pixels are neither stored nor fetched
    importance = bittrue.core(big, qc, tau_p_q=big.tau_p_q).importance
    mask = bittrue.fwp_mask(big, importance, qc.shapes)
    p = perf.predict_streamed(
        big, qc, big.tau_p_q, order, perf.Memory(beats_per_cycle=1.0), pixel_mask=mask
    )
    out["fwp"] = {
        **entry_of(p, 1.0),
        "tau_f": big.tau_f,
        "masked_fraction": float(1 - mask.mean()),
        "saved_fraction": 1 - sum(p["pixels_fetched"]) * pixel_bytes / out["full"]["value_bytes"],
    }
    # and at higher thresholds (the band model's bytes: no cycles)
    out["fwp_curve"] = []
    for tau_f in FWP_CURVE:
        mask = bittrue.fwp_mask(big, importance, qc.shapes, round(tau_f * (1 << big.tau_f_bits)))
        band = core_model.band_counts(big, qc, big.tau_p_q, order, mask)
        fetched = band["beats_read"] * word
        out["fwp_curve"].append(
            {
                "tau_f": tau_f,
                "masked_fraction": float(1 - mask.mean()),
                "value_bytes": int(fetched),
                "saved_fraction": 1 - fetched / out["full"]["value_bytes"],
            }
        )
    return out


def rtl_slice(cfg: DefaConfig, window_rows, jobs: int, *, input_hw=(800, 1333), seed=0):
    """The RTL on a slice of the encoder layer: its first ``jobs / heads`` queries in raster
    order (every head of each), the core with bands of ``window_rows`` (Verilator, its maps
    in cocotbext-axi's AxiRamRead at full speed), against the cycle model on the same
    slice. Minutes: the build of a full-size core, then the run."""
    import dataclasses

    from sim.window import query_order
    from tb.runner import REPO

    shape = _layer_shape(cfg, input_hw, seed)
    w = wl.encoder(**shape)
    big = full_size(cfg, w.shapes).replace(window_rows=tuple(window_rows))
    queries = -(-jobs // cfg.heads)
    if not 1 <= queries <= w.queries:
        raise ValueError(f"jobs={jobs} is out of range: allowed [1, {w.queries * cfg.heads}]")
    perm = query_order(w.ref, w.shapes, "raster")[:queries]
    part = dataclasses.replace(
        w, ref=w.ref[perm], offsets=w.offsets[perm], logits=w.logits[perm], name="slice"
    )
    where = REPO / "build" / "bench-stream"
    where.mkdir(parents=True, exist_ok=True)
    path = wl.save(part, where / "slice.npz")
    rtl = core_model.measure(big, "verilator", path, where / "measure.json", axi_pauses=(0, 0))
    qc = core_model.workload_quantized(big, part)
    order = core_model.job_order(qc, "band")
    model = perf.predict_streamed(big, qc, big.tau_p_q, order, perf.AXI_RAM)
    return {
        "jobs": len(order),
        "window_rows": list(window_rows),
        "rtl": {k: rtl[k] for k in ("cycles", "busy", "rows_fetched", "slow_points", "beats_read")},
        "model_cycles": model["cycles"],
        "model_error": model["cycles"] / rtl["cycles"] - 1,
        "utilization": max(rtl["busy"]) / rtl["cycles"],
    }


def stream_bench(
    cfg: DefaConfig | None = None,
    *,
    name: str | None = "fpga",
    input_hw=(800, 1333),
    decoder_queries: int = 300,
    rows=None,
    seed: int = 0,
    rtl_jobs: int = 0,
) -> dict:
    """The model figures for an encoder layer at ``input_hw`` (one query per pixel of every
    level) and a ``decoder_queries``-query decoder layer. ``cfg`` default: the ``fpga``
    preset; ``name``: the preset whose routed Fmax (``fpga/baselines.json``) times the
    layer (None: no times); ``rows``: band heights per level (None: chosen at the knee);
    ``rtl_jobs``: also run the RTL on a slice of that many encoder jobs (``rtl_slice``)."""
    cfg = cfg if cfg is not None else preset("fpga")
    if rows is not None and len(rows) != cfg.levels:
        raise ValueError(f"rows={list(rows)} needs one band height per level ({cfg.levels})")
    if rows is not None and min(rows) < 2:
        raise ValueError(f"rows={list(rows)} is out of range: allowed >= 2 per level")
    if decoder_queries < 1:
        raise ValueError(f"decoder_queries={decoder_queries} is out of range: allowed >= 1")
    if rtl_jobs < 0:
        raise ValueError(f"rtl_jobs={rtl_jobs} is out of range: allowed >= 0 (0: no RTL run)")
    fmax, clock = _fmax_mhz(name)
    shape = _layer_shape(cfg, input_hw, seed)
    workloads = {
        "encoder": wl.encoder(**shape),
        "decoder": wl.decoder(queries=decoder_queries, **shape),
    }
    runs = {kind: _run(cfg, w, rows, fmax) for kind, w in workloads.items()}
    # the hardware's bands: the config's, else the encoder's heights rounded up to powers of 2
    window_rows = cfg.window_rows or tuple(_pow2(r) for r in runs["encoder"]["rows"])
    for kind, w in workloads.items():
        runs[kind]["hardware"] = _hardware(cfg, w, window_rows, fmax)
    encoder = runs["encoder"]["values"]["ratio"]
    utilization = runs["encoder"]["hardware"]["full"]["utilization"]
    extra = {}
    if rtl_jobs:
        extra["rtl_slice"] = rtl_slice(cfg, window_rows, rtl_jobs, input_hw=input_hw, seed=seed)
    return {
        **extra,
        "config": cfg.describe(),
        "input": f"{input_hw[0]}x{input_hw[1]}",
        "clock": clock,
        "model_only": True,
        "runs": runs,
        "targets": {"encoder_traffic_max": TARGET, "sampler_utilization_min": UTILIZATION},
        "meets": {
            "encoder_traffic": encoder <= TARGET,
            "sampler_utilization": utilization >= UTILIZATION,
        },
    }


def format_stream(result: dict) -> str:
    lines = [
        f"{result['config']}; input {result['input']} (model figures); clock: {result['clock']}"
    ]
    for kind, r in result["runs"].items():
        v = r["values"]
        lines.append(f"{kind}: {r['workload']}; {r['jobs']} jobs, kept {r['kept_fraction']:.3f}")
        lines.append(
            f"  windows: rows {r['rows']} per level, {v['capacity'] / 1024:.1f} KB on chip; "
            f"values fetched {(v['fetched'] + v['slow']) / 1e6:.2f} MB = {v['ratio']:.2f}x "
            f"compulsory ({v['compulsory'] / 1e6:.2f} MB); without reuse "
            f"{v['no_reuse'] / 1e6:.2f} MB ({v['no_reuse_ratio']:.1f}x)"
        )
        if v["no_reuse"] < v["fetched"] + v["slow"]:
            lines.append("  (sparse: fetching each kept point's corners costs less than the bands)")
        lines.append(
            f"  jobs {r['jobs_bytes'] / 1e6:.2f} MB, outputs {r['outputs_bytes'] / 1e6:.2f} MB, "
            f"all {r['total_bytes'] / 1e6:.2f} MB; cycles dense {r['cycles']['dense']}, "
            f"PAP {r['cycles']['pap']}"
        )
        if "memories" in r:
            for name, m in r["memories"].items():
                lines.append(
                    f"  {name} ({m['bandwidth_bytes_per_s'] / 1e6:.0f} MB/s): layer "
                    f"{m['layer_ms']:.1f} ms ({m['bound']}-bound; compute {r['compute_ms']:.1f} "
                    f"ms at {r['fmax_mhz']} MHz, memory {m['memory_ms']:.1f} ms)"
                )
        hw = r["hardware"]
        lines.append(
            f"  bands as built: rows {hw['window_rows']} ({hw['capacity_bytes'] / 1024:.1f} KB), "
            f"rows fetched {sum(hw['full']['rows_fetched'])}, slow points "
            f"{sum(hw['full']['slow_points'])} (cycle model with the memory side)"
        )
        for name, m in hw.items():
            if not isinstance(m, dict) or name == "fwp":
                continue
            when = f" = {m['layer_ms']:.1f} ms" if "layer_ms" in m else ""
            lines.append(
                f"    {name} ({m['beats_per_cycle']:.3f} beats/cycle): {m['cycles']} cycles"
                f"{when}, sampler utilization {m['utilization']:.3f}"
            )
        f = hw["fwp"]
        lines.append(
            f"  FWP (tau_f {f['tau_f']}: {f['masked_fraction']:.1%} of the pixels masked by this "
            f"layer's importance): values fetched {f['value_bytes'] / 1e6:.2f} MB instead of "
            f"{hw['full']['value_bytes'] / 1e6:.2f} ({f['saved_fraction']:.1%} less, masked "
            f"pixels neither stored nor fetched), {f['cycles']} cycles at the full rate"
        )
        lines.append(
            "  FWP at tau_f "
            + ", ".join(
                f"{c['tau_f']}: {c['masked_fraction']:.1%} masked, {c['value_bytes'] / 1e6:.2f} MB"
                for c in hw["fwp_curve"]
            )
        )
        if kind == "encoder":
            for level, points in r["curve"].items():
                lines.append(
                    f"  level {level} curve (rows: traffic/compulsory): "
                    + ", ".join(f"{p['rows']}: {p['ratio']:.2f}" for p in points)
                )
    if "rtl_slice" in result:
        r = result["rtl_slice"]
        lines.append(
            f"RTL (Verilator, AxiRamRead at full speed) on {r['jobs']} encoder jobs (first "
            f"queries in raster order), bands {r['window_rows']}: {r['rtl']['cycles']} cycles, "
            f"sampler utilization {r['utilization']:.3f}, rows fetched "
            f"{r['rtl']['rows_fetched']}, beats {r['rtl']['beats_read']}; the cycle model "
            f"{r['model_cycles']} ({r['model_error']:+.2%})"
        )
    met = result["meets"]
    lines.append(
        f"target: encoder traffic <= {result['targets']['encoder_traffic_max']}x compulsory "
        f"({'met' if met['encoder_traffic'] else 'MISSED'}); sampler utilization >= "
        f"{result['targets']['sampler_utilization_min']} with the memory not the limit "
        f"({'met' if met['sampler_utilization'] else 'MISSED'})"
    )
    return "\n".join(lines)
