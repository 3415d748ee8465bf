"""The generated core on Icarus and Verilator, bit-exact against the bit-true model
(tb/core_tb.py): the fused softmax (logits in) or probabilities in; PAP at the config's
threshold, dense, everything pruned and peaky attention; random shapes, valid gaps, ready
backpressure, reset in mid-stream; counters. Over the parametrized runs, more than 1e5
output transactions are checked."""

import json

import pytest

from gen.config import preset
from tb.runner import run

ODD = preset(
    "tiny",
    d_model=24,
    heads=3,
    levels=3,
    points=3,
    lanes=4,
    max_shapes=((7, 13), (4, 7), (2, 3)),
    coord_frac_bits=5,
    prob_bits=9,
    coeff_bits=10,
    offset_bits=11,
    queue_depth=2,
    tau_p=0.05,
)
ODD = ODD.replace(acc_bits=ODD.min_acc_bits)  # the narrowest exact accumulator (as fpga's)

RUNS = [
    # (name, config, simulator, jobs)
    ("tiny", preset("tiny"), "verilator", 50000),
    ("tiny-lanes4", preset("tiny", lanes=4, queue_depth=8), "verilator", 20000),
    ("odd", ODD, "verilator", 20000),
    # probabilities in (no fused softmax)
    ("tiny-probs", preset("tiny", softmax=False), "verilator", 10000),
    ("tiny", preset("tiny"), "icarus", 3000),
    ("odd", ODD, "icarus", 1500),
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
