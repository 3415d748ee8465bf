"""The maps-in-memory top (tb/top_tb.py) on both simulators: whole runs through its command
interface with maps, jobs and outputs in cocotbext-axi's AxiRam (random pauses on every
channel), every output slot bit-exact against the bit-true model, counters against the
models, FWP masking part and then all of the pixels (masked pixels are not read), and CSR
misuse and memory errors ending in their error bit, never a hang. (On Icarus this is also
the maps-in-memory core's four-state run: an undriven or unreset bit on the memory path shows
as X and fails it.)"""

import pytest
from configs import TINY_BAND

from tb.runner import run

RUNS = [("verilator", 40), ("icarus", 16)]


@pytest.mark.slow
@pytest.mark.parametrize("simulator,queries", RUNS, ids=[r[0] for r in RUNS])
def test_top_runs_from_memory(simulator, queries):
    outcome = run(
        TINY_BAND,
        simulator,
        test_module="tb.top_tb",
        block="top",
        seed=5,
        env={"DEFA_QUERIES": str(queries)},
    )
    assert outcome["tests"] == 3
