"""``defa sweep``: every grid point once, resumable, throughput from the cycle model, the
Pareto front; synthesis is replaced by a stub recording its calls (the real flow is tested in
test_synth.py), so these tests check the sweep's own bookkeeping."""

import csv

import pytest

from gen.cli import main
from gen.config import preset
from gen.sweep import pareto, parse_vary, plot, sweep
from sim import workload as wl


def _fake_synth(calls):
    def run(cfg, out, *, pnr, xilinx):
        calls.append(cfg)
        lut = 1000 * cfg.lanes + 10 * cfg.queue_depth
        result = {"ecp5": {"lut4": lut, "carry": 0, "ff": 5, "dsp": 4 * cfg.lanes, "bram": 3}}
        if pnr:
            result["nextpnr"] = {"fmax_mhz": 100.0 - cfg.lanes}
        return result

    return run


def test_sweep_runs_each_point_once_and_resumes(tmp_path):
    calls = []
    grid = {"lanes": [4, 16], "queue_depth": [4, 8]}
    out = tmp_path / "s.csv"
    rows = sweep(preset("tiny"), grid, out, tmp_path, pnr=True, synth_fn=_fake_synth(calls))
    assert len(rows) == 4 and len(calls) == 4
    rows = sweep(
        preset("tiny"),
        {"lanes": [4, 16], "queue_depth": [4, 8, 16]},
        out,
        tmp_path,
        pnr=True,
        synth_fn=_fake_synth(calls),
    )
    assert len(rows) == 6 and len(calls) == 6  # only the two new points ran
    with out.open() as f:
        on_disk = list(csv.DictReader(f))
    assert [r["key"] for r in on_disk] == [r["key"] for r in rows]
    one = next(r for r in on_disk if r["params"] == "lanes=4 queue_depth=8")
    cfg = preset("tiny", lanes=4, queue_depth=8)
    assert int(one["lut4"]) == 4080 and float(one["fmax_mhz"]) == 96.0
    # Throughput is the cycle model's: jobs / cycles x Fmax.
    cycles, jobs = int(one["cycles"]), int(one["jobs"])
    w = wl.for_config(cfg, "encoder", seed=0)
    assert jobs == w.ref.shape[0] * cfg.heads  # every (query, head) of the largest input
    # at least the chunks of every point over the level units (4 chunks per point here)
    assert cycles >= jobs * cfg.points_per_head * cfg.cycles_per_point / cfg.levels * 0.5
    assert int(one["jobs_per_s"]) == round(jobs / cycles * 96.0e6)
    front = pareto(rows, speed="jobs_per_s", cost="lut4")
    costs = [float(r["lut4"]) for r in front]
    speeds = [float(r["jobs_per_s"]) for r in front]
    assert costs == sorted(costs) and speeds == sorted(speeds)
    for r in rows:  # nothing off the front is both cheaper and faster than a front point
        assert not any(
            float(r["lut4"]) < float(f["lut4"]) and float(r["jobs_per_s"]) > float(f["jobs_per_s"])
            for f in front
        )
    picture = plot(rows, tmp_path / "s.png")
    assert picture is None or picture.stat().st_size > 1000


def test_sweep_inputs_are_checked(tmp_path, capsys):
    assert parse_vary(["lanes=4,8", "tau_p=0.01"]) == {"lanes": [4, 8], "tau_p": [0.01]}
    with pytest.raises(ValueError, match="must look like name=value1,value2"):
        parse_vary(["lanes"])
    with pytest.raises(ValueError, match="lists no values"):
        parse_vary(["lanes="])
    out = str(tmp_path / "x.csv")
    assert main(["sweep", "--preset", "tiny", "--vary", "lanes=3", "--no-synth", "-o", out]) == 2
    assert "lanes=3 must divide head_dim=16" in capsys.readouterr().err
    assert main(["sweep", "--preset", "tiny", "--no-synth", "-o", out]) == 2
    assert "--vary" in capsys.readouterr().err
