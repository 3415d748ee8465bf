"""The main job: a realistic workload through the models and the generated RTL, with a report.

The float golden model, the bit-true model (the RTL's contract) and both prunings; the core's
RTL on Verilator (every output bit-exact, cycles from its counters); the maps-in-memory figures
(``defa bench stream``); the fused layer: its top from memory on Verilator, bit-exact against
the bit-true layer, and ``defa bench layer`` against the same layer on this CPU.
"""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from gen.config import DefaConfig, preset
from sim import bittrue, golden
from sim import workload as wl

__all__ = ["rel_l2", "run_demo"]


def rel_l2(got: np.ndarray, want: np.ndarray) -> float:
    """Relative L2 error ``|got - want| / |want|``."""
    den = float(np.linalg.norm(want))
    return float(np.linalg.norm(got - want)) / den if den else float(np.linalg.norm(got))


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def run_demo(
    cfg: DefaConfig,
    *,
    input_hw=None,
    seed: int = 0,
    rtl: bool = True,
    stream: bool = True,
    layer: bool = True,
    console: Console | None = None,
) -> dict:
    console = console or Console()
    t0 = time.perf_counter()
    w = wl.for_config(cfg, "encoder", input_hw=input_hw, seed=seed)
    console.print(f"[bold]defa demo[/] config: {cfg.describe()}")
    console.print(f"workload {w.describe()}")
    value = w.value.astype(np.float64)
    probs, loc = w.probs, w.locations

    dense = golden.msda_core(value, w.shapes, w.level_start, loc, probs)
    qc = bittrue.quantize_core(cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets, probs)
    bt_dense = bittrue.core(cfg, qc)
    # The same through the fused fixed-point softmax (logits in, as the core takes them).
    qc_softmax = bittrue.quantize_core(
        cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets, logits=w.logits
    )
    bt_softmax = bittrue.core(cfg, qc_softmax)

    # PAP at the config's tau_p.
    float_pap = golden.msda_core(value, w.shapes, w.level_start, loc, probs, tau_p=cfg.tau_p)
    bt_pap = bittrue.core(cfg, qc, pap=True)
    kept = bt_pap.points_kept / (bt_pap.points_kept + bt_pap.points_pruned)

    # FWP: the mask measured on this layer's samples (what the next layer would use).
    importance = golden.pixel_importance(w.shapes, w.level_start, loc, probs, tau_p=cfg.tau_p)
    mask = golden.fwp_mask(importance, w.shapes, w.level_start, cfg.tau_f)
    float_both = golden.msda_core(
        value, w.shapes, w.level_start, loc, probs, tau_p=cfg.tau_p, pixel_mask=mask
    )
    bt_mask = golden.fwp_mask(
        bt_pap.importance.astype(np.float64), w.shapes, w.level_start, cfg.tau_f
    )
    bt_both = bittrue.core(cfg, qc, pap=True, pixel_mask=bt_mask)

    nv = value.shape[0]
    bytes_per_pixel = cfg.d_model * cfg.value_bits // 8
    masked_per_level = []
    for (h, wd), start in zip(w.shapes, w.level_start, strict=True):
        masked_per_level.append(float(1.0 - bt_mask[start : start + h * wd].mean()))
    report = {
        "config": cfg.to_dict(),
        "workload": w.describe(),
        "queries": w.queries,
        "rel_l2_bittrue_dense": rel_l2(bt_dense.dequantize(cfg, qc.scale), dense),
        "rel_l2_bittrue_softmax_dense": rel_l2(bt_softmax.dequantize(cfg, qc.scale), dense),
        "pap": {
            "tau_p": cfg.tau_p,
            "kept_fraction": kept,
            "rel_l2_float": rel_l2(float_pap, dense),
            "rel_l2_bittrue": rel_l2(bt_pap.dequantize(cfg, qc.scale), dense),
        },
        "fwp": {
            "tau_f": cfg.tau_f,
            "masked_fraction": float(1.0 - bt_mask.mean()),
            "masked_fraction_per_level": masked_per_level,
            "rel_l2_float_pap_fwp": rel_l2(float_both, dense),
            "rel_l2_bittrue_pap_fwp": rel_l2(bt_both.dequantize(cfg, qc.scale), dense),
            "value_bytes_dense": nv * bytes_per_pixel,
            "value_bytes_fwp": int(bt_mask.sum()) * bytes_per_pixel,
        },
        "points_off_map": bt_dense.points_off_map,
        "seconds": time.perf_counter() - t0,
    }

    table = Table(title="float golden vs bit-true (the RTL contract), rel-L2 vs dense float")
    table.add_column("run")
    table.add_column("rel-L2", justify="right")
    table.add_column("notes")
    table.add_row("bit-true, dense", f"{report['rel_l2_bittrue_dense']:.4f}", "quantization only")
    table.add_row(
        "bit-true, dense, fixed-point softmax",
        f"{report['rel_l2_bittrue_softmax_dense']:.4f}",
        "logits in, as the core takes them",
    )
    pap = report["pap"]
    table.add_row(
        "float, PAP", f"{pap['rel_l2_float']:.4f}", f"tau_p={cfg.tau_p}: {kept:.1%} points kept"
    )
    table.add_row("bit-true, PAP", f"{pap['rel_l2_bittrue']:.4f}", "")
    fwp = report["fwp"]
    per_level = ", ".join(f"{m:.0%}" for m in masked_per_level)
    table.add_row(
        "float, PAP+FWP",
        f"{fwp['rel_l2_float_pap_fwp']:.4f}",
        f"tau_f={cfg.tau_f}: {fwp['masked_fraction']:.1%} pixels masked ({per_level})",
    )
    table.add_row(
        "bit-true, PAP+FWP",
        f"{fwp['rel_l2_bittrue_pap_fwp']:.4f}",
        f"value storage {_size(fwp['value_bytes_fwp'])} of {_size(fwp['value_bytes_dense'])}",
    )
    console.print(table)
    console.print(f"{report['points_off_map']} points fell off the map; {report['seconds']:.1f} s")
    if rtl:
        report["core_rtl"] = _run_core(cfg, seed, console)
    if stream:
        report["stream"] = _run_stream(seed, console)
    if layer:
        report["layer"] = _run_layer(seed, console, rtl=rtl)
    return report


