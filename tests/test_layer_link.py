"""The fused layer's board build in the Amaranth simulator: the on-chip AXI4 memory
(rtl/memory/axi_ram.py) on its own, then the host driver (fpga/layer_host.py's LayerDevice)
running a layer through the link (rtl/link/layer_linked.py, tiny), every output word against
the bit-true layer model."""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator
from link_sim import SimTransport

from fpga.layer_host import LayerDevice, LayerRun
from gen.config import preset
from gen.elaborate import generate
from rtl.link.layer_linked import LayerLinked
from rtl.memory.axi_ram import AxiRam
from sim import golden
from sim import layer as fused
from sim.workload import layer_inputs


def test_axi_ram_bursts_host_words_and_decode_errors():
    """Host words in, an AXI read burst of them (held by rready low), an AXI write burst with
    byte strobes, the host reading that back, and a burst past the memory answered DECERR."""
    dut = AxiRam(addr_bits=16, data_bits=32, words=8)
    bus = dut.bus
    seed = 3
    rng = np.random.default_rng(seed)
    words = [int(v) for v in rng.integers(0, 1 << 32, 8, dtype=np.uint64)]
    log = {}

    async def address(ctx, channel: str, word: int, beats: int):
        """A burst's address (``channel`` ``ar`` or ``aw``): word ``word``, ``beats`` beats."""
        ctx.set(getattr(bus, f"{channel}addr"), word * 4)
        ctx.set(getattr(bus, f"{channel}len"), beats - 1)
        ctx.set(getattr(bus, f"{channel}valid"), 1)
        await ctx.tick().until(getattr(bus, f"{channel}ready"))
        ctx.set(getattr(bus, f"{channel}valid"), 0)

    async def bench(ctx):
        for addr, word in enumerate(words):
            ctx.set(dut.write.payload.addr, addr)
            ctx.set(dut.write.payload.data, word)
            ctx.set(dut.write.valid, 1)
            await ctx.tick().until(dut.write.ready)
        ctx.set(dut.write.valid, 0)
        # a read burst of 4 words from word 2, rready low every other cycle
        await address(ctx, "ar", 2, 4)
        beats, cycle = [], 0
        while len(beats) < 4:
            ready = cycle % 2 == 0
            ctx.set(bus.rready, ready)
            valid, data = ctx.get(bus.rvalid), ctx.get(bus.rdata)
            last, resp = ctx.get(bus.rlast), ctx.get(bus.rresp)
            await ctx.tick()
            if valid and ready:
                beats.append((data, last, resp))
            cycle += 1
        ctx.set(bus.rready, 0)
        log["read"] = beats
        # a write burst of 2 words at word 6: the first with bytes 0 and 2 only
        await address(ctx, "aw", 6, 2)
        for i, (data, strb) in enumerate(((0x11223344, 0b0101), (0xCAFEF00D, 0b1111))):
            ctx.set(bus.wdata, data)
            ctx.set(bus.wstrb, strb)
            ctx.set(bus.wlast, i == 1)
            ctx.set(bus.wvalid, 1)
            await ctx.tick().until(bus.wready)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        (resp,) = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        log["bresp"] = resp
        ctx.set(bus.bready, 0)
        got = []
        ctx.set(dut.data.ready, 1)
        for addr in (6, 7):
            ctx.set(dut.read.payload.addr, addr)
            ctx.set(dut.read.valid, 1)
            await ctx.tick().until(dut.read.ready)
            ctx.set(dut.read.valid, 0)
            (data,) = await ctx.tick().sample(dut.data.payload).until(dut.data.valid)
            got.append(data)
        log["host"] = got
        # a burst over the end: words 7, 8 (past 8 words)
        await address(ctx, "ar", 7, 2)
        ctx.set(bus.rready, 1)
        tail = []
        while len(tail) < 2:
            data, resp, valid = ctx.get(bus.rdata), ctx.get(bus.rresp), ctx.get(bus.rvalid)
            await ctx.tick()
            if valid:
                tail.append((data, resp))
        log["tail"] = tail

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(1e-6 * 400)
    msg = f"seed {seed}"
    assert log["read"] == [(words[2 + i], int(i == 3), 0) for i in range(4)], msg
    old = words[6]
    first = (old & 0xFF00FF00) | (0x11223344 & 0x00FF00FF)
    assert log["bresp"] == 0 and log["host"] == [first, 0xCAFEF00D], msg
    assert log["tail"] == [(0xCAFEF00D, 0), (0, 0b11)], msg


