"""The fused layer from memory (tb/layer_top_tb.py) on both simulators: whole decoder and
encoder layers with constants, map, queries and outputs in cocotbext-axi's AxiRam (random
pauses on every channel), every output word bit-exact against the bit-true layer model; the
registers out of range, a start while busy and outputs into failing memory end in their error
bits, never a hang. On Icarus the protocol checker also watches the layer's inner streams."""

import pytest
from configs import ODD, TINY

from tb.runner import run

RUNS = [
    ("tiny", TINY, "verilator"),
    # 3 heads, 3 levels of 3 points, narrow formats; projection rows of 3 chunks, the last
    # padded (24 channels, 10 lanes: the records of x and the queries take 3 beats)
    ("odd", ODD.replace(proj_lanes=10), "icarus"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg,simulator", [r[1:] for r in RUNS], ids=[f"{r[0]}-{r[2]}" for r in RUNS]
)
def test_layer_runs_from_memory(cfg, simulator):
    outcome = run(cfg, simulator, test_module="tb.layer_top_tb", block="layer_top", seed=7)
    assert outcome["tests"] == 2
