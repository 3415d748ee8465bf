"""The cycle model (sim/perf.py) against the RTL's own cycle counter (Verilator), on workloads
of different shape: dense, pruned, skewed levels, decoder, peaky attention, several configs.
The issue asks for 2%; the model follows the RTL's documented timing and is exact here."""

import json

import numpy as np
import pytest

from gen.config import preset
from sim import perf
from sim import workload as wl
from tb import core_model
from tb.runner import run

SMALL4 = preset(
    "tiny",
    d_model=64,
    heads=4,
    levels=4,
    points=4,
    lanes=16,
    max_shapes=((12, 16), (6, 8), (3, 4), (2, 2)),
    queue_depth=8,
    offset_bits=15,
)

CASES = [
    # (id, config, workload kind, workload options, tau_p CSR: None = the config's)
    ("tiny-encoder-dense", preset("tiny"), "encoder", {"seed": 1}, 0),
    ("tiny-encoder-pruned", preset("tiny"), "encoder", {"seed": 2, "logit_spread": 3.0}, None),
    ("tiny-lanes4-decoder", preset("tiny", lanes=4), "decoder", {"queries": 80, "seed": 3}, None),
    (
        "small4-skewed-levels",
        SMALL4,
        "decoder",
        {"queries": 60, "seed": 4, "level_bias": (2.5, 0.0, -1.0, -2.0)},
        None,
    ),
    ("small4-encoder-heavy-pap", SMALL4, "encoder", {"seed": 5, "logit_spread": 2.5}, 400),
    (
        "tiny-depth2-decoder",
        preset("tiny", queue_depth=2),
        "decoder",
        {"queries": 100, "seed": 6, "logit_spread": 2.0},
        None,
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,kind,options,tau", CASES, ids=[c[0] for c in CASES])
def test_cycle_model_matches_rtl(name, cfg, kind, options, tau, tmp_path):
    w = wl.for_config(cfg, kind, **options)
    path = wl.save(w, tmp_path / "w.npz")
    tau = cfg.tau_p_q if tau is None else tau
    results = tmp_path / "measure.json"
    run(
        cfg,
        "verilator",
        test_module="tb.core_tb",
        block="core",
        testcase="measure",
        seed=1,
        env={"DEFA_WORKLOAD": str(path), "DEFA_TAU_P": str(tau), "DEFA_RESULTS": str(results)},
    )
    rtl = json.loads(results.read_text())
    qc = core_model.workload_quantized(cfg, w)
    model = perf.predict(cfg, perf.kept_points(qc.probs, tau))
    print(f"{name}: rtl {rtl['cycles']} model {model['cycles']} busy {rtl['busy']}")
    assert abs(model["cycles"] - rtl["cycles"]) <= 0.02 * rtl["cycles"]
    assert model["busy"] == rtl["busy"]


def test_model_basics():
    cfg = preset("tiny")
    with pytest.raises(ValueError, match="levels=2"):
        perf.predict(cfg, [[1, 1, 1]])
    assert perf.predict(cfg, np.zeros((0, 2), int))["cycles"] == 0
    dense = perf.predict(cfg, [[2, 2]] * 100)
    pruned = perf.predict(cfg, [[1, 1]] * 100)
    assert dense["ideal"] == 200 and pruned["ideal"] == 100
    assert dense["cycles"] > pruned["cycles"] > 100
    # A level with nothing kept costs no sampler cycle: the busy level sets the pace.
    skew = perf.predict(cfg, [[2, 0]] * 100)
    assert abs(skew["cycles"] - dense["cycles"]) <= 2
