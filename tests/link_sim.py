"""A byte transport into the Amaranth simulation of a linked design (``rtl/link/linked.py``,
``rtl/link/layer_linked.py``): the host drivers (``fpga/host.py``, ``fpga/layer_host.py``) run
against the simulated link as against a serial port."""

from __future__ import annotations

from collections import deque

from amaranth.sim import Simulator


class SimTransport:
    """A byte transport into a simulated design with byte streams ``rx`` and ``tx``; a read
    waits at most ``limit`` simulation steps for its bytes."""

    def __init__(self, dut, limit: int = 400_000):
        self.to_device: deque[int] = deque()
        self.from_device: deque[int] = deque()
        self.limit = limit
        self.sim = Simulator(dut)
        self.sim.add_clock(1e-6)

        async def pump(ctx):
            ctx.set(dut.tx.ready, 1)
            while True:
                offer = bool(self.to_device)
                if offer:
                    ctx.set(dut.rx.payload, self.to_device[0])
                ctx.set(dut.rx.valid, offer)
                taken = offer and ctx.get(dut.rx.ready)
                out = ctx.get(dut.tx.payload) if ctx.get(dut.tx.valid) else None
                await ctx.tick()
                if taken:
                    self.to_device.popleft()
                if out is not None:
                    self.from_device.append(out)

        self.sim.add_testbench(pump, background=True)

    def write(self, data: bytes) -> None:
        self.to_device.extend(data)

    def read(self, n: int) -> bytes:
        steps = 0
        while len(self.from_device) < n and steps < self.limit:
            self.sim.advance()
            steps += 1
        return bytes(self.from_device.popleft() for _ in range(min(n, len(self.from_device))))
