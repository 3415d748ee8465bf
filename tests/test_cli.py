import json
import subprocess
import sys

import pytest

from gen.cli import main


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
    assert main(["demo", "--preset", "tiny", "--json"]) == 0  # includes the core RTL run
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


def test_generate_is_deterministic_and_lint_clean(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    sampler = ["generate", "--block", "sampler", "--preset", "tiny", "--set", "lanes=8"]
    assert main([*sampler, "-o", str(a), "--lint"]) == 0
    assert "clean" in capsys.readouterr().out
    assert main([*sampler, "-o", str(b)]) == 0
    for name in ("defa_sampler.v", "defa_sampler.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    manifest = json.loads((a / "defa_sampler.json").read_text())
    assert manifest["latency"] == 14 and manifest["cycles_per_point"] == 2
    assert manifest["ports"]["points"]["fields"]["prob"]["width"] == 13
    assert main(["generate", "--block", "sampler", "--level", "5", "-o", str(a)]) == 2
    assert "level=5 is out of range" in capsys.readouterr().err
    assert main(["generate", "--block", "nope", "-o", str(a)]) == 2


@pytest.mark.slow
def test_bench_sampler_prints_figures(capsys):
    assert main(["bench", "sampler", "--points", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["simulators"]) == {"icarus", "verilator"}
    for figures in result["simulators"].values():
        assert figures["cycles_per_point"] == pytest.approx(1.0, abs=0.01)
        assert figures["latency"] == 14 and figures["cycles_per_s"] > 0


@pytest.mark.slow
def test_bench_core_prints_figures(capsys):
    """A small scaled encoder through the detr-format core: dense utilization near 1, PAP
    cycles follow the kept fraction, the model agrees with the RTL counter."""
    assert main(["bench", "core", "--core-input", "64x96", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    dense, pap = result["runs"]["dense"], result["runs"]["pap"]
    assert dense["kept_fraction"] == 1.0 and pap["kept_fraction"] < 1.0
    for run in (dense, pap):
        assert abs(run["model_error"]) <= 0.02
        assert 0 < run["utilization"] <= 1.0
    assert result["pruned_over_dense_cycles"] <= pap["kept_fraction"] + 0.2
