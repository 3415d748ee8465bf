"""``defa bench layer``: the fused MSDA layer (value, offset, attention and output projections
around the core) from the models, against the same layer on this machine's CPU.

Per workload (the full-size encoder layer and a decoder layer), seeded weights with a
Deformable-DETR-like initialization and scales calibrated on ``CALIBRATION`` other seeded
inputs:

* accuracy: rel-L2 of the bit-true layer (``sim.layer``) against the float layer, dense, with
  PAP, and with PAP and FWP (the mask the layer's own importance gives at ``tau_f``);
* MACs per phase, done and skipped (FWP: a masked pixel's value projection, which the layer
  top skips as it does; PAP: a pruned point's samples);
* cycles per phase from the cycle models: the constants' load
  (``perf.layer_constant_cycles``, memory at a beat a cycle), the projection units
  (``perf.predict_projection``, exact against the RTL unit; the value projection over FWP's
  kept pixels, ``perf.predict_value_projection``) and the core with its band
  windows (``perf.predict_streamed``, within 2% of the RTL, memory at full rate). How the
  phases overlap is shown as two bounds: ``sequential`` (one phase after the other) and
  ``overlapped`` (the constants, the value projection, then the query projections, the
  sampling and the output projection streaming into each other, as the layer top runs them;
  ``tb/layer_top_tb.py`` records both beside its RTL's cycles);
* DSP blocks per function (samplers, softmax, projections: ``proj_lanes`` products and the
  requantizing pieces per unit) against the ECP5-85F's 156;
* time per layer at the routed clock and each board memory's peak bandwidth (the bytes of x,
  the value map written and fetched by the bands, queries, outputs and weights);
* the CPU: the same layer in PyTorch fp32 (the four projections, softmax and the C++ kernel of
  torch-ms-deform-attn), measured in the same run.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from gen.config import DefaConfig, preset
from gen.demo import rel_l2
from gen.traffic import MEMORIES, _fmax_mhz, full_size
from rtl.layer.projection import PIECE  # the requantizing multiply's pieces
from sim import bittrue, golden, perf
from sim import layer as fused
from sim import workload as wl
from tb import core_model

__all__ = ["ECP5_85F_DSPS", "format_layer", "layer_bench"]

#: MULT18X18D blocks of an LFE5U-85F
ECP5_85F_DSPS = 156
#: seeded inputs the scales are calibrated on (seeds after the measured input's)
CALIBRATION = 4


def dsps(cfg: DefaConfig) -> dict:
    """MULT18X18D blocks per function: four corner products per sampler lane, one per softmax
    point, and per projection unit ``proj_lanes`` products (unless ``proj_dsp`` is off: LUT
    multipliers) plus the requantizing pieces."""
    per_unit = cfg.proj_lanes * cfg.proj_dsp + -(-cfg.proj_acc_bits // PIECE)
    out = {
        "samplers": 4 * cfg.lanes * cfg.levels,
        "softmax": cfg.points_per_head if cfg.softmax else 0,
        "projections": 4 * per_unit,
    }
    out["total"] = sum(out.values())
    return out


def _cpu_layer(params: golden.LayerParams, inputs: wl.LayerInputs, repeat: int) -> dict:
    import torch
    from torch_ms_deform_attn import ms_deform_attn

    f = torch.nn.functional
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    w = {k: t(getattr(params, k).T) for k in ("value_w", "offset_w", "attention_w", "output_w")}
    b = {k: t(getattr(params, k)) for k in ("value_b", "offset_b", "attention_b", "output_b")}
    x, query, ref = t(inputs.x), t(inputs.query), t(inputs.ref)
    shapes = torch.from_numpy(np.asarray(inputs.shapes, dtype=np.int64))
    starts = torch.from_numpy(golden.level_start_of(inputs.shapes))
    m, lv, p = params.heads, params.levels, params.points
    nq, c = query.shape
    normalizer = torch.stack([shapes[:, 1], shapes[:, 0]], -1).float()

    def run():
        value = f.linear(x, w["value_w"], b["value_b"]).view(1, -1, m, c // m)
        offsets = f.linear(query, w["offset_w"], b["offset_b"]).view(1, nq, m, lv, p, 2)
        logits = f.linear(query, w["attention_w"], b["attention_b"]).view(1, nq, m, lv * p)
        probs = torch.softmax(logits, -1).view(1, nq, m, lv, p)
        loc = ref[None, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        core = ms_deform_attn(value, shapes, starts, loc, probs)
        return f.linear(core[0], w["output_w"], b["output_b"])

    with torch.no_grad():
        run()  # warm up
        best = min(_timed(run) for _ in range(repeat))
    return {"seconds": best, "threads": torch.get_num_threads()}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _workload(cfg, params, kind, input_hw, queries, seed, window_rows, fmax, repeat) -> dict:
    strides = wl.level_strides(cfg.levels)
    make = lambda s: wl.layer_inputs(  # noqa: E731
        kind, input_hw=input_hw, strides=strides, d_model=cfg.d_model, queries=queries, seed=s
    )
    inputs = make(seed)
    big = full_size(cfg, inputs.shapes).replace(window_rows=tuple(window_rows))
    scales = fused.calibrate(big, params, [make(seed + 1 + i) for i in range(CALIBRATION)])
    ql = fused.quantize_layer(big, params, scales)
    ref = golden.msda_layer(
        params,
        inputs.query,
        inputs.ref,
        inputs.x,
        inputs.shapes,
        golden.level_start_of(inputs.shapes),
    )
    dense = fused.layer(big, ql, inputs)
    pap = fused.layer(big, ql, inputs, pap=True)
    mask = bittrue.fwp_mask(big, pap.core.importance, inputs.shapes)
    both = fused.layer(big, ql, inputs, pap=True, pixel_mask=mask)

    c, nq, nv = big.d_model, inputs.query.shape[0], inputs.x.shape[0]
    per_head = big.heads * big.levels * big.points
    kept_pixels = int(mask.sum())
    qc = both.core_inputs
    order = core_model.job_order(qc, "band")
    core = perf.predict_streamed(
        big, qc, big.tau_p_q, order, perf.Memory(beats_per_cycle=1.0), pixel_mask=mask
    )
    offsets = perf.predict_projection(big, nq, 2 * per_head)
    logits = perf.predict_projection(big, nq, per_head)
    phases = {
        "constants": perf.layer_constant_cycles(big),
        # FWP's masked pixels skip it (the loader drops their rows)
        "value_projection": perf.predict_value_projection(big, mask)["cycles"],
        "query_projections": max(offsets["cycles"], logits["cycles"]),
        "sampling": core["cycles"],
        "output_projection": perf.predict_projection(big, nq, c)["cycles"],
    }
    sequential = sum(phases.values())
    overlapped = (
        phases["constants"]
        + phases["value_projection"]
        + max(phases["query_projections"], phases["sampling"], phases["output_projection"])
    )
    pixel_bytes = big.head_dim * big.value_bits // 8
    word = lambda bits: -(-bits // 8)  # noqa: E731
    traffic = {
        "x_read": nv * c * word(big.act_bits),
        "value_written": kept_pixels * c * word(big.value_bits),
        "value_fetched": int(sum(core["pixels_fetched"]) * pixel_bytes),
        "queries_read": nq * (c * word(big.act_bits) + big.levels * 2 * word(big.ref_bits)),
        "outputs_written": nq * c * word(big.layer_out_bits),
        "weights_read": (2 * c * c + 3 * per_head * c) * word(big.weight_bits),
    }
    total_bytes = sum(traffic.values())
    result = {
        "workload": inputs.name,
        "queries": nq,
        "pixels": nv,
        "rel_l2": {
            "dense": rel_l2(dense.dequantize(scales), ref),
            "pap": rel_l2(pap.dequantize(scales), ref),
            "pap_fwp": rel_l2(both.dequantize(scales), ref),
        },
        "masked_fraction": float(1 - mask.mean()),
        "macs": {k: {"done": d, "skipped": s} for k, (d, s) in both.macs.items()},
        "cycles": {**phases, "sequential": sequential, "overlapped": overlapped},
        "traffic_bytes": {**traffic, "total": total_bytes},
        "cpu": _cpu_layer(params, inputs, repeat),
    }
    if fmax:
        result["fmax_mhz"] = fmax
        result["memories"] = {}
        for name, bandwidth in MEMORIES.items():
            memory_ms = total_bytes / bandwidth * 1e3
            best, worst = (max(cyc / (fmax * 1e3), memory_ms) for cyc in (overlapped, sequential))
            result["memories"][name] = {
                "memory_ms": memory_ms,
                "layer_ms_overlapped": best,
                "layer_ms_sequential": worst,
                "cpu_over_fpga": result["cpu"]["seconds"] * 1e3 / best,
            }
    return result


def layer_bench(
    cfg: DefaConfig | None = None,
    *,
    name: str | None = "fpga",
    input_hw=(800, 1333),
    decoder_queries: int = 300,
    seed: int = 0,
    window_rows=None,
    repeat: int = 2,
) -> dict:
    """The model figures of the fused layer for an encoder at ``input_hw`` (one query per
    pixel of every level) and a ``decoder_queries``-query decoder; ``cfg`` default: the
    ``fpga`` preset; ``name``: the preset whose routed clock (``fpga/baselines.json``) times
    it; ``window_rows``: band heights (default the config's, else 32/16/16/16...)."""
    cfg = cfg if cfg is not None else preset("fpga")
    if decoder_queries < 1:
        raise ValueError(f"decoder_queries={decoder_queries} is out of range: allowed >= 1")
    if repeat < 1:
        raise ValueError(f"repeat={repeat} is out of range: allowed >= 1")
    window_rows = tuple(window_rows or cfg.window_rows or (32,) + (16,) * (cfg.levels - 1))
    try:
        import torch  # noqa: F401
        import torch_ms_deform_attn  # noqa: F401
    except ImportError as e:
        raise ValueError(
            f"the layer bench times the CPU with the oracles ({e.name} is missing): "
            "pip install 'defa[oracles]' and torch-ms-deform-attn (see scripts/bootstrap.sh)"
        ) from None
    fmax, clock = _fmax_mhz(name, "layer")
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    runs = {
        kind: _workload(cfg, params, kind, input_hw, queries, seed, window_rows, fmax, repeat)
        for kind, queries in (("encoder", None), ("decoder", decoder_queries))
    }
    return {
        "config": cfg.describe() + f" proj_lanes={cfg.proj_lanes}",
        "input": f"{input_hw[0]}x{input_hw[1]}",
        "window_rows": list(window_rows),
        "clock": clock,
        "model_only": True,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "dsps": {**dsps(cfg), "budget_ecp5_85f": ECP5_85F_DSPS},
        "runs": runs,
    }


def format_layer(result: dict) -> str:
    d = result["dsps"]
    lines = [
        f"{result['config']}; input {result['input']} (figures from the cycle models, which "
        f"the layer top's regression records beside its RTL's cycles); clock: "
        f"{result['clock']}",
        f"DSPs: samplers {d['samplers']}, softmax {d['softmax']}, projections "
        f"{d['projections']} = {d['total']} (ECP5-85F: {d['budget_ecp5_85f']})",
    ]
    for kind, r in result["runs"].items():
        e, cyc = r["rel_l2"], r["cycles"]
        lines.append(
            f"{kind}: {r['queries']} queries over {r['pixels']} pixels; rel-L2 vs float: dense "
            f"{e['dense']:.4f}, PAP {e['pap']:.4f}, PAP+FWP {e['pap_fwp']:.4f} "
            f"({r['masked_fraction']:.1%} masked)"
        )
        phases = (
            "constants",
            "value_projection",
            "query_projections",
            "sampling",
            "output_projection",
        )
        lines.append(
            "  cycles: "
            + ", ".join(f"{k.replace('_', ' ')} {cyc[k]}" for k in phases)
            + f"; sequential {cyc['sequential']}, overlapped {cyc['overlapped']}"
        )
        lines.append(
            "  MACs done/skipped: "
            + ", ".join(f"{k} {v['done']:.3g}/{v['skipped']:.3g}" for k, v in r["macs"].items())
        )
        lines.append(
            f"  bytes moved {r['traffic_bytes']['total'] / 1e6:.2f} MB; CPU (torch fp32, "
            f"{r['cpu']['threads']} threads) {r['cpu']['seconds'] * 1e3:.1f} ms"
        )
        for name, mem in r.get("memories", {}).items():
            lines.append(
                f"  {name}: layer {mem['layer_ms_overlapped']:.1f} ms overlapped, "
                f"{mem['layer_ms_sequential']:.1f} ms sequential (memory {mem['memory_ms']:.1f} "
                f"ms): {mem['cpu_over_fpga']:.2f}x the CPU's speed (overlapped)"
            )
    return "\n".join(lines)
