"""The streamed sampler (band window, sampler, AXI4 reader) on Verilator, bit-exact against the
bit-true model with its map in cocotbext-axi's AxiRamRead (tb/streamed_sampler_tb.py): maps
taller than the band, band refills and slow paths counted against ``sim.band``. (The
maps-in-memory core runs on Icarus too, with two chunks per point: tests/test_tb_core.py.)"""

import pytest

from gen.config import preset
from tb.runner import run

CONFIGS = {
    # one point per cycle; a 40-row map through a band of 4 rows (the core's regression runs
    # bands of 2 rows and two chunks per point)
    "tiny-band4": (
        preset("tiny", offset_bits=16, max_shapes=((40, 11), (5, 6)), window_rows=(4, 2)),
        0,
    ),
}
SEEDS = {"tiny-band4": 21}
RUNS = [("tiny-band4", "verilator")]


@pytest.mark.slow
@pytest.mark.parametrize("name,simulator", RUNS)
def test_streamed_sampler_regression(name, simulator):
    cfg, level = CONFIGS[name]
    outcome = run(
        cfg,
        simulator,
        test_module="tb.streamed_sampler_tb",
        block="streamed_sampler",
        level=level,
        seed=SEEDS[name],
        env={"DEFA_POINTS": "1000"},
    )
    assert outcome["tests"] == 1
