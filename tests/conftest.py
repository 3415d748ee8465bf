import os

from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples on every run (the failing example and its
# seed are printed by hypothesis); no deadline, since CI machines vary in speed.
settings.register_profile(
    "defa",
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("DEFA_HYPOTHESIS_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("defa")


#: the longest test (about 5 minutes: ECP5 synthesis and a gate-level simulation) starts
#: the run: pytest-xdist's worksteal hands each worker a contiguous half of the order, so a
#: long test late in the slow half started minutes in and ended the run alone
LONGEST = ("test_tiny_synthesis_matches_its_baseline_and_its_netlist_is_bit_exact",)
#: the test on the fpga preset's Verilator model (about 170 s, nearly all its build): next,
#: so that the two workers start on the two longest tests
FPGA_VERILATOR = ("test_fpga_core_regression_and_bench",)


def pytest_collection_modifyitems(config, items):
    """The longest test, the fpga model's test, then the slow tests (stable order
    otherwise): with pytest-xdist both workers then start on the long simulations and the
    quick tests fill the gaps at the end."""
    items.sort(
        key=lambda item: (
            item.name not in LONGEST,
            item.name not in FPGA_VERILATOR,
            item.get_closest_marker("slow") is None,
        )
    )
