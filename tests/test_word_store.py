"""The word store (``rtl/memory/word_store.py``) in the Amaranth simulator against a byte
memory behind a small AXI4 write responder with random stalls: every record lands at its
tag's slot, its words packed at ``k * word_bits``, the last beat's unused lanes zero; a record
whose tag is out of range writes nothing and pulses ``bad_tag``; a slot the memory answers
SLVERR sets ``error`` bit 0."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.memory.word_store import WordStore

BASE = 0x400


def _run(store, records, seed, *, tags, slverr_from=None, limit=20_000):
    """Offer ``records`` ((tag, words) pairs, words in order) with random gaps while the
    responder stalls at random; returns (memory dict byte -> value, bad_tag pulses, taken
    pulses, error, cycles until idle)."""
    rng = np.random.default_rng(seed)
    memory, bursts = {}, []
    counts = {"bad": 0, "taken": 0, "responses": []}
    beat_bytes = store.beat_bits // 8
    axi = store.axi

    async def feed(ctx):
        ctx.set(store.base, BASE)
        ctx.set(store.tags, tags)
        for tag, words in records:
            for k, word in enumerate(words):
                while rng.random() < 0.3:
                    ctx.set(store.words.valid, 0)
                    await ctx.tick()
                ctx.set(store.words.payload, {"tag": tag if k == 0 else 0, "data": int(word)})
                ctx.set(store.words.valid, 1)
                await ctx.tick().until(store.words.ready)
        ctx.set(store.words.valid, 0)

    async def responder(ctx):
        # AXI lets W run ahead of AW: beats gather into bursts (by wlast), matched to the
        # addresses in order
        pending_b, beats, done_bursts = [], [], []
        for _ in range(limit):
            ctx.set(axi.awready, int(rng.random() < 0.7))
            ctx.set(axi.wready, int(rng.random() < 0.7))
            ctx.set(axi.bvalid, int(bool(pending_b)))
            ctx.set(axi.bresp, pending_b[0] if pending_b else 0)
            await ctx.delay(1e-9)
            if ctx.get(axi.awvalid) and ctx.get(axi.awready):
                bursts.append((ctx.get(axi.awaddr), ctx.get(axi.awlen) + 1))
            if ctx.get(axi.wvalid) and ctx.get(axi.wready):
                beats.append(ctx.get(axi.wdata))
                if ctx.get(axi.wlast):
                    done_bursts.append(beats)
                    beats = []
            if ctx.get(axi.bvalid) and ctx.get(axi.bready):
                counts["responses"].append(pending_b.pop(0))
            while bursts and done_bursts:
                (addr, length), data = bursts.pop(0), done_bursts.pop(0)
                assert len(data) == length, f"seed {seed}: burst at {addr:#x}"
                for n, word in enumerate(data):
                    for i in range(beat_bytes):
                        memory[addr + n * beat_bytes + i] = (word >> (8 * i)) & 0xFF
                bad = slverr_from is not None and addr >= slverr_from
                pending_b.append(2 if bad else 0)
            await ctx.tick()

    async def watch(ctx):
        async for _, _, bad, taken in ctx.tick().sample(store.bad_tag, store.taken):
            counts["bad"] += bad
            counts["taken"] += taken

    sim = Simulator(store)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(responder, background=True)
    sim.add_process(watch)
    done = {}

    async def wait_idle(ctx):
        await ctx.tick().repeat(5)
        for cycle in range(limit):
            if (
                counts["taken"] == len(records)
                and ctx.get(store.idle)
                and not ctx.get(store.words.valid)
            ):
                done["cycles"], done["error"] = cycle, ctx.get(store.error)
                return
            await ctx.tick()
        raise AssertionError(f"seed {seed}: not idle after {limit} cycles")

    sim.add_testbench(wait_idle)
    sim.run()
    return memory, counts, done


def _slot(memory, store, tag):
    start = BASE + tag * store.slot_bytes
    return bytes(memory.get(start + i, None) for i in range(store.slot_bytes))


@pytest.mark.parametrize(
    "beat_bits,word_bits,slot_words",
    [(32, 16, 5), (64, 8, 19), (32, 32, 3)],
    ids=["two-per-beat-tail", "eight-per-beat-tail", "one-per-beat"],
)
def test_records_land_packed_at_their_slots(beat_bits, word_bits, slot_words):
    seed = 5
    rng = np.random.default_rng(seed)
    store = WordStore(
        addr_bits=16, beat_bits=beat_bits, word_bits=word_bits, slot_words=slot_words, tag_bits=4
    )
    tags = 9
    order = [int(t) for t in rng.permutation(tags)] + [12, 3]  # 12: out of range; 3 again
    records = [(t, rng.integers(0, 1 << word_bits, slot_words)) for t in order]
    memory, counts, done = _run(store, records, seed, tags=tags)
    assert counts["bad"] == 1 and counts["taken"] == len(records) and done["error"] == 0
    want = {}
    for t, words in records:
        if t < tags:
            value = sum(int(w) << (k * word_bits) for k, w in enumerate(words))
            want[t] = value.to_bytes(store.slot_bytes, "little")  # zero-padded to whole beats
    for t, slot in want.items():
        assert _slot(memory, store, t) == slot, f"seed {seed}: tag {t}"
    # nothing written past the tags' slots (the out-of-range record)
    end = BASE + tags * store.slot_bytes
    assert not [a for a in memory if a < BASE or a >= end], f"seed {seed}"


def test_slverr_sets_error():
    store = WordStore(addr_bits=16, beat_bits=32, word_bits=16, slot_words=4, tag_bits=3)
    records = [(t, [t, t + 1, t + 2, t + 3]) for t in range(4)]
    _, counts, done = _run(store, records, 9, tags=8, slverr_from=BASE + 2 * store.slot_bytes)
    assert done["error"] & 1 and counts["taken"] == 4


@pytest.mark.parametrize(
    "params,words",
    [
        (dict(beat_bits=32, word_bits=12), "word_bits=12 must divide the beat's 32 bits"),
        (dict(slot_words=0), r"slot_words=0 is out of range: allowed >= 1"),
    ],
)
def test_refuses_bad_parameters(params, words):
    args = dict(addr_bits=16, beat_bits=32, word_bits=16, slot_words=4, tag_bits=4) | params
    with pytest.raises(ValueError, match=words):
        WordStore(**args)