def _run_layer(seed: int, console: Console, *, rtl: bool) -> dict:
    """The fused layer: its top from memory on Verilator (tiny: a decoder and an encoder layer
    from float weights, every output word bit-exact against ``sim.layer``; cycles beside the
    phase models), then ``defa bench layer`` (fpga, the 800x1333 encoder and a 300-query
    decoder against the same layer on this CPU)."""
    import json
    import tempfile
    from pathlib import Path

    from gen import layer_bench

    report = {}
    if rtl:
        from tb.runner import run

        with console.status("the fused layer: generating its top (tiny), Verilator, two layers"):
            with tempfile.TemporaryDirectory() as tmp:
                results = Path(tmp) / "layer.json"
                run(
                    preset("tiny"),
                    "verilator",
                    test_module="tb.layer_top_tb",
                    block="layer_top",
                    seed=seed + 1,
                    testcase="layers",
                    env={"DEFA_RESULTS": str(results), "DEFA_AXI_FULL_SPEED": "1"},
                )
                report["rtl"] = json.loads(results.read_text())
        table = Table(
            title="fused layer RTL (tiny, Verilator, memory at full speed; every output word "
            "bit-exact) against the cycle models' bounds"
        )
        columns = ("layer", "queries", "pixels masked", "RTL cycles", "model: sequential")
        for column in (*columns, "overlapped"):
            table.add_column(column)
        for kind, fig in report["rtl"].items():
            table.add_row(
                kind,
                str(fig["queries"]),
                f"{fig['masked']}/{fig['pixels']} (FWP)",
                str(fig["cycles"]),
                str(fig["sequential"]),
                str(fig["overlapped"]),
            )
        console.print(table)
    with console.status("the fused layer: defa bench layer (fpga, 800x1333; models and CPU)"):
        report["bench"] = layer_bench.layer_bench(seed=seed)
    console.print("[bold]fused layer[/] (`defa bench layer`, fpga preset)")
    console.print(layer_bench.format_layer(report["bench"]))
    return report


def _run_stream(seed: int, console: Console) -> dict:
    """Maps in external memory: ``defa bench stream`` on the ``fpga`` preset and the 800x1333
    encoder (and a 300-query decoder), cycle model figures."""
    from gen import traffic

    with console.status("maps in external memory: the fpga preset on the 800x1333 layer"):
        result = traffic.stream_bench(preset("fpga"), name="fpga", seed=seed)
    console.print("[bold]maps in external memory[/] (`defa bench stream`, fpga preset)")
    console.print(traffic.format_stream(result))
    return result


#: the detr preset's core runs a scaled encoder (a full layer takes 16x the simulation)
DEMO_CORE_INPUT = (200, 334)


def _run_core(cfg: DefaConfig, seed: int, console: Console) -> dict:
    """The generated core on Verilator: a scaled encoder workload (the detr preset) or the
    largest the config holds, dense and with PAP, every output checked bit-exact."""
    from gen.bench import core_bench, format_core

    with console.status("generating the core, building it with Verilator, running the workload"):
        if cfg == preset("detr"):  # its formats and bands, maps of a scaled encoder
            scaled = wl.level_shapes(DEMO_CORE_INPUT)
            shapes = tuple(tuple(int(v) for v in s) for s in scaled)
            result = core_bench(cfg.replace(max_shapes=shapes), input_hw=DEMO_CORE_INPUT, seed=seed)
        else:
            result = core_bench(cfg, input_hw=None, seed=seed)
    console.print("[bold]core RTL[/] (Verilator; every output bit-exact vs the bit-true model)")
    console.print(format_core(result))
    return result
