"""What every cocotb testbench here shares: the manifest, clock and reset, payload codecs,
seeded randomness, failure messages that name the seed, and the stream protocol checker
(``tb.protocol``) on every stream port of the block, started with the clock."""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, Timer

from gen.config import DefaConfig
from gen.payload import Payload
from tb.protocol import StreamMonitor, stream_names

__all__ = ["Harness", "load_manifest"]


def load_manifest() -> tuple[dict, DefaConfig]:
    manifest = json.loads(Path(os.environ["DEFA_MANIFEST"]).read_text())
    return manifest, DefaConfig.from_dict(manifest["config"])


class Harness:
    """Owns the clock and reset of a generated block; ``payload(port)`` decodes its streams.
    ``idle`` lists the input valid signals to drop on reset. ``monitor`` watches every stream
    of the manifest (the handshake rule; beats counted) from ``start()`` on."""

    def __init__(self, dut, manifest: dict, seed: int, idle: tuple[str, ...]):
        self.dut = dut
        self.manifest = manifest
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.cycles = 0
        self._idle = idle
        self.monitor = StreamMonitor(dut, stream_names(manifest), self.fail)
        #: register name -> word address (blocks with a register bus)
        self.registers = {r["name"]: r["addr"] for r in manifest.get("csr", [])}

    def payload(self, port: str) -> Payload:
        return Payload(self.manifest["ports"][port]["fields"])

    async def start(self):
        Clock(self.dut.clk, 10, unit="ns").start()
        self.monitor.start()
        for name in self._idle:
            getattr(self.dut, name).value = 0
        await FallingEdge(self.dut.clk)
        await self.reset()

    async def reset(self, cycles: int = 2):
        """Assert reset now (call it where signals may be written, e.g. after a falling
        edge) with every input stream idle, for ``cycles`` cycles."""
        self.dut.rst.value = 1
        for name in self._idle:
            getattr(self.dut, name).value = 0
        for _ in range(cycles):
            await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def write(self, name: str, value: int):
        """Write register ``name`` (the manifest's ``csr`` map) over the block's ``csr`` bus."""
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.csr__addr.value = self.registers[name]
        dut.csr__w_data.value = value & 0xFFFF_FFFF
        dut.csr__w_stb.value = 1
        await FallingEdge(dut.clk)
        dut.csr__w_stb.value = 0

    async def read(self, name: str) -> int:
        """Read register ``name``; an X or Z bit in the answer fails the test."""
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.csr__addr.value = self.registers[name]
        dut.csr__r_stb.value = 1
        await FallingEdge(dut.clk)
        dut.csr__r_stb.value = 0
        await ReadOnly()
        if not dut.csr__r_data.value.is_resolvable:
            self.fail(f"register {name} reads {dut.csr__r_data.value}")
        return int(dut.csr__r_data.value)

    def fail(self, message: str):
        run_seed = os.environ.get("COCOTB_RANDOM_SEED", "?")
        raise AssertionError(
            f"{message} (run seed {run_seed}, test seed {self.seed}, cycle {self.cycles})"
        )

    async def fwp_command(self, op: str, *, level=0, x=0, y=0, keep=0, limit=100_000):
        """One FWP command on the block's ``fwp`` stream (a core's, a top's); returns (the
        ``fwp_result`` fields or None, cycles until completion). A second result, a missing
        READ result or a command not done in ``limit`` cycles fails the test."""
        dut = self.dut
        await FallingEdge(dut.clk)
        ops = self.manifest["fwp_ops"]
        fields = {"op": ops[op], "level": level, "x": x, "y": y, "keep": keep}
        dut.fwp__payload.value = self.payload("fwp").pack(fields)
        dut.fwp__valid.value = 1
        dut.fwp_result__ready.value = 1
        result, cycles = None, 0
        while True:
            cycles += 1
            await ReadOnly()
            if dut.fwp_result__valid.value:
                if result is not None:
                    self.fail(f"FWP {fields}: a second result")
                word = dut.fwp_result__payload.value.to_unsigned()
                answer = self.payload("fwp_result")
                result = {k: answer.unpack(word, k) for k in ("importance", "keep")}
            if dut.fwp__ready.value:
                break
            if cycles >= limit:
                self.fail(f"hang: FWP command {fields} not done after {limit} cycles")
            await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.fwp__valid.value = 0
        if (op == "READ") != (result is not None):
            self.fail(f"FWP {fields}: result {result}")
        return result, cycles

    async def stream(
        self,
        words: list[int],
        *,
        source: str,
        sink: str,
        beats: int,
        on_beat,
        gap: float = 0.0,
        stall: float = 0.0,
        reset_at: int | None = None,
        timing: dict | None = None,
        patience: int = 40,
    ) -> None:
        """Offer ``words`` on stream ``source`` (valid gaps at rate ``gap``) while taking
        stream ``sink`` (ready low at rate ``stall``); every item yields ``beats`` output beats,
        in order, each handed to ``on_beat(word, item, beat)``. ``reset_at``: pulse reset that
        many cycles in (items in flight are dropped; the one on offer is offered again).
        ``timing`` receives the cycles of the first acceptance, first and last output beat and
        the last beat of the first item. A stream that has not ended after ``patience``
        cycles per output beat (and some) is a hang."""
        dut = self.dut
        in_valid, in_ready = getattr(dut, f"{source}__valid"), getattr(dut, f"{source}__ready")
        in_payload = getattr(dut, f"{source}__payload")
        out_valid, out_ready = getattr(dut, f"{sink}__valid"), getattr(dut, f"{sink}__ready")
        out_payload = getattr(dut, f"{sink}__payload")
        # a block whose sink queue takes its ready once per slice too (the sampler's
        # ``partials_ready_slices``, driven by the accumulator's copies in the core): every
        # copy equals ready
        copies = getattr(dut, f"{sink}_ready_slices", None)
        every = (1 << len(copies)) - 1 if copies is not None else 0
        n = len(words)
        pending: deque[tuple[int, int]] = deque()  # (item, beat) still to come, in order
        sent, taken, holding, start = 0, 0, False, self.cycles
        monitored = self.monitor.beats(source), self.monitor.beats(sink)
        driven_valid = driven_ready = None
        limit = start + patience * (n * beats + 50) + 1000
        rng = self.rng
        while sent < n or pending:
            await FallingEdge(dut.clk)
            self.cycles += 1
            if reset_at is not None and self.cycles - start == reset_at:
                await self.reset()
                await ReadOnly()
                if out_valid.value:
                    self.fail(f"{sink} valid right after reset")
                pending.clear()
                holding, driven_valid, driven_ready = False, None, None
                continue
            if not holding and sent < n and not (gap and rng.random() < gap):
                in_payload.value = words[sent]
                holding = True
            ready = not (stall and rng.random() < stall)
            # Write a control signal only when it changes: every write costs a simulator call.
            if holding != driven_valid:
                in_valid.value = driven_valid = holding
            if ready != driven_ready:
                out_ready.value = driven_ready = ready
                if copies is not None:
                    copies.value = every if ready else 0
            await ReadOnly()
            if holding and in_ready.value:
                if timing is not None:
                    timing.setdefault("first_in", self.cycles)
                pending.extend((sent, b) for b in range(beats))
                sent += 1
                holding = False
            if ready and out_valid.value:
                if not pending:
                    self.fail(f"unexpected beat on {sink}")
                item, beat = pending.popleft()
                taken += 1
                on_beat(out_payload.value.to_unsigned(), item, beat)
                if timing is not None:
                    timing.setdefault("first_out", self.cycles)
                    timing["last_out"] = self.cycles
                    if item == 0 and beat == beats - 1:
                        timing["first_item_done"] = self.cycles
            if self.cycles > limit:
                self.fail(
                    f"hang: {sent}/{n} accepted on {source}, {len(pending)} beats outstanding"
                )
        # The monitor's count of the same wires agrees (its sample of this cycle is done
        # 1 ns into the low half of the clock, before the next edge).
        await Timer(1, "ns")
        counted = (
            self.monitor.beats(source) - monitored[0],
            self.monitor.beats(sink) - monitored[1],
        )
        if counted != (sent, taken):
            self.fail(f"beats on {source}/{sink}: monitor {counted}, driver {(sent, taken)}")
