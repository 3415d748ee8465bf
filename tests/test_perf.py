"""The cycle model (sim/perf.py) against the RTL's own cycle counter (Verilator), on workloads
of different shape: dense, pruned, skewed levels, decoder, peaky attention, several configs.
The issue asks for 2%; the model follows the RTL's documented timing and is exact here."""

import numpy as np
import pytest
from configs import FPGA, ODD, TINY, TINY_BAND, TINY_LANES4, TINY_PROBS

from gen.config import preset
from sim import bittrue, perf
from sim import workload as wl
from tb import core_model

CASES = [
    # (id, config, workload kind, workload options, tau_p CSR: None = the config's)
    ("tiny-encoder-dense", TINY, "encoder", {"seed": 1}, 0),
    ("tiny-encoder-pruned", TINY, "encoder", {"seed": 2, "logit_spread": 3.0}, None),
    ("tiny-lanes4-decoder", TINY_LANES4, "decoder", {"queries": 80, "seed": 3}, None),
    ("tiny-probs-decoder", TINY_PROBS, "decoder", {"queries": 80, "seed": 7}, None),
    # coord_frac_bits 4 (a shorter sampler), two-stage softmax trees, 2-deep queues
    ("odd-decoder", ODD, "decoder", {"queries": 100, "seed": 6, "logit_spread": 2.0}, None),
    ("odd-encoder-dense", ODD, "encoder", {"seed": 8, "queries": 60}, 0),
    # the fpga preset: 4 levels of 4 points, 4 chunks per point
    (
        "fpga-skewed-levels",
        FPGA,
        "decoder",
        {"queries": 60, "seed": 4, "level_bias": (2.5, 0.0, -1.0, -2.0)},
        None,
    ),
    ("fpga-encoder-heavy-pap", FPGA, "encoder", {"seed": 5, "logit_spread": 2.5}, 400),
    # nothing kept: jobs pass at the softmax queue's pace (its credits, 16 per round trip)
    ("fpga-all-pruned", FPGA, "decoder", {"queries": 60, "seed": 10}, 4096),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,kind,options,tau", CASES, ids=[c[0] for c in CASES])
def test_cycle_model_matches_rtl(name, cfg, kind, options, tau, tmp_path):
    w = wl.for_config(cfg, kind, **options)
    path = wl.save(w, tmp_path / "w.npz")
    tau = cfg.tau_p_q if tau is None else tau
    rtl = core_model.measure(cfg, "verilator", path, tmp_path / "measure.json", tau_p_q=tau)
    qc = core_model.workload_quantized(cfg, w)
    model = perf.predict(cfg, perf.kept_points(qc.probs, tau))
    print(f"{name}: rtl {rtl['cycles']} model {model['cycles']} busy {rtl['busy']}")
    # the issue asks for 2%; the model follows the RTL's documented timing: exact
    assert model["cycles"] == rtl["cycles"]
    assert model["busy"] == rtl["busy"]


STREAMED = [
    # (id, config, workload kind, input (H, W), seed): maps in memory, AxiRamRead at full
    # speed; one core build (a band of 16 rows fetching ahead, one of 2 rows waiting)
    ("band-encoder-tall-maps", TINY_BAND, "encoder", (320, 88), 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,kind,hw,seed", STREAMED, ids=[c[0] for c in STREAMED])
def test_streamed_cycle_model_within_two_percent(name, cfg, kind, hw, seed, tmp_path):
    """The memory side of the cycle model (perf.predict_streamed, perf.AXI_RAM) against the
    RTL with its maps in cocotbext-axi's AxiRamRead (no pauses): within 2% (the issue's
    bound; the window's waits depend on the memory's timing, which the model approximates),
    the rows fetched and the slow paths exact; then the same jobs through the FWP mask DERIVE
    gives at tau_f 0.9 (most pixels masked: the fetches are runs of kept pixels), the same."""
    w = wl.for_config(cfg, kind, input_hw=hw, seed=seed)
    path = wl.save(w, tmp_path / "w.npz")
    tau_f_q = round(0.9 * (1 << cfg.tau_f_bits))
    rtl = core_model.measure(
        cfg,
        "verilator",
        path,
        tmp_path / "measure.json",
        axi_pauses=(0, 0),
        masked_layer=True,
        tau_f_q=tau_f_q,
    )
    qc = core_model.workload_quantized(cfg, w)
    order = core_model.job_order(qc, "band")
    importance = bittrue.core(cfg, qc, tau_p_q=cfg.tau_p_q).importance
    keep = bittrue.fwp_mask(cfg, importance, qc.shapes, tau_f_q)
    for what, mask, got in (("", None, rtl), (" masked", keep, rtl["masked_layer"])):
        model = perf.predict_streamed(cfg, qc, cfg.tau_p_q, order, perf.AXI_RAM, pixel_mask=mask)
        error = model["cycles"] / got["cycles"] - 1
        print(f"{name}{what}: rtl {got['cycles']} model {model['cycles']} ({error:+.2%})")
        assert model["rows_fetched"] == got["rows_fetched"]
        assert model["slow_points"] == got["slow_points"]
        assert sum(model["pixels_fetched"]) * cfg.cycles_per_point == got["beats_read"]
        assert abs(error) <= 0.02
    print(f"masked {1 - keep.mean():.1%} of the pixels")
    assert keep.mean() < 0.6


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
