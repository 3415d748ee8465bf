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


def pytest_collection_modifyitems(config, items):
    """The slow tests first (stable order otherwise): with pytest-xdist both workers then
    start on the long simulations and the quick tests fill the gaps at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
