"""Design-space sweeps: every combination of the varied parameters, each point's throughput
from the cycle model (an encoder workload as large as its buffers hold) times its Fmax,
against its FPGA resources; a CSV that grows row by row (a rerun skips the points already in
it) and a Pareto plot.

Throughput = jobs / model cycles x Fmax (jobs: (query, head) pairs). Without place and route
(``pnr=False``) Fmax is unknown and throughput is given per MHz.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path

from gen.config import DefaConfig, parse_override
from gen.synth import lut4_total, synth
from sim import bittrue, perf
from sim import workload as wl

__all__ = ["COLUMNS", "pareto", "parse_vary", "plot", "sweep"]

COLUMNS = [
    "key",
    "params",
    "cycles",
    "jobs",
    "jobs_per_mcycle",
    "fmax_mhz",
    "jobs_per_s",
    "lut4",
    "ff",
    "dsp",
    "bram",
    "fits",
]


def parse_vary(texts: list[str]) -> dict[str, list]:
    """``["lanes=4,8", "points=2,4"]`` -> ``{"lanes": [4, 8], "points": [2, 4]}``."""
    grid = {}
    for text in texts:
        if "=" not in text:
            raise ValueError(f"--vary {text!r} must look like name=value1,value2")
        name, values = text.split("=", 1)
        parsed = [parse_override(f"{name}={v}")[1] for v in values.split(",") if v != ""]
        if not parsed:
            raise ValueError(f"--vary {text!r} lists no values")
        grid[name] = parsed
    return grid


def _key(cfg: DefaConfig) -> str:
    return hashlib.sha256(cfg.to_json().encode()).hexdigest()[:12]


def _point(cfg: DefaConfig, seed: int) -> dict:
    """Cycle-model figures of one config."""
    w = wl.for_config(cfg, "encoder", seed=seed)  # the largest input the buffers hold
    args = (cfg, w.value, w.shapes, w.level_start, w.ref, w.offsets)
    if cfg.softmax:
        qc = bittrue.quantize_core(*args, logits=w.logits)
    else:
        qc = bittrue.quantize_core(*args, w.probs)
    model = perf.predict(cfg, perf.kept_points(qc.probs, cfg.tau_p_q))
    return {"cycles": model["cycles"], "jobs": model["jobs"]}


def sweep(
    base: DefaConfig,
    grid: dict[str, list],
    out_csv: str | Path,
    work_dir: str | Path,
    *,
    synthesize: bool = True,
    pnr: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    synth_fn=synth,
) -> list[dict]:
    """Run every point of ``grid`` over ``base`` not yet in ``out_csv``; returns all rows."""
    out_csv = Path(out_csv)
    rows = []
    if out_csv.exists():
        with out_csv.open() as f:
            rows = list(csv.DictReader(f))
    done = {row["key"] for row in rows}
    names = list(grid)
    points = list(itertools.product(*(grid[n] for n in names)))
    new = out_csv.exists() is False
    with out_csv.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for i, values in enumerate(points):
            params = dict(zip(names, values, strict=True))
            label = " ".join(f"{k}={v}" for k, v in params.items())
            cfg = base.replace(**params)  # ValueError names a bad parameter
            key = _key(cfg)
            if key in done:
                if progress:
                    progress(f"[{i + 1}/{len(points)}] {label}: in the CSV already")
                continue
            if progress:
                progress(f"[{i + 1}/{len(points)}] {label}")
            row = {"key": key, "params": label, **_point(cfg, seed)}
            row["jobs_per_mcycle"] = round(row["jobs"] / row["cycles"] * 1e6, 1)
            row.update(fmax_mhz="", jobs_per_s="", lut4="", ff="", dsp="", bram="", fits="")
            if synthesize:
                result = synth_fn(cfg, Path(work_dir) / key, pnr=pnr, xilinx=False)
                e = result["ecp5"]
                row.update(lut4=lut4_total(e), ff=e["ff"], dsp=e["dsp"], bram=e["bram"])
                row["fits"] = int(lut4_total(e) <= 83640 and e["dsp"] <= 156 and e["bram"] <= 208)
                if "nextpnr" in result:
                    fmax = result["nextpnr"]["fmax_mhz"]
                    row["fmax_mhz"] = fmax
                    row["jobs_per_s"] = round(row["jobs"] / row["cycles"] * fmax * 1e6)
            writer.writerow(row)
            f.flush()
            rows.append({k: str(v) for k, v in row.items()})
            done.add(key)
    return rows


def pareto(rows: list[dict], *, speed: str, cost: str) -> list[dict]:
    """Rows not dominated (higher ``speed``, lower ``cost``), ordered by cost."""
    usable = [r for r in rows if r.get(speed) not in ("", None) and r.get(cost) not in ("", None)]
    usable.sort(key=lambda r: (float(r[cost]), -float(r[speed])))
    front, best = [], float("-inf")
    for r in usable:
        if float(r[speed]) > best:
            front.append(r)
            best = float(r[speed])
    return front


def plot(rows: list[dict], path: str | Path) -> Path | None:
    """Throughput against LUTs and DSPs, the Pareto front marked; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    speed = "jobs_per_s" if any(r.get("jobs_per_s") for r in rows) else "jobs_per_mcycle"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, cost in zip(axes, ("lut4", "dsp"), strict=True):
        pts = [r for r in rows if r.get(cost) not in ("", None)]
        ax.scatter([float(r[cost]) for r in pts], [float(r[speed]) for r in pts], s=18)
        front = pareto(rows, speed=speed, cost=cost)
        ax.plot([float(r[cost]) for r in front], [float(r[speed]) for r in front], "r-o", ms=4)
        for r in front:
            ax.annotate(r["params"], (float(r[cost]), float(r[speed])), fontsize=7)
        ax.set_xlabel(f"ECP5 {cost}")
        ax.set_ylabel(speed.replace("_", " "))
        ax.xaxis.set_major_locator(plt.MaxNLocator(6))  # readable tick labels
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
