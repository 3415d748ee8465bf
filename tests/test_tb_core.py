"""The generated core on Icarus and Verilator, bit-exact against the bit-true model
(tb/core_tb.py): the fused softmax (logits in) or probabilities in; PAP at the config's
threshold, dense, everything pruned and peaky attention; random shapes, valid gaps, ready
backpressure, reset in mid-stream; counters. Over the parametrized runs, more than 1e5
output transactions are checked."""

import json

import pytest
from configs import FPGA, ODD, TINY, TINY_LANES4, TINY_PROBS

from tb.runner import run

RUNS = [
    # (name, config, simulator, jobs)
    ("tiny", TINY, "verilator", 50000),
    ("tiny-lanes4", TINY_LANES4, "verilator", 20000),
    ("odd", ODD, "verilator", 20000),
    ("tiny-probs", TINY_PROBS, "verilator", 10000),
    # the ECP5-85F preset itself: a short run (its maps are 32x32 and FWP reads every pixel)
    ("fpga", FPGA, "verilator", 1000),
    ("tiny", TINY, "icarus", 1000),
    ("odd", ODD, "icarus", 500),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,simulator,jobs", RUNS, ids=[f"{r[2]}-{r[0]}" for r in RUNS])
def test_core_regression(name, cfg, simulator, jobs, tmp_path):
    results = tmp_path / "measure.json"
    outcome = run(
        cfg,
        simulator,
        test_module="tb.core_tb",
        block="core",
        seed=21,
        env={"DEFA_JOBS": str(jobs), "DEFA_RESULTS": str(results)},
    )
    assert outcome["tests"] == 4
    counters = json.loads(results.read_text())
    assert counters["jobs_out"] == counters["jobs_in"] > 0
