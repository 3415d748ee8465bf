"""``defa generate``: the top-level Verilog with manifest, C header, Python register map and
report; byte-identical for the same config (also across Python hash seeds); the register
bank behaves as its map says."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from amaranth.sim import Simulator
from needs import tool

from gen.config import preset
from rtl.link.csr_bank import CSR_ID, CsrBank, config_hash, csr_map

REPO = Path(__file__).resolve().parents[1]


def _generate(out: Path, hash_seed: str, *extra: str):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    cmd = [sys.executable, "-m", "gen.cli", "generate", "--preset", "tiny", "-o", str(out)]
    proc = subprocess.run([*cmd, *extra], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())


def test_same_config_same_bytes(tmp_path):
    a = _generate(tmp_path / "a", "1", "--split", "--set", "lanes=8")
    b = _generate(tmp_path / "b", "12345", "--split", "--set", "lanes=8")
    assert a == b and len(a) > 10
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    names = {str(p) for p in a}
    assert {"defa_top.v", "defa_top.json", "defa_top.h", "defa_top_csr.py", "defa_top.md"} <= names
    modules = [p for p in a if p.parts[0] == "modules"]
    text = (tmp_path / "a" / "defa_top.v").read_text()
    assert len(modules) == text.count("\nmodule ") + text.startswith("module ")


def test_header_module_and_report_agree_with_the_map(tmp_path):
    _generate(tmp_path, "0")
    cfg = preset("tiny")
    manifest = json.loads((tmp_path / "defa_top.json").read_text())
    regs = csr_map(cfg)
    # Python: the module's map is the map, its stream layouts the manifest's.
    spec = importlib.util.spec_from_file_location("defa_top_csr", tmp_path / "defa_top_csr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert {n: v["addr"] for n, v in module.CSR.items()} == {r.name: r.addr for r in regs}
    assert module.STREAMS["outputs"]["fields"] == manifest["ports"]["outputs"]["fields"]
    assert module.CONFIG_HASH == config_hash(cfg) and module.CONFIG == cfg.to_dict()
    report = (tmp_path / "defa_top.md").read_text()
    for r in regs:
        assert f"`{r.name}`" in report
    assert "| `jobs` | stream | in |" in report
    # C: the header compiles, and its values are the map's.
    # (last, so that the Python-side checks above run even where gcc is missing)
    gcc = tool("gcc")
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#include <stdio.h>\n#include "defa_top.h"\nint main(void) {\n'
        + "".join(f'  printf("%u\\n", (unsigned) DEFA_CSR_{r.name});\n' for r in regs)
        + '  printf("%u\\n", (unsigned) DEFA_JOBS_TAG_WIDTH);\n'
        + '  printf("%lu\\n", (unsigned long) DEFA_CONFIG_HASH);\n  return 0;\n}\n'
    )
    exe = tmp_path / "probe"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(probe)], check=True)
    values = [int(v) for v in subprocess.run([exe], capture_output=True, text=True).stdout.split()]
    tag_width = manifest["ports"]["jobs"]["fields"]["tag"]["width"]
    assert values == [r.addr for r in regs] + [tag_width, config_hash(cfg)]


def test_register_bank_reads_writes_and_resets():
    cfg = preset("tiny")
    dut = CsrBank(cfg)
    regs = {r.name: r for r in csr_map(cfg)}

    async def read(ctx, addr):
        ctx.set(dut.bus.addr, addr)
        ctx.set(dut.bus.r_stb, 1)
        await ctx.tick()
        ctx.set(dut.bus.r_stb, 0)
        return ctx.get(dut.bus.r_data)

    async def write(ctx, addr, value):
        ctx.set(dut.bus.addr, addr)
        ctx.set(dut.bus.w_data, value)
        ctx.set(dut.bus.w_stb, 1)
        await ctx.tick()
        ctx.set(dut.bus.w_stb, 0)

    async def bench(ctx):
        assert await read(ctx, regs["ID"].addr) == CSR_ID
        assert await read(ctx, regs["CONFIG_HASH"].addr) == config_hash(cfg)
        assert await read(ctx, regs["TAU_P"].addr) == cfg.tau_p_q  # reset values
        assert await read(ctx, regs["TAU_F"].addr) == cfg.tau_f_q
        h, w = cfg.max_shapes[1]
        assert await read(ctx, regs["SHAPE1"].addr) == h << 16 | w
        assert (ctx.get(dut.widths[1]), ctx.get(dut.heights[1])) == (w, h)
        await write(ctx, regs["SHAPE1"].addr, 3 << 16 | 4)
        await write(ctx, regs["TAU_P"].addr, 1234)
        await write(ctx, regs["ID"].addr, 5)  # read only: ignored
        await write(ctx, 31, 5)  # unmapped: ignored
        assert (ctx.get(dut.widths[1]), ctx.get(dut.heights[1])) == (4, 3)
        assert ctx.get(dut.tau_p) == 1234
        assert await read(ctx, regs["ID"].addr) == CSR_ID
        assert await read(ctx, 31) == 0
        ctx.set(dut.points_kept, 77)
        ctx.set(dut.stall[1], 9)
        assert await read(ctx, regs["POINTS_KEPT"].addr) == 77
        assert await read(ctx, regs["STALL1"].addr) == 9
        assert ctx.get(dut.clear) == 0
        await write(ctx, regs["CONTROL"].addr, 1)
        assert ctx.get(dut.clear) == 1  # one cycle
        await ctx.tick()
        assert ctx.get(dut.clear) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
