"""The host link: the UART PHY in loopback, and the host driver (fpga/host.py) talking to the
linked accelerator (HostLink + Top, tiny preset) in the Amaranth simulator, outputs and FWP
counters against the bit-true model."""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator
from link_sim import SimTransport

from fpga.host import Device, LinkError, Protocol
from gen.config import preset
from gen.elaborate import generate
from rtl.link.linked import Linked
from rtl.link.uart_rx import UartRx
from rtl.link.uart_tx import UartTx
from sim import bittrue
from tb import core_model


@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [int(b) for b in np.random.default_rng(divisor).integers(0, 256, 40)]
    got = []

    async def send(ctx):
        for i, byte in enumerate(sent):
            ctx.set(tx.data.payload, byte)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)
            await ctx.tick().repeat(1 + i % 3)  # gaps between bytes

    async def receive(ctx):
        ctx.set(rx.data.ready, 1)
        while len(got) < len(sent):
            await ctx.tick()
            if ctx.get(rx.data.valid):
                got.append(ctx.get(rx.data.payload))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(1e-6 * (len(sent) * 14 * divisor + 200))
    assert got == sent
    with pytest.raises(ValueError, match="divisor=1 is out of range"):
        UartTx(1)


@pytest.mark.slow
def test_driver_runs_a_workload_through_the_link(tmp_path):
    cfg = preset("tiny")
    manifest = json.loads(Path(generate(cfg, tmp_path, block="linked")["manifest"]).read_text())
    seed = 11
    rng = np.random.default_rng(seed)
    qc = core_model.random_quantized(cfg, rng, 3, shapes=[(3, 4), (2, 2)])
    want = bittrue.core(cfg, qc, tau_p_q=cfg.tau_p_q)
    dev = Device(SimTransport(Linked(cfg)), manifest)
    dev.check_identity()
    dev.fwp("CLEAR")
    dev.write_csr("CONTROL", 1)
    dev.configure(qc, tau_p=cfg.tau_p_q, tau_f=cfg.tau_f_q)
    out = dev.run(qc)
    np.testing.assert_array_equal(out, want.out, err_msg=f"seed {seed}")
    counters = dev.counters()
    assert counters["JOBS_OUT"] == counters["JOBS_IN"] == 3 * cfg.heads
    assert counters["POINTS_KEPT"] == want.points_kept
    assert counters["POINTS_PRUNED"] == want.points_pruned
    assert dev.read_csr("SHAPE1") == 2 << 16 | 2
    for x, y in ((0, 0), (3, 2), (1, 1)):
        got = dev.fwp("READ", level=0, x=x, y=y)
        assert got == {"importance": int(want.importance[y * 4 + x]), "keep": 1}


def test_protocol_refuses_bad_requests(tmp_path):
    manifest = json.loads(
        Path(generate(preset("tiny"), tmp_path, block="linked")["manifest"]).read_text()
    )
    p = Protocol(manifest)
    assert p.write_csr("TAU_P", 5) == bytes([1, 3, 5, 0, 0, 0])
    assert p.read_csr("CYCLES") == bytes([2, 0x10])
    with pytest.raises(ValueError, match="register 'NOPE' is not in the map"):
        p.read_csr("NOPE")
    with pytest.raises(ValueError, match="ID is read-only"):
        p.write_csr("ID", 1)
    with pytest.raises(ValueError, match="out of range"):
        p.write_csr("TAU_P", -1)
    with pytest.raises(ValueError, match="stream 'outputs' is not an input"):
        p.beat("outputs", {})
    with pytest.raises(LinkError, match="unexpected byte 0x55"):
        p.frame_size(0x55)
    # a map beyond the build's buffers (tiny: 9x11 and 5x6) is refused before anything is sent
    cfg = preset("tiny")
    qc = core_model.random_quantized(cfg, np.random.default_rng(1), 1, shapes=[(9, 11), (5, 6)])
    assert p.configure(qc, tau_p=0, tau_f=0)
    qc = core_model.random_quantized(
        cfg.replace(max_shapes=((9, 12), (5, 6))),
        np.random.default_rng(1),
        1,
        shapes=[(9, 12), (5, 6)],
    )
    with pytest.raises(
        ValueError,
        match=r"shapes\[0\]=\(9, 12\) does not fit the level buffer: "
        r"allowed height \[1, 9\], width \[1, 11\]",
    ):
        p.configure(qc, tau_p=0, tau_f=0)


def test_board_top_prepares_for_the_ulx3s(tmp_path):
    """The board design elaborates against the ULX3S pins, and its Yosys script carries the
    DSP pre-mapping and pins the core's multipliers and block RAMs, naming cells of the board
    design's hierarchy (no tools run here)."""
    import re

    import amaranth_boards.ulx3s as boards

    from fpga.ulx3s import BoardTop, board_script

    platform = boards.ULX3S_85F_Platform()
    plan = platform.prepare(
        BoardTop(preset("tiny")),
        name="defa_ulx3s",
        script_after_read=board_script(preset("tiny"), "defa_ulx3s", platform.device),
        synth_opts="-nodsp",
    )
    script = plan.files["defa_ulx3s.ys"]
    assert "setattr -set defa_dsp 1 *.sampler/t:$mul *.softmax/t:$mul" in script
    pinned = re.findall(r'setattr -set BEL "\S+" defa_ulx3s/(\S+)', script)
    assert len(pinned) > 132  # 132 multipliers and the block RAMs
    rtlil = next(text for name, text in plan.files.items() if name.endswith(".il"))
    for cell in pinned:
        module, instance = cell.rsplit(".", 1)
        assert f"module \\defa_ulx3s.{module}\n" in rtlil, cell
        assert f" {instance}\n" in rtlil or f"\\{instance}\n" in rtlil, cell
    assert "-nodsp" in script
    assert "LOCATE COMP" in plan.files["defa_ulx3s.lpf"]
    with pytest.raises(ValueError, match="baud=10000000 is out of range"):
        BoardTop(preset("tiny"), baud=10_000_000)
