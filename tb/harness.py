"""What every cocotb testbench here shares: the manifest, clock and reset, payload codecs,
seeded randomness and failure messages that name the seed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from gen.config import DefaConfig
from tb.payload import Payload

__all__ = ["Harness", "load_manifest"]


def load_manifest() -> tuple[dict, DefaConfig]:
    manifest = json.loads(Path(os.environ["DEFA_MANIFEST"]).read_text())
    return manifest, DefaConfig.from_dict(manifest["config"])


class Harness:
    """Owns the clock and reset of a generated block; ``payload(port)`` decodes its streams.
    ``idle`` lists the input valid signals to drop on reset."""

    def __init__(self, dut, manifest: dict, seed: int, idle: tuple[str, ...]):
        self.dut = dut
        self.manifest = manifest
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.cycles = 0
        self._idle = idle

    def payload(self, port: str) -> Payload:
        return Payload(self.manifest["ports"][port]["fields"])

    async def start(self):
        Clock(self.dut.clk, 10, unit="ns").start()
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

    def fail(self, message: str):
        run_seed = os.environ.get("COCOTB_RANDOM_SEED", "?")
        raise AssertionError(
            f"{message} (run seed {run_seed}, test seed {self.seed}, cycle {self.cycles})"
        )
