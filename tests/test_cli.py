import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gen.cli import build_parser, main
from gen.config import DefaConfig, preset
from sim import perf
from sim import workload as wl
from tb import core_model

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "gen.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for word in ("config", "workload", "demo", "bench"):
        assert word in out.stdout


def test_workload_generate_and_check(tmp_path, capsys):
    path = tmp_path / "w.npz"
    assert (
        main(
            [
                "workload",
                "--preset",
                "tiny",
                "--kind",
                "decoder",
                "--queries",
                "12",
                "--seed",
                "5",
                "-o",
                str(path),
            ]
        )
        == 0
    )
    assert "12 queries" in capsys.readouterr().out
    assert main(["workload", "--check", str(path)]) == 0
    assert "decoder-12q-seed5" in capsys.readouterr().out
    path.write_bytes(b"not a zip")
    assert main(["workload", "--check", str(path)]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
    assert main(["workload", "--preset", "tiny", "--input", "512x512", "-o", str(path)]) == 2
    assert "does not fit the level buffer" in capsys.readouterr().err


def test_demo_reports_on_the_tiny_preset(capsys):
    # models only: the core RTL run is `defa bench core`'s (tests/test_tb_core.py runs it on
    # the fpga preset) and the maps-in-memory report `defa bench stream`'s (tested below)
    assert (
        main(["demo", "--preset", "tiny", "--json", "--no-rtl", "--no-stream", "--no-layer"]) == 0
    )
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{\n") :])
    assert report["rel_l2_bittrue_dense"] < 0.03
    assert 0.0 < report["pap"]["kept_fraction"] <= 1.0
    assert report["fwp"]["value_bytes_fwp"] <= report["fwp"]["value_bytes_dense"]


@pytest.mark.slow
def test_bench_golden_prints_figures(capsys):
    assert main(["bench", "golden", "--input", "128x160", "--repeat", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["seconds"]) == {"float_fp64", "bittrue", "torch_ms_deform_attn_fp32"}
    assert result["rel_l2"]["torch_fp32_vs_float"] < 1e-5
    assert result["rel_l2"]["bittrue_vs_float"] < 0.015
    assert main(["bench", "golden", "--repeat", "0"]) == 2


def test_bench_layer_prints_figures(capsys):
    """The fused layer's model figures on a small fpga input: MACs that add up, phases whose
    bounds are ordered, the samplers' and softmax's DSPs as synthesis recorded them, and the
    CPU measured."""
    args = ["bench", "layer", "--input", "256x256", "--decoder-queries", "50", "--repeat", "1"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cfg = preset("fpga")
    recorded = json.loads((REPO / "fpga" / "baselines.json").read_text())["presets"]["fpga"]
    dsps = result["dsps"]
    assert dsps["samplers"] + dsps["softmax"] == recorded["ecp5"]["dsp"]
    for kind in ("encoder", "decoder"):
        r = result["runs"][kind]
        value = r["macs"]["value"]
        assert value["done"] + value["skipped"] == r["pixels"] * cfg.d_model**2
        assert value["skipped"] == round(r["masked_fraction"] * r["pixels"]) * cfg.d_model**2
        assert r["macs"]["output"]["done"] == r["queries"] * cfg.d_model**2
        cycles = r["cycles"]
        names = ("constants", "value_projection", "query_projections", "sampling")
        phases = [cycles[k] for k in (*names, "output_projection")]
        assert cycles["sequential"] == sum(phases) > cycles["overlapped"] >= max(phases)
        # the layer top projects the kept pixels only (FWP skips the masked ones)
        kept = r["pixels"] - round(r["masked_fraction"] * r["pixels"])
        per_pixel = cfg.d_model**2 // cfg.proj_lanes
        assert kept * per_pixel < cycles["value_projection"] < (kept + 1) * per_pixel
        assert r["rel_l2"]["dense"] < 0.05 and r["cpu"]["seconds"] > 0
    assert main([*args, "--repeat", "0"]) == 2
    assert "repeat=0 is out of range" in capsys.readouterr().err


def test_generate_is_deterministic_and_lint_clean(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    sampler = ["generate", "--block", "sampler", "--preset", "tiny", "--set", "lanes=8"]
    assert main([*sampler, "-o", str(a), "--lint"]) == 0
    assert "clean" in capsys.readouterr().out
    assert main([*sampler, "-o", str(b)]) == 0
    for name in ("defa_sampler.v", "defa_sampler.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    manifest = json.loads((a / "defa_sampler.json").read_text())
    # the latency the cycle model states independently of the RTL
    assert manifest["latency"] == perf.sampler_latency(preset("tiny", lanes=8)) == 23
    assert manifest["cycles_per_point"] == 2
    assert manifest["ports"]["points"]["fields"]["prob"]["width"] == 13
    assert main(["generate", "--block", "sampler", "--level", "5", "-o", str(a)]) == 2
    assert "level=5 is out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse: the choices are listed
        main(["generate", "--block", "nope", "-o", str(a)])
    assert e.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_sampler_prints_figures(capsys):
    assert main(["bench", "sampler", "--points", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["simulators"]) == {"icarus", "verilator"}
    for figures in result["simulators"].values():
        assert figures["cycles_per_point"] == pytest.approx(1.0, abs=0.01)
        assert figures["latency"] == perf.sampler_latency(preset("tiny")) == 23
        assert figures["cycles_per_s"] > 0


@pytest.mark.slow
def test_bench_core_figures_come_from_the_rtl_counters(capsys, tmp_path):
    """`defa bench core` on the tiny preset: its cycles, kept points and per-level busy
    counts are the RTL's own counters (an independent `measure` run of the same workload and
    threshold agrees: the PAP run's), and utilization and the PAP ratio are computed from
    those."""
    assert main(["bench", "core", "--preset", "tiny", "--seed", "3", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "config used: d_model=32 heads=2 levels=2" in captured.err
    cfg = preset("tiny")
    w = wl.for_config(cfg, "encoder", seed=3)  # the bench's default: the largest that fits
    assert result["workload"] == w.describe()
    path = wl.save(w, tmp_path / "w.npz")
    pap = tmp_path / "pap.json"
    rtl = core_model.measure(cfg, "verilator", path, pap, tau_p_q=cfg.tau_p_q, seed=11)
    assert result["runs"]["pap"]["rtl"] == rtl
    for name in ("dense", "pap"):
        bench = result["runs"][name]
        rtl = bench["rtl"]
        assert bench["cycles"] == rtl["cycles"] and bench["busy_per_level"] == rtl["busy"]
        ideal = rtl["points_kept"] * cfg.cycles_per_point / cfg.levels
        assert bench["utilization"] == pytest.approx(ideal / rtl["cycles"], rel=1e-12)
        assert abs(bench["model_error"]) <= 0.02
    dense, pap = result["runs"]["dense"], result["runs"]["pap"]
    assert dense["kept_fraction"] == 1.0 and pap["kept_fraction"] < 1.0
    assert result["pruned_over_dense_cycles"] == pytest.approx(
        pap["rtl"]["cycles"] / dense["rtl"]["cycles"], rel=1e-12
    )
    assert set(result["meets"]) == {"utilization_dense", "utilization_pap", "pruned_over_dense"}
    assert main(["bench", "core", "--preset", "tiny", "--core-input", "512x512"]) == 2
    assert "does not fit" in capsys.readouterr().err


def _config_out(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_config_file_applies_on_top_of_the_preset(tmp_path, capsys):
    partial = tmp_path / "partial.json"
    partial.write_text('{"lanes": 4}')
    assert main(["config", "--preset", "tiny", "--config", str(partial)]) == 0
    out = _config_out(capsys)
    assert out.pop("preset") == "tiny"
    assert DefaConfig.from_dict(out) == preset("tiny", lanes=4)
    # A file written by `defa config` records its preset and round-trips without --preset.
    written = tmp_path / "written.json"
    assert main(["config", "--preset", "fpga", "--set", "lanes=4"]) == 0
    written.write_text(capsys.readouterr().out)
    assert main(["config", "--config", str(written)]) == 0
    assert capsys.readouterr().out == written.read_text()
    # --set applies after the file; the config used is printed on stderr.
    assert main(["config", "--config", str(written), "--set", "points=2"]) == 0
    captured = capsys.readouterr()
    assert DefaConfig.from_json(captured.out) == preset("fpga", lanes=4, points=2)
    assert 'preset fpga + {"points":2,"lanes":4}' in captured.err
    # A file recording one preset and a --preset naming another: refused, both named.
    assert main(["config", "--preset", "tiny", "--config", str(written)]) == 2
    err = capsys.readouterr().err
    assert "'fpga'" in err and "'tiny'" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"preset": "huge"}')
    assert main(["config", "--config", str(bad)]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


def test_every_config_command_honours_the_config_flags():
    """Each subcommand that builds a design takes --preset/--config/--set."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("config", "workload", "demo", "generate", "synth", "build", "sweep", "bench"):
        flags = {s for a in commands[name]._actions for s in a.option_strings}
        assert {"--preset", "--config", "--set"} <= flags, name
        assert "default" in commands[name].format_help().split("--preset PRESET")[-1][:400], name


def test_bench_golden_honours_the_config(capsys):
    args = ["bench", "golden", "--preset", "tiny", "--set", "points=3", "--input", "48x64"]
    assert main([*args, "--repeat", "1", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "d_model=32 heads=2 levels=2 points=3" in result["config"]
    assert result["samples"] == result["queries"] * 2 * 2 * 3
    assert "config used: d_model=32 heads=2 levels=2 points=3" in captured.err


def test_synth_record_refuses_a_changed_design(tmp_path, capsys):
    record = tmp_path / "baselines.json"
    for extra in (["--set", "lanes=4"], ["--config", str(tmp_path / "c.json")]):
        (tmp_path / "c.json").write_text('{"queue_depth": 8}')
        argv = ["synth", "--preset", "tiny", *extra, "--no-pnr", "--record", str(record)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--record" in err and "'tiny'" in err
    assert not record.exists()


def test_version_exit_codes_and_blocks(capsys):
    from gen.cli import BLOCK_HELP
    from gen.elaborate import BLOCKS

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"defa {version('defa')}"
    help_text = build_parser().format_help()
    for code in ("0  success", "1  failure", "2  bad input", "3  a tool is missing"):
        assert code in help_text
    assert set(BLOCK_HELP) == set(BLOCKS)
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in ("generate", "synth"):
        text = commands[command].format_help()
        for block in BLOCKS:
            assert f"{block}:" in text, (command, block)
    assert "3  a tool is missing" in commands["generate"].format_help()


def test_bench_stream_prints_traffic_against_compulsory(capsys):
    """`defa bench stream` on tiny at a small input: the traffic figures hold what they claim.
    With bands as tall as the maps, each head's pass fetches its maps exactly once (the
    encoder's queries touch every level) and nothing takes the slow path; compulsory never
    exceeds what is fetched or what fetching without reuse would cost; a hand-set curve is
    reported as asked; the decoder runs too."""
    cfg = preset("tiny")
    args = ["bench", "stream", "--preset", "tiny", "--input", "64x80", "--json"]
    assert main([*args, "--rows", "8,4", "--decoder-queries", "7"]) == 0
    result = json.loads(capsys.readouterr().out)
    shapes = wl.level_shapes((64, 80), wl.level_strides(2))
    assert [tuple(s) for s in shapes] == [(8, 10), (4, 5)]
    pixels = sum(int(h * w) for h, w in shapes)
    for kind in ("encoder", "decoder"):
        r = result["runs"][kind]
        v = r["values"]
        assert r["rows"] == [8, 4]
        whole = cfg.heads * pixels * cfg.head_dim  # every map once per head
        # (7 decoder queries may leave a head's pass without a touch on a level: not fetched)
        assert v["fetched"] == whole if kind == "encoder" else v["fetched"] <= whole
        assert v["slow"] == 0
        assert v["capacity"] == (8 * 10 + 4 * 5) * cfg.head_dim
        assert 0 < v["compulsory"] <= v["fetched"] and v["compulsory"] <= v["no_reuse"]
        assert r["cycles"]["pap"] <= r["cycles"]["dense"]
        assert "memories" in r and r["fmax_mhz"] > 0  # the recorded tiny preset: timed
        # the bands as built (powers of two: 8 and 4 rows, as tall as the maps): each head's
        # pass fetches each row of the encoder's maps once, no slow path; the memory side
        # only adds cycles to the compute-only model
        hw = r["hardware"]
        assert hw["window_rows"] == [8, 4]
        if kind == "encoder":
            assert hw["full"]["rows_fetched"] == [cfg.heads * 8, cfg.heads * 4]
            assert hw["full"]["slow_points"] == [0, 0]
        assert hw["full"]["cycles"] >= r["cycles"]["pap"]
        assert hw["ulx3s-sdram"]["cycles"] >= hw["full"]["cycles"]
        assert 0 < hw["full"]["utilization"] <= 1
        # bands as tall as the maps fetch every kept pixel of each head's maps once: FWP's
        # bytes are the kept pixels' (the mask from the bit-true model, as the bench says)
        if kind == "encoder":
            assert hw["full"]["value_bytes"] == whole
            for f in (hw["fwp"], *hw["fwp_curve"]):
                kept = round((1 - f["masked_fraction"]) * pixels)
                assert f["value_bytes"] == cfg.heads * kept * cfg.head_dim, f
            fractions = [hw["fwp"]["masked_fraction"]] + [
                c["masked_fraction"] for c in hw["fwp_curve"]
            ]
            assert fractions == sorted(fractions) and fractions[-1] > 0
    assert result["runs"]["decoder"]["queries"] == 7
    assert main(["bench", "stream", "--preset", "tiny", "--rtl-jobs", "-1"]) == 2
    assert "rtl_jobs=-1" in capsys.readouterr().err
    assert result["runs"]["encoder"]["queries"] == pixels  # one query per pixel
    # Bands lower than the maps: the curve's chosen points and a ratio of at least 1.
    assert main(["bench", "stream", "--preset", "tiny", "--input", "96x128", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["runs"]["encoder"]
    assert r["values"]["ratio"] >= 1.0
    assert [p["rows"] for p in r["curve"]["0"]][:3] == [6, 8, 10]
    assert main([*args, "--rows", "8"]) == 2
    assert "needs one band height per level" in capsys.readouterr().err
    assert main([*args, "--set", "lanes=8"]) == 0  # not the recorded design: no times
    assert "memories" not in json.loads(capsys.readouterr().out)["runs"]["encoder"]
