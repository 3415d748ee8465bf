"""Benchmarks that print figures. ``golden``: the float model, the bit-true model and the
C++ kernel of torch-ms-deform-attn (a standalone re-implementation of the original MSDeformAttn
kernel, CPU) on one encoder workload, in one run."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from gen.config import preset
from gen.demo import rel_l2
from sim import bittrue, golden, perf
from sim import workload as wl
from tb import core_model
from tb.runner import SIMULATORS, run

__all__ = [
    "core_bench",
    "format_core",
    "format_sampler",
    "format_table",
    "golden_bench",
    "sampler_bench",
]


def _best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def golden_bench(cfg=None, *, input_hw=(800, 1333), seed: int = 0, repeat: int = 3) -> dict:
    """The float model, the bit-true model (``cfg``'s formats and shape; default ``detr``)
    and the C++ kernel on one encoder workload at ``input_hw``. The models hold no buffers,
    so the config's ``max_shapes`` follows the workload's level maps."""
    if repeat < 1:
        raise ValueError(f"repeat={repeat} is out of range: allowed >= 1")
    try:
        import torch
        from torch_ms_deform_attn import ms_deform_attn
    except ImportError as e:
        raise ValueError(
            f"the golden bench needs the oracles ({e.name} is missing): "
            "pip install 'defa[oracles]' and torch-ms-deform-attn (see scripts/bootstrap.sh)"
        ) from None
    cfg = cfg or preset("detr")
    shapes = wl.level_shapes(input_hw, wl.level_strides(cfg.levels))
    cfg = cfg.replace(max_shapes=tuple(tuple(int(v) for v in s) for s in shapes))
    w = wl.for_config(cfg, "encoder", input_hw=input_hw, seed=seed)
    value = w.value.astype(np.float64)
    probs, loc = w.probs, w.locations

    t_float, ref = _best_of(
        repeat, lambda: golden.msda_core(value, w.shapes, w.level_start, loc, probs)
    )

    def run_bittrue():
        qc = bittrue.quantize_core(cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets, probs)
        return bittrue.core(cfg, qc).dequantize(cfg, qc.scale)

    t_bit, bit = _best_of(repeat, run_bittrue)

    args = [
        torch.from_numpy(value[None].astype(np.float32)),
        torch.from_numpy(w.shapes),
        torch.from_numpy(w.level_start),
        torch.from_numpy(loc[None].astype(np.float32)),
        torch.from_numpy(probs[None].astype(np.float32)),
    ]
    with torch.no_grad():
        t_torch, out = _best_of(repeat, lambda: ms_deform_attn(*args))
    torch_out = out[0].numpy().astype(np.float64)
    return {
        "workload": w.describe(),
        "config": cfg.describe(),
        "queries": w.queries,
        "samples": w.queries * w.heads * w.levels * w.points,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}",
        "repeat": repeat,
        "seconds": {"float_fp64": t_float, "bittrue": t_bit, "torch_ms_deform_attn_fp32": t_torch},
        "ratios": {
            "bittrue_over_float": t_bit / t_float,
            "bittrue_over_torch": t_bit / t_torch,
            "float_over_torch": t_float / t_torch,
        },
        "rel_l2": {
            "bittrue_vs_float": rel_l2(bit, ref),
            "torch_fp32_vs_float": rel_l2(torch_out, ref),
        },
        "bittrue_budget_seconds": 30.0,
        "bittrue_error_budget": 0.015,
    }


def format_table(result: dict) -> str:
    s, r, e = result["seconds"], result["ratios"], result["rel_l2"]
    return "\n".join(
        [
            result["workload"],
            f"float fp64      {s['float_fp64']:8.3f} s",
            f"bit-true        {s['bittrue']:8.3f} s  ({r['bittrue_over_float']:.2f}x float, "
            f"{r['bittrue_over_torch']:.2f}x torch)",
            f"torch kernel    {s['torch_ms_deform_attn_fp32']:8.3f} s",
            f"rel-L2 bit-true vs float {e['bittrue_vs_float']:.5f}, torch fp32 vs float "
            f"{e['torch_fp32_vs_float']:.2e}",
        ]
    )


def sampler_bench(cfg, *, seed: int = 1, points: int = 2000, level: int = 0) -> dict:
    """The sampler RTL on Icarus and Verilator with no gaps and no backpressure (the cocotb
    ``throughput`` test): cycles per point in steady state, latency, simulator speed."""

    if points < 10:
        raise ValueError(f"points={points} is out of range: allowed >= 10")
    result = {
        "config": cfg.describe(),
        "level": level,
        "points": points,
        "expected_cycles_per_point": cfg.cycles_per_point,
        "simulators": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for simulator in SIMULATORS:
            figures = Path(tmp) / f"{simulator}.json"
            run(
                cfg,
                simulator,
                test_module="tb.sampler_tb",
                testcase="throughput",
                level=level,
                seed=seed,
                env={"DEFA_RESULTS": str(figures), "DEFA_THROUGHPUT_POINTS": str(points)},
            )
            result["simulators"][simulator] = json.loads(figures.read_text())
    return result


def format_sampler(result: dict) -> str:
    lines = [f"sampler ({result['config']}), level {result['level']}, {result['points']} points"]
    for simulator, f in result["simulators"].items():
        lines.append(
            f"{simulator:10s} cycles/point {f['cycles_per_point']:.3f} (ideal "
            f"{result['expected_cycles_per_point']}), latency {f['latency']} cycles, "
            f"{f['cycles_per_s']:,.0f} cycles/s"
        )
    return "\n".join(lines)


def core_bench(
    cfg=None,
    *,
    input_hw=None,
    seed: int = 0,
    tau_p: float | None = None,
    simulator: str = "verilator",
    step=None,
) -> dict:
    """The core RTL on a scaled encoder workload, dense and with PAP: RTL cycles (the core's
    own counter; every output is also checked bit-exact), ideal cycles (kept points / level
    units), utilization, the cycle model's prediction, and cycles(pruned)/cycles(dense).
    ``cfg``: the design as it is (default the ``fpga`` preset); ``input_hw`` None: the largest
    input its buffers hold. With the maps in memory (``window_rows``), the RTL reads them from
    the testbench's AxiRamRead at full speed and the model is ``perf.predict_streamed``. Each
    run also returns the RTL's raw counters (``rtl``) that its figures are computed from."""

    cfg = cfg if cfg is not None else preset("fpga")
    w = wl.for_config(cfg, "encoder", input_hw=input_hw, seed=seed)
    if tau_p is not None:
        cfg = cfg.replace(tau_p=tau_p)
    qc = core_model.workload_quantized(cfg, w)  # through the fused softmax when it is on
    total_points = int(qc.probs.size)
    result = {
        "workload": w.describe(),
        "config": cfg.describe(),
        "simulator": simulator,
        "tau_p": cfg.tau_p,
        "tau_f": cfg.tau_f,
        "window_rows": list(cfg.window_rows),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = wl.save(w, Path(tmp) / "workload.npz")
        for name, tau in (("dense", 0), ("pap", cfg.tau_p_q)):
            if step:
                step(f"{name}: {qc.queries * cfg.heads} jobs through the core RTL ({simulator})")
            figures = Path(tmp) / f"{name}.json"
            t0 = time.perf_counter()
            rtl = core_model.measure(
                cfg, simulator, path, figures, tau_p_q=tau, axi_pauses=(0, 0), seed=seed + 1
            )
            if cfg.streamed:  # the maps in the testbench's AxiRamRead, the jobs in band order
                order = core_model.job_order(qc, "band")
                model = perf.predict_streamed(cfg, qc, tau, order, perf.AXI_RAM)
            else:
                model = perf.predict(cfg, perf.kept_points(qc.probs, tau))
            kept = rtl["points_kept"]
            ideal = kept * cfg.cycles_per_point / cfg.levels
            result["runs"][name] = {
                "cycles": rtl["cycles"],
                "ideal_cycles": ideal,
                "utilization": ideal / rtl["cycles"],
                "model_cycles": model["cycles"],
                "model_error": model["cycles"] / rtl["cycles"] - 1,
                "kept_fraction": kept / total_points,
                "busy_per_level": rtl["busy"],
                "stall_per_level": rtl["stall"],
                "jobs": rtl["jobs_out"],
                "off_map_points": rtl["off_map"],
                "fwp_pixels_masked": rtl["pixels_masked"],
                "fwp_masked_fraction": rtl["pixels_masked"] / rtl["pixels"],
                "fwp_derive_cycles": rtl["derive_cycles"],
                "wall_seconds": time.perf_counter() - t0,
                "rtl": rtl,
            }
    dense, pap = result["runs"]["dense"], result["runs"]["pap"]
    result["pruned_over_dense_cycles"] = pap["cycles"] / dense["cycles"]
    result["kept_fraction"] = pap["kept_fraction"]
    result["targets"] = {
        "utilization_dense_min": 0.95,
        "utilization_pap_min": 0.90,
        "pruned_over_dense_max": pap["kept_fraction"] + 0.05,
    }
    t = result["targets"]
    result["meets"] = {
        "utilization_dense": dense["utilization"] >= t["utilization_dense_min"],
        "utilization_pap": pap["utilization"] >= t["utilization_pap_min"],
        "pruned_over_dense": result["pruned_over_dense_cycles"] <= t["pruned_over_dense_max"],
    }
    return result


def format_core(result: dict) -> str:
    lines = [result["workload"], result["config"]]
    for name, r in result["runs"].items():
        lines.append(
            f"{name:6s} cycles {r['cycles']:7d} ideal {r['ideal_cycles']:9.1f} utilization "
            f"{r['utilization']:.3f} model {r['model_cycles']} ({r['model_error']:+.2%}) kept "
            f"{r['kept_fraction']:.3f} busy/level {r['busy_per_level']}"
        )
    lines.append(
        f"cycles(pruned)/cycles(dense) {result['pruned_over_dense_cycles']:.3f} vs kept fraction "
        f"{result['kept_fraction']:.3f}"
    )
    t, meets = result["targets"], result["meets"]
    lines.append(
        "targets: "
        + ", ".join(
            f"{key} {value} ({'met' if meets[key] else 'MISSED'})"
            for key, value in (
                ("utilization_dense", f">= {t['utilization_dense_min']}"),
                ("utilization_pap", f">= {t['utilization_pap_min']}"),
                ("pruned_over_dense", f"<= {t['pruned_over_dense_max']:.3f}"),
            )
        )
    )
    for name, r in result["runs"].items():
        lines.append(
            f"FWP after {name}: DERIVE masked {r['fwp_pixels_masked']} pixels "
            f"({r['fwp_masked_fraction']:.1%}, tau_f {result['tau_f']}) in "
            f"{r['fwp_derive_cycles']} cycles"
        )
    if result.get("window_rows"):
        lines.append(
            f"maps in memory (bands of {result['window_rows']} rows, AxiRamRead at full speed): "
            "the targets are the compute core's; each head's pass waits for its bands' first "
            "rows"
        )
    return "\n".join(lines)
