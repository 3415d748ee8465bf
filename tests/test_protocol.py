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
    outcome = build_and_test(
        [str(source)], "probe", simulator, tmp_path / simulator, test_module="tb.protocol_tb"
    )
    assert outcome[:2] == (6, 0), f"see {outcome.run_dir}/test.log"


def test_builds_are_reused_by_key(tmp_path):
    """build_and_test builds once per key: the same key reuses the build, a new key (a
    changed config or generator source) rebuilds; the runs' results are the same."""
    source = tmp_path / "probe.v"
    source.write_text(PROBE)
    build = tmp_path / "icarus"

    def once(key):
        return build_and_test(
            [str(source)],
            "probe",
            "icarus",
            build,
            test_module="tb.protocol_tb",
            testcase="legal_traffic_passes_and_counts",
            key=key,
        )

    first, again, changed = once("a"), once("a"), once("b")
    assert [r[:3] for r in (first, again, changed)] == [(1, 0, True), (1, 0, False), (1, 0, True)]
    assert len({r[3] for r in (first, again, changed)}) == 3  # a run directory each,
    assert not any(r.run_dir.exists() for r in (first, again, changed))  # removed: they passed


def test_the_source_key_follows_the_generator_sources(tmp_path, monkeypatch):
    from tb import runner

    for entry in ("rtl", "gen"):
        (tmp_path / entry).mkdir()
    (tmp_path / "rtl" / "block.py").write_text("x = 1\n")
    for name in ("elaborate.py", "config.py", "payload.py", "verilator.vlt", "cli.py"):
        (tmp_path / "gen" / name).write_text("")
    monkeypatch.setattr(runner, "REPO", tmp_path)

    def key():
        runner.source_key.cache_clear()
        return runner.source_key()

    base = key()
    (tmp_path / "gen" / "cli.py").write_text("# not a generator source\n")
    assert key() == base
    (tmp_path / "rtl" / "block.py").write_text("x = 2\n")
    changed = key()
    assert changed != base
    (tmp_path / "gen" / "verilator.vlt").write_text("// a waiver\n")
    assert key() not in (base, changed)
    runner.source_key.cache_clear()
