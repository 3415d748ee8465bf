"""The AXI4 burst reader (rtl/memory/axi_reader.py) against cocotbext-axi's AxiRamRead on Icarus
and Verilator (tb/axi_reader_tb.py), over data widths, burst caps and queue sizes, one of them
small enough that the credits hold bursts back."""

import json

import pytest

from gen.elaborate import verilog_of
from rtl.memory.axi_reader import AxiReader
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
    # (id, reader parameters, simulator)
    ("d64-b16", _params(32, 64, 16, 32, 4), "icarus"),
    ("d128-b32", _params(32, 128, 32, 64, 2), "verilator"),
    # a queue of one burst and one burst in flight: the credits hold every burst back
    ("d32-b4-tight", _params(20, 32, 4, 4, 1), "verilator"),
]


@pytest.mark.parametrize("name,params,simulator", CASES, ids=[c[0] for c in CASES])
def test_reader_against_axi_ram(name, params, simulator, tmp_path):
    path = tmp_path / "axi_reader.v"
    path.write_text(verilog_of(AxiReader(**params), "axi_reader", "generic"))
    env = {"DEFA_AXI": json.dumps(params), "DEFA_REQUESTS": "150"}
    outcome = build_and_test(
        [str(path)],
        "axi_reader",
        simulator,
        tmp_path / simulator,
        test_module="tb.axi_reader_tb",
        seed=11,
        env=env,
    )
    assert outcome[:2] == (1, 0), f"{name} (seed 11): see {outcome.run_dir}/test.log"


@pytest.mark.parametrize(
    "params,words",
    [
        (dict(data_bits=48), "data_bits=48 is not allowed"),
        (dict(data_bits=64, max_burst=1024), r"max_burst=1024 is out of range: allowed \[1, 256\]"),
        (dict(data_bits=256, max_burst=256), r"allowed \[1, 128\]"),
        (dict(max_burst=16, queue_depth=8), "queue_depth=8 is out of range: allowed >= max_burst"),
        (dict(outstanding=0), "outstanding=0"),
        (dict(addr_bits=8), r"addr_bits=8 is out of range: allowed \[12, 64\]"),
    ],
)
def test_reader_refuses_bad_parameters(params, words):
    with pytest.raises(ValueError, match=words):
        AxiReader(**params)
