"""The stream protocol checker (tb/protocol.py) catches what it must and nothing else: a
probe Verilog module whose stream the cocotb test drives (tb/protocol_tb.py), on Icarus."""

import pytest

from tb.runner import build_and_test

PROBE = """
module probe(input clk, input rst, input s__valid, input [7:0] s__payload, output s__ready,
             input stall);
  assign s__ready = ~stall;
endmodule
"""


@pytest.mark.parametrize("simulator", ["icarus"])
def test_the_checker_catches_violations(simulator, tmp_path):
    source = tmp_path / "probe.v"
    source.write_text(PROBE)
    tests, failed = build_and_test(
        [str(source)], "probe", simulator, tmp_path / simulator, test_module="tb.protocol_tb"
    )
    assert (tests, failed) == (6, 0), f"see {tmp_path / simulator}/test-1.log"
