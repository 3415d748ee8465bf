"""The generated sampler Verilog on Icarus and Verilator, bit-exact against the bit-true model
(tb/sampler_tb.py): random points with edge cases (>= 1e4 per run on Verilator; 3000 on
Icarus, whose run is the four-state one: an undriven or unreset bit shows as X), random valid
gaps and ready backpressure, reset in mid-stream, and the throughput/latency check."""

import json

import pytest

from gen.config import preset
from tb.runner import SIMULATORS, run

CONFIGS = {
    # lanes == head_dim: one point per cycle
    "tiny": (preset("tiny"), 0),
    # four chunks per point; level 1 of the buffer geometry
    "tiny-lanes4-level1": (preset("tiny", lanes=4), 1),
    # odd everything: 3 heads of 8 channels, a 7x13 map, narrow formats
    "odd": (
        preset(
            "tiny",
            d_model=24,
            heads=3,
            levels=1,
            points=3,
            lanes=8,
            max_shapes=((7, 13),),
            coord_frac_bits=5,
            prob_bits=9,
            coeff_bits=10,
            offset_bits=11,
        ),
        0,
    ),
}

SEEDS = {"tiny": 11, "tiny-lanes4-level1": 12, "odd": 13}
POINTS = {"verilator": 10000, "icarus": 3000}


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sampler_regression(simulator, name, tmp_path):
    cfg, level = CONFIGS[name]
    results = tmp_path / "throughput.json"
    outcome = run(
        cfg,
        simulator,
        test_module="tb.sampler_tb",
        level=level,
        seed=SEEDS[name],
        env={"DEFA_POINTS": str(POINTS[simulator]), "DEFA_RESULTS": str(results)},
    )
    assert outcome["tests"] == 3
    figures = json.loads(results.read_text())
    print(f"{simulator} {name}: {figures}")
    assert figures["cycles_per_point"] == pytest.approx(cfg.cycles_per_point, abs=0.01)
