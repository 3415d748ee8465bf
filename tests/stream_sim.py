"""Amaranth-simulator helpers for the fused layer's blocks: load a projection's constants,
send beats into a stream, and run a block while taking its output stream's beats."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from rtl.layer.projection import CONSTANTS

#: cycles a run waits for its beats before the test fails (a hang is a failure)
LIMIT = 100_000


def constant_ports(dut, prefix: str = "") -> dict:
    """``dut``'s ports named ``prefix + name``, by the projection unit's names."""
    return {name: getattr(dut, prefix + name) for name in CONSTANTS}


async def load_constants(ctx, ports: dict, model, chunks: int, lanes: int):
    """Write a projection's weights (padded with 0 past n_in) and per-channel constants
    (``sim.layer.Projection`` ``model``) through ``ports``."""
    pad = chunks * lanes - model.weight.shape[0]
    weight = np.pad(model.weight, ((0, pad), (0, 0)))
    for o in range(weight.shape[1]):
        for k in range(chunks):
            ctx.set(ports["w_addr"], o * chunks + k)
            ctx.set(ports["w_data"], [int(v) for v in weight[k * lanes : (k + 1) * lanes, o]])
            ctx.set(ports["w_en"], 1)
            await ctx.tick()
        ctx.set(ports["w_en"], 0)
        ctx.set(ports["c_addr"], o)
        constants = {"bias": int(model.bias[o]), "mult": int(model.mult[o])}
        ctx.set(ports["c_data"], {**constants, "shift": int(model.shift[o])})
        ctx.set(ports["c_en"], 1)
        await ctx.tick()
        ctx.set(ports["c_en"], 0)


def beats_of(row, lanes: int) -> list[list[int]]:
    """A row of codes as a projection's input beats of ``lanes`` codes (the last padded
    with 0)."""
    row = np.pad(row, (0, -len(row) % lanes))
    return [[int(v) for v in row[k : k + lanes]] for k in range(0, len(row), lanes)]


async def send(ctx, stream, beats, gap=None):
    """Offer ``beats`` on ``stream`` in order; ``gap()`` true: a cycle without valid first."""
    for beat in beats:
        while gap is not None and gap():
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, beat)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


def collect(dut, feeds, stream, count: int, *, ready=None, record=None, now=None, limit=LIMIT):
    """Run ``dut`` with the testbenches ``feeds`` until ``count`` beats left ``stream``
    (``ready()`` decides its ready each cycle, default always); returns each beat's
    ``record(payload)`` and the cycle it left. ``now`` (a one-item list): the cycle count,
    for the feeds to read. Fails after ``limit`` cycles without them."""
    got, when = [], []
    now = now if now is not None else [0]

    async def drain(ctx):
        for _ in range(limit):
            if len(got) >= count:
                break
            ctx.set(stream.ready, True if ready is None else ready())
            await ctx.tick()
        else:
            raise AssertionError(f"{len(got)} of {count} beats after {limit} cycles")
        ctx.set(stream.ready, 0)

    async def monitor(ctx):
        async for _, _, valid, taken, payload in ctx.tick().sample(
            stream.valid, stream.ready, stream.payload
        ):
            now[0] += 1
            if valid and taken:
                got.append(payload if record is None else record(payload))
                when.append(now[0])
            if len(got) == count:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for feed in feeds:
        sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.add_process(monitor)
    sim.run()
    return got, when
