"""The AXI4 burst reader and writer (rtl/memory/) against cocotbext-axi's AxiRamRead and
AxiRamWrite on Icarus and Verilator (tb/axi_reader_tb.py, tb/axi_writer_tb.py), over data
widths, burst caps and queue sizes; in the tight cases one burst is in flight at a time (the
reader's credits hold every burst back, the writer waits for each response)."""

import json

import pytest

from gen.elaborate import verilog_of
from rtl.memory.axi_reader import AxiReader
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
    # (id, master, parameters, simulator, seed, requests)
    ("reader-d64-b16", AxiReader, _params(32, 64, 16, 32, 4), "icarus", 11, 150),
    ("reader-d128-b32", AxiReader, _params(32, 128, 32, 64, 2), "verilator", 11, 150),
    ("reader-d32-b4-tight", AxiReader, _params(20, 32, 4, 4, 1), "verilator", 11, 150),
    ("writer-d64-b16", AxiWriter, _params(32, 64, 16, 16, 4), "icarus", 12, 80),
    ("writer-d128-b32", AxiWriter, _params(32, 128, 32, 8, 2), "verilator", 12, 80),
    ("writer-d32-b4-tight", AxiWriter, _params(24, 32, 4, 2, 1), "verilator", 12, 80),
]


@pytest.mark.parametrize(
    "name,master,params,simulator,seed,requests", CASES, ids=[c[0] for c in CASES]
)
def test_master_against_axi_ram(name, master, params, simulator, seed, requests, tmp_path):
    top = {AxiReader: "axi_reader", AxiWriter: "axi_writer"}[master]
    path = tmp_path / f"{top}.v"
    path.write_text(verilog_of(master(**params), top, "generic"))
    outcome = build_and_test(
        [str(path)],
        top,
        simulator,
        tmp_path / simulator,
        test_module=f"tb.{top}_tb",
        seed=seed,
        env={"DEFA_AXI": json.dumps(params), "DEFA_REQUESTS": str(requests)},
    )
    assert outcome[:2] == (1, 0), f"{name} (seed {seed}): see {outcome.run_dir}/test.log"


@pytest.mark.parametrize(
    "master,params,words",
    [
        (AxiReader, dict(data_bits=48), "data_bits=48 is not allowed"),
        (AxiReader, dict(max_burst=1024), r"max_burst=1024 is out of range: allowed \[1, 256\]"),
        (AxiReader, dict(data_bits=256, max_burst=256), r"allowed \[1, 128\]"),
        (AxiReader, dict(queue_depth=8), "queue_depth=8 is out of range: allowed >= max_burst"),
        (AxiReader, dict(outstanding=0), "outstanding=0"),
        (AxiReader, dict(addr_bits=8), r"addr_bits=8 is out of range: allowed \[12, 64\]"),
        (AxiWriter, dict(data_bits=24), "data_bits=24 is not allowed"),
        (
            AxiWriter,
            dict(data_bits=128, max_burst=512),
            r"max_burst=512 is out of range: allowed \[1, 256\]",
        ),
        (AxiWriter, dict(queue_depth=1), r"queue_depth=1 is out of range: allowed >= 2"),
        (AxiWriter, dict(outstanding=0), "outstanding=0"),
    ],
)
def test_masters_refuse_bad_parameters(master, params, words):
    with pytest.raises(ValueError, match=words):
        master(**params)
