"""The generated core on Icarus and Verilator, bit-exact against the bit-true model
(tb/core_tb.py): the fused softmax (logits in) or probabilities in; PAP at the config's
threshold, dense, everything pruned and peaky attention; random shapes, valid gaps, ready
backpressure, reset in mid-stream; counters; maps in external memory behind band windows.
Over the parametrized runs, more than 1e5 output transactions are checked."""

import json

import pytest
from configs import FPGA, ODD, TINY, TINY_BAND, TINY_LANES4, TINY_PROBS

from gen.cli import main
from tb.runner import run

RUNS = [
    # (name, config, simulator, jobs)
    ("tiny", TINY, "verilator", 59000),
    ("tiny-lanes4", TINY_LANES4, "verilator", 20000),
    ("odd", ODD, "verilator", 12000),
    ("tiny-probs", TINY_PROBS, "verilator", 10000),
    # Icarus: the same four tests on the second simulator, a few hundred jobs each (Icarus
    # takes about 17 ms a job here, Verilator 0.3 ms)
    ("tiny", TINY, "icarus", 400),
    ("odd", ODD, "icarus", 150),
    # maps in external memory (AxiRamRead with random AR and R pauses), bands of 16 and 2
    # rows over maps up to 40 and 24 rows: refills and slow paths counted against sim.band
    ("tiny-band", TINY_BAND, "verilator", 200),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,simulator,jobs", RUNS, ids=[f"{r[2]}-{r[0]}" for r in RUNS])
def test_core_regression(name, cfg, simulator, jobs, tmp_path):
    # the maps-in-memory core reads back a tenth of its FWP counters (the readback is most
    # of its run; tests/test_tb_top.py runs it further)
    _regression(cfg, simulator, jobs, tmp_path, fwp_read="0.1" if cfg.streamed else None)


def _regression(cfg, simulator: str, jobs: int, tmp_path, fwp_read: str | None = None) -> None:
    """The core testbench's four tests, ``jobs`` random jobs, every output checked; FWP's
    counters read back after each layer: a tenth of the pixels on Icarus, all on Verilator
    (``fwp_read``: another fraction)."""
    results = tmp_path / "measure.json"
    outcome = run(
        cfg,
        simulator,
        test_module="tb.core_tb",
        block="core",
        seed=21,
        env={
            "DEFA_JOBS": str(jobs),
            "DEFA_RESULTS": str(results),
            # Icarus reads back a tenth of the FWP counters (Verilator all of them, on every
            # config): the readback is most of Icarus's FWP test (the suite's time)
            "DEFA_FWP_READ": fwp_read or ("0.1" if simulator == "icarus" else "1"),
        },
    )
    assert outcome["tests"] == 4
    counters = json.loads(results.read_text())
    assert counters["jobs_out"] == counters["jobs_in"] > 0


@pytest.mark.slow
def test_fpga_core_regression_and_bench(tmp_path, capsys):
    """The ECP5-85F preset itself, on one Verilator build (two tests side by side had one idle
    on the other's build lock): a short regression (500 jobs; its maps are 32x32), then
    `defa bench core` without a config, the fpga preset's core (4 levels of 4 points, 4
    chunks per point) on a 64x64 encoder (340 jobs, about 5500 cycles; the default, the
    largest its buffers hold, takes 16x the simulation): dense utilization near 1 (the
    model: 0.987), PAP cycles follow the kept fraction, the model agrees with the RTL
    counter."""
    # (a tenth of its 1360 pixels, and each level's first and last, read back after each
    # FWP layer: the readback was most of this run; every other Verilator run reads every
    # pixel)
    _regression(FPGA, "verilator", 500, tmp_path, fwp_read="0.1")
    assert main(["bench", "core", "--core-input", "64x64", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "config used: d_model=128 heads=4 levels=4 points=4 lanes=8" in captured.err
    dense, pap = result["runs"]["dense"], result["runs"]["pap"]
    assert dense["kept_fraction"] == 1.0 and pap["kept_fraction"] < 1.0
    for run_ in (dense, pap):
        assert abs(run_["model_error"]) <= 0.02
        assert 0 < run_["utilization"] <= 1.0
    assert dense["utilization"] >= result["targets"]["utilization_dense_min"]
    assert result["pruned_over_dense_cycles"] <= pap["kept_fraction"] + 0.2
