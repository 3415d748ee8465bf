"""Our simulation models of the ECP5 cells a netlist holds by the ten thousand
(fpga/cells/trellis_ff.v, fpga/cells/ccu2c.v; tb/netlist.py uses them) against Yosys's own
models, side by side on Icarus: every parameter setting Yosys's model knows, random inputs
(unknowns included), compared with ``!==`` (an unknown must match an unknown) several times
between clock edges. Seeded; the seed is in the failure message."""

import itertools
import shutil
import subprocess

import numpy as np
import pytest

from tb.netlist import CELLS, yosys_cell

SEED = 11

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")


def _run(tmp_path, cell: str, bench: str) -> str:
    """Compile Yosys's ``cell`` (renamed Y_<cell>), ours and ``bench``; the simulation's output."""
    theirs = yosys_cell(cell).replace(f"module {cell}(", f"module Y_{cell}(")
    if cell == "CCU2C":  # its LUTs
        theirs += yosys_cell("LUT4") + yosys_cell("LUT2")
    (tmp_path / "theirs.v").write_text(theirs)
    (tmp_path / "bench.v").write_text(bench)
    ours = CELLS / f"{cell.lower()}.v"
    subprocess.run(
        ["iverilog", "-g2012", "-s", "bench", "-o", "sim.vvp", "theirs.v", str(ours), "bench.v"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    return subprocess.run(
        ["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout


@needs_icarus
def test_trellis_ff_matches_yosys_model(tmp_path):
    settings = list(
        itertools.product(
            ('"1"', '"0"', '"INV"', '"CE"'),  # CEMUX
            ('"CLK"', '"INV"'),  # CLKMUX
            ('"LSR"', '"INV"'),  # LSRMUX
            ('"LSR_OVER_CE"', '"ASYNC"'),  # SRMODE
            ('"RESET"', '"SET"'),  # REGSET
            ('"LSR"', '"PRLD"'),  # LSRMODE
        )
    )
    body = []
    for i, (ce, clk, lsr, sr, regset, lsrmode) in enumerate(settings):
        params = (
            f'.GSR("DISABLED"), .CEMUX({ce}), .CLKMUX({clk}), .LSRMUX({lsr}), '
            f".SRMODE({sr}), .REGSET({regset}), .LSRMODE({lsrmode})"
        )
        ports = f".CLK(clk), .LSR(lsr[{i % 4}]), .CE(ce[{i % 3}]), .DI(di[{i % 5}]), .M(m)"
        body.append(f"  Y_TRELLIS_FF #({params}) y{i} ({ports}, .Q(qy[{i}]));")
        body.append(f"  TRELLIS_FF #({params}) o{i} ({ports}, .Q(qo[{i}]));")
    n = len(settings)
    bench = f"""`timescale 1ns / 1ps
module bench;
  reg clk = 0;
  reg [3:0] lsr = 0;
  reg [2:0] ce = 0;
  reg [4:0] di = 0;
  reg m = 0;
  wire [{n - 1}:0] qy, qo;
{chr(10).join(body)}
  integer seed = {SEED}, t, errors = 0;
  task check; if (qy !== qo) begin
    errors = errors + 1;
    if (errors < 5) $display("MISMATCH t=%0t yosys=%b ours=%b", $time, qy, qo);
  end endtask
  initial begin
    #1 check;
    for (t = 0; t < 4000; t = t + 1) begin
      // inputs change away from the clock edges (unknowns now and then), the set/reset
      // also between them (asynchronous mode)
      #2 lsr = $random(seed); ce = $random(seed); di = $random(seed); m = $random(seed);
      if ($random(seed) % 16 == 0) di = 5'bx0x1x;
      if ($random(seed) % 32 == 0) ce = 3'bx1x;
      #1 check;
      #2 clk = ~clk;
      #1 check;
      #1 if ($random(seed) % 4 == 0) lsr = $random(seed);
      #1 check;
    end
    $display("DONE errors=%0d", errors);
    $finish;
  end
endmodule
"""
    out = _run(tmp_path, "TRELLIS_FF", bench)
    assert "DONE errors=0" in out, f"seed {SEED}: {out[-2000:]}"


@needs_icarus
def test_ccu2c_matches_yosys_model(tmp_path):
    rng = np.random.default_rng(SEED)
    body = []
    count = 0
    for inject0, inject1 in itertools.product(('"YES"', '"NO"'), repeat=2):
        # the INITs Yosys's adders use and random ones
        inits = [(0x96AA, 0x96AA), (0x6996, 0x6996)]
        inits += [tuple(int(v) for v in rng.integers(0, 1 << 16, 2)) for _ in range(6)]
        for init0, init1 in inits:
            params = (
                f".INIT0(16'h{init0:04x}), .INIT1(16'h{init1:04x}), "
                f".INJECT1_0({inject0}), .INJECT1_1({inject1})"
            )
            ports = ".CIN(x[8]), .A0(x[0]), .B0(x[1]), .C0(x[2]), .D0(x[3]), "
            ports += ".A1(x[4]), .B1(x[5]), .C1(x[6]), .D1(x[7])"
            for side, name in (("y", "Y_CCU2C"), ("o", "CCU2C")):
                outs = f".S0({side}[{3 * count}]), .S1({side}[{3 * count + 1}]), "
                outs += f".COUT({side}[{3 * count + 2}])"
                body.append(f"  {name} #({params}) {side}{count} ({ports}, {outs});")
            count += 1
    bench = f"""`timescale 1ns / 1ps
module bench;
  reg [8:0] x;
  wire [{3 * count - 1}:0] y, o;
{chr(10).join(body)}
  integer seed = {SEED}, i, k, errors = 0;
  task check; if (y !== o) begin
    errors = errors + 1;
    if (errors < 5) $display("MISMATCH x=%b yosys=%b ours=%b", x, y, o);
  end endtask
  initial begin
    for (i = 0; i < 512; i = i + 1) begin x = i; #1 check; end
    for (i = 0; i < 2000; i = i + 1) begin  // unknown inputs
      x = $random(seed);
      for (k = 0; k < 9; k = k + 1) if ($random(seed) % 4 == 0) x[k] = 1'bx;
      #1 check;
    end
    $display("DONE errors=%0d", errors);
    $finish;
  end
endmodule
"""
    out = _run(tmp_path, "CCU2C", bench)
    assert "DONE errors=0" in out, f"seed {SEED}: {out[-2000:]}"
