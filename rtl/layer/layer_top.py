"""The fused layer from memory: one AXI4 master reads the projections' constants, the map x and
the queries, and writes each query's layer output to its slot; a run starts with a register
write and ends in ``done`` (DEFA's fused layer as a memory-mapped accelerator, whole maps on
chip).

Contract:

* The registers (``csr``, the map ``layer_csr_map``; ``rtl/layer/layer_registers.py``): the
  run's ``SHAPE<l>`` (each side in [1, ``max_shapes``]), ``TAU_P``, ``TAU_F``, ``CONST_BASE``,
  ``X_BASE``, ``QUERY_BASE``, ``OUT_BASE`` (byte addresses, multiples of the beat's bytes,
  ``word_bits // 8``) and ``QUERIES`` (in [1, 2**tag_bits]); ``CONTROL`` bit 1 starts a run
  with them (held while it is busy: a write then is refused).
* Memory: what ``LayerFetch`` reads (constants, map, queries: ``record_kinds``); query k's
  output (``d_model`` words of ``layer_out_bits``, channel 0 at bit 0) at ``OUT_BASE + k *
  out_bytes``, zero-padded to whole beats (``WordStore``: ``layer_out_bits`` divides the
  bus word, ``lanes * value_bits``).
* ``STATUS``: busy from the start until done; done (and ``irq``, high until the next start)
  once every query's output is written and answered. ``ERROR`` (cleared by a start that is
  taken), ``ERRORS`` in bit order: a read answered SLVERR/DECERR (the run still completes), a
  write answered so, the registers out of range (nothing run, done at once), a start while
  busy (ignored), a register write while busy (ignored).
* FWP commands are the core's (``fwp``, ``fwp_result``); its counters are registers
  (``CONTROL`` bit 0 clears them). A masked pixel skips the value projection and reads 0.

Timing: the checks, the pixel count (a product per level, summed one level a cycle) and the
fetch's start are registered steps; the output words are packed into beats as they come.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import side_bits
from rtl.layer.fused_layer import FusedLayer
from rtl.layer.layer_fetch import LayerFetch
from rtl.layer.layer_registers import LayerRegisters, layer_csr_addr_bits
from rtl.link.csr_bank import COUNTERS, csr_signature
from rtl.memory.word_store import WordStore
from rtl.top import axi_signature, join_axi

__all__ = ["ERRORS", "LayerTop"]

#: the ``error`` bits, in order
ERRORS = ("read", "write", "registers", "start_while_busy", "write_while_busy")


class LayerTop(wiring.Component):
    def __init__(self, cfg: DefaConfig, *, tag_bits: int = 16):
        if cfg.addr_bits > 32:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise ValueError(
                f"addr_bits={cfg.addr_bits} is out of range for the layer top: allowed [12, 32]"
            )
        if (cfg.lanes * cfg.value_bits) % cfg.layer_out_bits:
            self._MustUse__silence = True
            raise ValueError(
                f"layer_out_bits={cfg.layer_out_bits} must divide the bus word (lanes * "
                f"value_bits = {cfg.lanes * cfg.value_bits} bits) for the layer top"
            )
        self._cfg, self.tag_bits = cfg, tag_bits
        self.layer = FusedLayer(cfg, tag_bits=tag_bits)
        units = {
            "value": self.layer.loader.projection,
            "offsets": self.layer.queries_.offsets,
            "logits": self.layer.queries_.logits,
            "output": self.layer.output.projection,
        }
        self.pixel_bits = max(1, sum(h * w for h, w in cfg.max_shapes).bit_length())
        self.fetch = LayerFetch(cfg, units, tag_bits=tag_bits, pixel_bits=self.pixel_bits)
        self.word_bits = self.fetch.word_bits
        self.store = WordStore(
            addr_bits=cfg.addr_bits,
            beat_bits=self.word_bits,
            word_bits=cfg.layer_out_bits,
            slot_words=cfg.d_model,
            tag_bits=tag_bits,
            max_burst=cfg.max_burst,
        )
        self.out_bytes = self.store.slot_bytes
        super().__init__(
            {
                "mem": Out(axi_signature(cfg.addr_bits, self.word_bits)),
                "csr": In(csr_signature(layer_csr_addr_bits(cfg, ERRORS))),
                "irq": Out(1),
                "fwp": self.layer.signature.members["fwp"],
                "fwp_result": self.layer.signature.members["fwp_result"],
            }
        )

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        layer, fetch, store = self.layer, self.fetch, self.store
        m.submodules.layer = layer
        m.submodules.fetch = fetch
        m.submodules.store = store

        m.submodules.registers = regs = LayerRegisters(cfg, ERRORS)
        wiring.connect(m, wiring.flipped(self.csr), regs.bus)

        # -- passed on: FWP; the counters to the registers; the constants from the fetch -----
        wiring.connect(m, wiring.flipped(self.fwp), layer.fwp)
        wiring.connect(m, layer.fwp_result, wiring.flipped(self.fwp_result))
        m.d.comb += layer.clear.eq(regs.clear)
        for _, field, _ in COUNTERS:
            m.d.comb += getattr(regs, field).eq(getattr(layer, field))
        for kind in ("value", "offsets", "logits", "output"):
            for name in ("w_en", "w_addr", "w_data", "c_en", "c_addr", "c_data"):
                port = f"{kind}_{name}"
                m.d.comb += getattr(layer, port).eq(getattr(fetch, port))
        wiring.connect(m, fetch.x, layer.x)
        wiring.connect(m, fetch.refs, layer.refs)
        wiring.connect(m, fetch.queries_, layer.queries)
        m.d.comb += [layer.tau_p.eq(regs.tau_p), layer.tau_f.eq(regs.tau_f)]
        m.d.comb += fetch.loading.eq(layer.loading)

        # -- the one AXI4 master: reads are the fetch's, writes the store's ------------------
        join_axi(m, self.mem, fetch.axi, store.axi)

        # -- run control ---------------------------------------------------------------------
        lv = cfg.levels
        run_widths = Signal(data.ArrayLayout(unsigned(16), lv))  # as written (checked below)
        run_heights = Signal(data.ArrayLayout(unsigned(16), lv))
        busy, done = Signal(), Signal()
        error = Signal(len(ERRORS))
        m.d.comb += [
            regs.busy.eq(busy),
            regs.done.eq(done),
            regs.error.eq(error),
            self.irq.eq(done),
        ]
        for level in range(lv):  # (the checks below keep a run within side_bits)
            m.d.comb += [
                layer.widths[level].eq(run_widths[level]),
                layer.heights[level].eq(run_heights[level]),
            ]
        bases = (regs.const_base, regs.x_base, regs.query_base, regs.out_base)
        run_bases = [Signal(32, name=f"run_base{i}") for i in range(len(bases))]
        run_queries = Signal(self.tag_bits + 1)
        queries_too_many = Signal()  # the register holds more than the tags count
        m.d.comb += [
            fetch.const_base.eq(run_bases[0]),
            fetch.x_base.eq(run_bases[1]),
            fetch.query_base.eq(run_bases[2]),
            fetch.queries.eq(run_queries),
            store.base.eq(run_bases[3]),
            store.tags.eq(run_queries),
        ]
        # steps: 0 idle, 1 taken (check next), 2 checked, 3.. summing the pixels, then run
        taken = Signal()
        checked = Signal()
        bad = Signal()
        products = [Signal(self.pixel_bits, name=f"pixels{level}") for level in range(lv)]
        summing = Signal(range(lv + 1))
        pixels = Signal(self.pixel_bits)
        running = Signal()
        written = Signal.like(run_queries)
        accept = Signal()
        m.d.comb += accept.eq(regs.start & ~busy)
        m.d.sync += [
            error[0].eq(error[0] | fetch.error.any()),
            error[1].eq(error[1] | store.error.any()),
            error[4].eq(error[4] | regs.write_refused),
        ]
        m.d.comb += [fetch.clear.eq(accept), store.clear.eq(accept)]
        m.d.sync += taken.eq(0)  # a pulse (the start below sets it)
        with m.If(regs.start):
            with m.If(busy):
                m.d.sync += error[3].eq(1)
            with m.Else():
                m.d.sync += [
                    *[run_widths[lv_].eq(regs.widths[lv_]) for lv_ in range(lv)],
                    *[run_heights[lv_].eq(regs.heights[lv_]) for lv_ in range(lv)],
                    run_queries.eq(regs.queries),
                    queries_too_many.eq(regs.queries > (1 << self.tag_bits)),
                    *[r.eq(b) for r, b in zip(run_bases, bases, strict=True)],
                    taken.eq(1),
                    busy.eq(1),
                    done.eq(0),
                    error.eq(0),
                    written.eq(0),
                ]
        align = (self.word_bits // 8 - 1).bit_length()
        problems = [b[:align] != 0 for b in run_bases] if align else []
        # a base past the address range (the register is 32 bits)
        problems += [b[cfg.addr_bits :] != 0 for b in run_bases if cfg.addr_bits < 32]
        for level, (h_max, w_max) in enumerate(cfg.max_shapes):
            w, h = run_widths[level], run_heights[level]
            problems += [w == 0, h == 0, w > w_max, h > h_max]
        problems += [run_queries == 0, queries_too_many]
        m.d.sync += checked.eq(taken)
        with m.If(taken):
            m.d.sync += bad.eq(Cat(*problems).any())
            side = side_bits(cfg)  # (a run past max_shapes stops at the check)
            for level in range(lv):
                w, h = run_widths[level][:side], run_heights[level][:side]
                m.d.sync += products[level].eq(w * h)
        with m.If(checked):
            with m.If(bad):
                m.d.sync += [error[2].eq(1), busy.eq(0), done.eq(1)]
            with m.Else():
                m.d.sync += [summing.eq(1), pixels.eq(products[0])]
        with m.Elif(summing != 0):
            with m.If(summing == lv):
                m.d.sync += [summing.eq(0), running.eq(1)]
            with m.Else():
                m.d.sync += summing.eq(summing + 1)
                with m.Switch(summing):
                    for level in range(1, lv):
                        with m.Case(level):
                            m.d.sync += pixels.eq(pixels + products[level])
        m.d.comb += fetch.pixels.eq(pixels)
        go = Signal()
        m.d.sync += go.eq((summing == lv) & (summing != 0))
        m.d.comb += fetch.start.eq(go)

        # -- the outputs: each query's words packed into beats as they come (``WordStore``)
        out = layer.out
        m.d.comb += [
            store.words.valid.eq(out.valid),
            out.ready.eq(store.words.ready),
            store.words.payload.tag.eq(out.payload.tag),
            store.words.payload.data.eq(out.payload.data),
        ]
        with m.If(store.taken):
            m.d.sync += written.eq(written + 1)

        # -- the end: every output written and answered, the fetch done ----------------------
        settled = Signal()
        m.d.sync += settled.eq(running & ~go & (written == run_queries) & fetch.idle & store.idle)
        with m.If(settled & running):
            m.d.sync += [running.eq(0), busy.eq(0), done.eq(1)]
        return m
