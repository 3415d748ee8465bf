"""The AXI4 burst writer (rtl/memory/axi_writer.py) against cocotbext-axi's AxiRamWrite on
Icarus and Verilator (tb/axi_writer_tb.py), over data widths, burst caps and queue sizes, one of
them with a single burst in flight."""

import json

import pytest

from gen.elaborate import verilog_of
from rtl.memory.axi_writer import AxiWriter
from tb.runner import build_and_test


def _params(addr_bits, data_bits, max_burst, queue_depth, outstanding):
    return dict(
        addr_bits=addr_bits,
        data_bits=data_bits,
        max_burst=max_burst,
        queue_depth=queue_depth,
        outstanding=outstanding,
    )


CASES = [
    # (id, writer parameters, simulator)
    ("d64-b16", _params(32, 64, 16, 16, 4), "icarus"),
    ("d128-b32", _params(32, 128, 32, 8, 2), "verilator"),
    # one burst waiting for its response at a time, a queue of two beats
    ("d32-b4-tight", _params(24, 32, 4, 2, 1), "verilator"),
]


@pytest.mark.parametrize("name,params,simulator", CASES, ids=[c[0] for c in CASES])
def test_writer_against_axi_ram(name, params, simulator, tmp_path):
    path = tmp_path / "axi_writer.v"
    path.write_text(verilog_of(AxiWriter(**params), "axi_writer", "generic"))
    outcome = build_and_test(
        [str(path)],
        "axi_writer",
        simulator,
        tmp_path / simulator,
        test_module="tb.axi_writer_tb",
        seed=12,
        env={"DEFA_AXI": json.dumps(params), "DEFA_REQUESTS": "80"},
    )
    assert outcome[:2] == (1, 0), f"{name} (seed 12): see {outcome.run_dir}/test.log"


@pytest.mark.parametrize(
    "params,words",
    [
        (dict(data_bits=24), "data_bits=24 is not allowed"),
        (dict(data_bits=128, max_burst=512), r"max_burst=512 is out of range: allowed \[1, 256\]"),
        (dict(queue_depth=1), r"queue_depth=1 is out of range: allowed >= 2"),
        (dict(outstanding=0), "outstanding=0"),
    ],
)
def test_writer_refuses_bad_parameters(params, words):
    with pytest.raises(ValueError, match=words):
        AxiWriter(**params)