def test_axi_ram_refuses_bad_sizes():
    with pytest.raises(ValueError, match="data_bits=24 must be 8 times a power of two"):
        AxiRam(addr_bits=16, data_bits=24, words=8)
    with pytest.raises(ValueError, match=r"words=70000 is out of range: allowed \[1, 16384\]"):
        AxiRam(addr_bits=16, data_bits=32, words=70_000)


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    cfg = preset("tiny")
    out = tmp_path_factory.mktemp("layer_linked")
    manifest = json.loads(Path(generate(cfg, out, block="layer_linked")["manifest"]).read_text())
    return cfg, manifest


@pytest.mark.slow
def test_driver_runs_a_layer_through_the_link(linked):
    """A decoder layer on a quarter-size map: images, registers and start over the link, the
    outputs read back from the on-chip memory, bit-exact; then FWP's counters agree."""
    cfg, manifest = linked
    seed = 21
    params = golden.LayerParams.random(cfg.d_model, cfg.heads, cfg.levels, cfg.points, seed)
    strides = tuple(8 << i for i in range(cfg.levels))

    def make(s):
        return layer_inputs(
            "decoder", input_hw=(32, 32), strides=strides, d_model=cfg.d_model, queries=2, seed=s
        )

    ql = fused.quantize_layer(cfg, params, fused.calibrate(cfg, params, [make(seed + 1)]))
    inputs = make(seed)
    model = fused.layer(cfg, ql, inputs, pap=True)
    run = LayerRun(manifest)
    plan = run.plan(ql, model.x, model.query, model.core_inputs.ref_w, inputs.shapes, base=64)
    dev = LayerDevice(SimTransport(LayerLinked(cfg), limit=4_000_000), manifest)
    dev.check_identity()
    dev.fwp("CLEAR")
    out = dev.run(plan, tau_p=cfg.tau_p_q, tau_f=cfg.tau_f_q)
    np.testing.assert_array_equal(out, model.out, err_msg=f"seed {seed}")
    counters = dev.counters()
    assert counters["JOBS_OUT"] == counters["JOBS_IN"] == 2 * cfg.heads, counters
    # the images read back as written
    addr, image = plan.regions[1]
    assert dev.read_memory(addr, 2 * dev.word_bytes) == image[: 2 * dev.word_bytes]


def test_layer_device_refuses_bad_requests(linked):
    cfg, manifest = linked
    dev = LayerDevice(None, manifest)  # (refused before any byte is sent)
    size = manifest["ram"]["words"] * manifest["ram"]["word_bytes"]
    with pytest.raises(ValueError, match="multiples of the word"):
        dev.write_memory(3, bytes(16))
    with pytest.raises(ValueError, match=rf"out of range: allowed \[0, 0x{size:x}\)"):
        dev.read_memory(size - 16, 32)
    with pytest.raises(ValueError, match=r"polls=0 is out of range: allowed >= 1"):
        dev.run(None, tau_p=0, tau_f=0, polls=0)
    with pytest.raises(ValueError, match="LayerDevice drives the layer_linked block"):
        LayerDevice(None, {k: v for k, v in manifest.items() if k != "ram"})


def test_board_top_carries_the_layer():
    """The layer's board design elaborates against the ULX3S pins (UART, three LEDs) with the
    layer, its memory and the link inside, and its Yosys script pre-maps the DSPs without
    pinning cells (no tools run here)."""
    import amaranth_boards.ulx3s as boards

    from fpga.ulx3s import BoardTop, board_script

    cfg = preset("tiny")
    platform = boards.ULX3S_85F_Platform()
    plan = platform.prepare(
        BoardTop(cfg, layer=True),
        name="defa_ulx3s",
        script_after_read=board_script(cfg, "defa_ulx3s", platform.device, layer=True),
        synth_opts="-nodsp",
    )
    script = plan.files["defa_ulx3s.ys"]
    assert "setattr -set defa_dsp 1" in script and "setattr -set BEL" not in script
    rtlil = next(text for name, text in plan.files.items() if name.endswith(".il"))
    for module in ("accel.ram", "accel.link", "accel.top.layer.core", "accel.top.fetch"):
        assert f"module \\defa_ulx3s.{module}\n" in rtlil, module
    lpf = plan.files["defa_ulx3s.lpf"]
    assert lpf.count("led_2") >= 1 and "uart_0__rx" in lpf


def test_board_build_refuses_too_many_multipliers():
    """tiny's layer wants 268 MULT18X18D (128 sampler products, 4 softmax, 4 projection units of
    32 lanes and 2 pieces): refused before the tools run, with the ways out; the projections
    on LUT multipliers fit (140)."""
    from fpga.ulx3s import check_dsps

    cfg = preset("tiny")
    with pytest.raises(ValueError, match=r"needs 268 MULT18X18D .* allowed <= 156 .*proj_dsp"):
        check_dsps(cfg, layer=True)
    check_dsps(cfg.replace(proj_dsp=False), layer=True)
    check_dsps(cfg)  # the core's build: 132
