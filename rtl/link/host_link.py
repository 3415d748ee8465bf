"""Host link: a byte protocol (over a UART on a board) to a register bus and streams.
``fpga/host.py`` is the host side; ``HostLink.opcodes`` (the ``linked`` manifests' ``link``
entry) names the codes.

Host to device, one frame after another (multi-byte values little-endian):

* ``0x01 A D0 D1 D2 D3``: write register A (word address) with D;
* ``0x02 A``: read register A; the device answers ``0x82 D0 D1 D2 D3``;
* ``0x10 + p`` and ``ceil(width_p / 8)`` bytes: one beat on input stream p (in the order the
  link was given them; the core's link: 0 ``jobs``, 1 ``load``, 2 ``fwp``; the layer's: 0
  ``mem_write``, 1 ``mem_read``, 2 ``fwp``), the payload's bits from bit 0 up.

Device to host: ``0x82 ...`` (a register read), ``0x90 + q`` + payload bytes (one beat of
output stream q: the core's 0 ``outputs``, 1 ``fwp_result``; the layer's 0 ``mem_data``, 1
``fwp_result``). An unknown opcode byte is dropped and counted (``errors``).

Flow: the link waits while a stream it feeds is not ready (bytes wait in the UART/byte
stream, nothing is lost); output beats are sent as the byte stream takes them, a register
answer first.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.core import core_load_layout
from rtl.core.layouts import fwp_command_layout, fwp_result_layout, job_layout, output_layout
from rtl.link.csr_bank import csr_addr_bits, csr_signature

__all__ = ["HostLink", "core_link"]

WRITE, READ, REPLY, IN_BASE, OUT_BASE = 0x01, 0x02, 0x82, 0x10, 0x90


def _bytes(width: int) -> int:
    return -(-width // 8)


class HostLink(wiring.Component):
    """The link to a register bus of ``csr_bits`` address bits, beats into the ``inputs``
    streams and out of the ``outputs`` streams (name -> payload layout, in opcode order)."""

    def __init__(self, inputs: dict, outputs: dict, csr_bits: int):
        if csr_bits > 8:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(f"csr_bits={csr_bits} is out of range: allowed [1, 8] (one byte)")
        if len(inputs) > 16 or len(outputs) > 16:
            self._MustUse__silence = True
            raise ValueError(
                f"{len(inputs)} input and {len(outputs)} output streams: allowed 16 each"
            )
        self.inputs, self.outputs_ = dict(inputs), dict(outputs)
        self.opcodes = {
            "write": WRITE,
            "read": READ,
            "reply": REPLY,
            "in": {name: IN_BASE + i for i, name in enumerate(self.inputs)},
            "out": {name: OUT_BASE + i for i, name in enumerate(self.outputs_)},
        }
        members = {
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "csr": Out(csr_signature(csr_bits)),
            "errors": Out(16),
        }
        for name, layout in self.inputs.items():
            members[name] = Out(stream.Signature(layout))
        for name, layout in self.outputs_.items():
            members[name] = In(stream.Signature(layout))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        rx, tx, OPCODES = self.rx, self.tx, self.opcodes
        in_bytes = {n: _bytes(Shape.cast(lay).width) for n, lay in self.inputs.items()}
        out_bytes = {n: _bytes(Shape.cast(lay).width) for n, lay in self.outputs_.items()}
        rx_max = max(5, *in_bytes.values())
        rx_buf = Signal(8 * rx_max)
        rx_index = Signal(range(rx_max + 1))
        rx_need = Signal(range(rx_max + 1))
        opcode = Signal(8)

        # Register answers wait here for the transmitter.
        reply = Signal(32)
        reply_pending = Signal()

        for name in self.inputs:
            port = getattr(self, name)
            m.d.comb += port.payload.eq(rx_buf[: Shape.cast(self.inputs[name]).width])
        m.d.comb += [self.csr.addr.eq(rx_buf[:8]), self.csr.w_data.eq(rx_buf[8:40])]

        with m.FSM() as rx_fsm:
            with m.State("OPCODE"):
                with m.If(rx.valid):
                    m.d.sync += [opcode.eq(rx.payload), rx_index.eq(0)]
                    with m.Switch(rx.payload):
                        with m.Case(OPCODES["write"]):
                            m.d.sync += rx_need.eq(5)
                            m.next = "GATHER"
                        with m.Case(OPCODES["read"]):
                            m.d.sync += rx_need.eq(1)
                            m.next = "GATHER"
                        for name, code in OPCODES["in"].items():
                            with m.Case(code):
                                m.d.sync += rx_need.eq(in_bytes[name])
                                m.next = "GATHER"
                        with m.Default():
                            m.d.sync += self.errors.eq(self.errors + 1)
            with m.State("GATHER"):
                with m.If(rx.valid):
                    m.d.sync += [
                        rx_buf.word_select(rx_index, 8).eq(rx.payload),
                        rx_index.eq(rx_index + 1),
                    ]
                    with m.If(rx_index + 1 == rx_need):
                        m.next = "EXECUTE"
            with m.State("EXECUTE"):
                with m.Switch(opcode):
                    with m.Case(OPCODES["write"]):
                        m.d.comb += self.csr.w_stb.eq(1)
                        m.next = "OPCODE"
                    with m.Case(OPCODES["read"]):
                        with m.If(~reply_pending):
                            m.d.comb += self.csr.r_stb.eq(1)
                            m.next = "ANSWER"
                    for name, code in OPCODES["in"].items():
                        with m.Case(code):
                            port = getattr(self, name)
                            m.d.comb += port.valid.eq(1)
                            with m.If(port.ready):
                                m.next = "OPCODE"
            with m.State("ANSWER"):  # the register's value is on r_data now
                m.d.sync += [reply.eq(self.csr.r_data), reply_pending.eq(1)]
                m.next = "OPCODE"
        # (outside the FSM's case statement, so that they start defined in every simulator)
        m.d.comb += rx.ready.eq(rx_fsm.ongoing("OPCODE") | rx_fsm.ongoing("GATHER"))

        # Transmitter: a header byte, then the payload bytes, one frame at a time.
        tx_max = max(4, *out_bytes.values())
        tx_buf = Signal(8 * tx_max)
        tx_bytes = [tx_buf[8 * i : 8 * i + 8] for i in range(tx_max)]
        tx_header = Signal(8)
        tx_index = Signal(range(tx_max + 1))
        tx_count = Signal(range(tx_max + 1))
        with m.FSM() as tx_fsm:
            with m.State("IDLE"):
                with m.If(reply_pending):
                    m.d.sync += [
                        tx_header.eq(OPCODES["reply"]),
                        tx_buf.eq(reply),
                        tx_count.eq(4),
                        reply_pending.eq(0),
                    ]
                    m.next = "HEADER"
                for name, code in OPCODES["out"].items():
                    port = getattr(self, name)
                    with m.Elif(port.valid):
                        m.d.comb += port.ready.eq(1)
                        m.d.sync += [
                            tx_header.eq(code),
                            tx_buf.eq(Value.cast(port.payload)),
                            tx_count.eq(out_bytes[name]),
                        ]
                        m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += tx.payload.eq(tx_header)
                with m.If(tx.ready):
                    m.d.sync += tx_index.eq(0)
                    m.next = "BODY"
            with m.State("BODY"):
                # (a byte out of a register file: a select per byte, no shifter truncated to 8)
                m.d.comb += tx.payload.eq(Array(tx_bytes)[tx_index])
                with m.If(tx.ready):
                    m.d.sync += tx_index.eq(tx_index + 1)
                    with m.If(tx_index + 1 == tx_count):
                        m.next = "IDLE"
        m.d.comb += tx.valid.eq(tx_fsm.ongoing("HEADER") | tx_fsm.ongoing("BODY"))
        return m


def core_link(cfg: DefaConfig, *, tag_bits: int = 16) -> HostLink:
    """The accelerator's link (``rtl/top.py``'s ``Top`` with its maps on chip): jobs, value
    loads and FWP commands in; outputs and FWP answers out."""
    return HostLink(
        {
            "jobs": job_layout(cfg, tag_bits),
            "load": core_load_layout(cfg),
            "fwp": fwp_command_layout(cfg),
        },
        {"outputs": output_layout(cfg, tag_bits), "fwp_result": fwp_result_layout(cfg)},
        csr_addr_bits(cfg),
    )
