"""Banked level buffer: one level's value map in four banks, so the 2x2 corners of any sample
are read in the same cycle without conflict.

Organization (documented for the loaders): pixel (x, y) lives in bank b = 2*(y mod 2) +
(x mod 2); each bank word holds ``lanes`` channels (``value_bits`` each) of one head; a pixel of
one head takes ``head_dim // lanes`` consecutive words (chunks); its word address in the bank is
``(((y >> 1) * ceil(W_max / 2) + (x >> 1)) * heads + head) * chunks + chunk``. The row pitch is
the buffer's ``W_max`` (a constant), so addressing needs no multiplier by the runtime width.
Capacity: ``max_shapes[level]`` pixels x ``d_model`` channels.

Read (``x0``, ``y0``, ``head``, ``chunk``): ``data[b]`` is bank b's word for the corner of the
2x2 window at (x0, y0) that falls in bank b. Latency 8: the corner's coordinates (registered),
whether it is inside and its row-major pixel index (registered), the word address into a
``BlockRam`` with three input stages (a fanout tree: one register, a copy per four groups
of DP16KD columns, a copy per group: a group is one column, or for a bank wider than four
columns a quarter of them), its address register and its output register, which on ECP5 is
the DP16KD's own, then a data register (placed by the multipliers it feeds: block RAM and
DSP rows alternate); one window per cycle, every cycle (no enable). A corner outside the buffer
reads address 0 of its bank: its data is defined but meaningless (its coefficient is 0).

Band (``cfg.window_rows``, the maps in external memory): the buffer holds ``R =
window_rows[level]`` rows of one head (the ``BandWindow`` in front of the sampler decides
which): map row y lives in ring row ``y mod R`` (R a power of two, so the bank is still
``2*(y mod 2) + (x mod 2)``), word address ``(((y mod R) >> 1) * pitch + (x >> 1)) * chunks +
chunk``; ``head`` is not part of it. Each bank has one more pixel after the ring, the patch
(address ``rows * pitch * chunks + chunk``): a read with ``patch`` set takes every corner
from there (the slow path puts a sample's four corners there, each in its bank). ``fill``
replaces ``load``: a word for ring row ``row`` (or the patch), always taken.

Load (stream): one word per cycle, always ready; a write outside ``max_shapes`` is dropped.
The word is written three cycles after acceptance (address, data and enable pass the three
input stages of each bank's ``BlockRam``). Writes and reads may overlap; a read of a word being
written returns the old word.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.core.layouts import chunk_bits, fill_layout, head_bits, load_layout
from rtl.lib.block_ram import BlockRam, dp16kd_columns
from rtl.lib.stages import copy_register

__all__ = ["LevelBuffer", "buffer_geometry"]


def buffer_geometry(cfg: DefaConfig, level: int, *, whole_map: bool = False) -> dict[str, int]:
    """Rows, pitch (words per bank row, pixels), chunks and depth (words) of each bank; with
    a band, ``patch``: the word address of the patch. ``whole_map``: the geometry of the
    largest map (``max_shapes[level]``, every head) even with a band (the FWP state's)."""
    if not 0 <= level < cfg.levels:
        raise ValueError(f"level={level} is out of range: allowed [0, {cfg.levels - 1}]")
    height, width = cfg.max_shapes[level]
    pitch = (width + 1) // 2
    chunks = cfg.cycles_per_point
    if cfg.streamed and not whole_map:
        rows = cfg.window_rows[level] // 2
        patch = rows * pitch * chunks
        return {
            "rows": rows,
            "pitch": pitch,
            "chunks": chunks,
            "depth": patch + chunks,
            "patch": patch,
        }
    rows = (height + 1) // 2
    return {
        "rows": rows,
        "pitch": pitch,
        "chunks": chunks,
        "depth": rows * pitch * cfg.heads * chunks,
    }


class LevelBuffer(wiring.Component):
    latency = 8

    def __init__(self, cfg: DefaConfig, level: int):
        try:
            geometry = buffer_geometry(cfg, level)
        except ValueError:
            self._MustUse__silence = True  # a refused component is not an unused one
            raise
        self._cfg = cfg
        self._level = level
        self.rows, self.pitch = geometry["rows"], geometry["pitch"]
        self.chunks, self.depth = geometry["chunks"], geometry["depth"]
        self.patch_base = geometry.get("patch")
        index = signed(cfg.coord_bits - cfg.coord_frac_bits)
        word = data.ArrayLayout(signed(cfg.value_bits), cfg.lanes)
        ports = {
            "x0": In(index),
            "y0": In(index),
            "head": In(unsigned(head_bits(cfg))),
            "chunk": In(unsigned(chunk_bits(cfg))),
            "data": Out(data.ArrayLayout(word, 4)),
        }
        if cfg.streamed:
            ports["patch"] = In(1)
            ports["fill"] = In(stream.Signature(fill_layout(cfg, level)))
        else:
            ports["load"] = In(stream.Signature(load_layout(cfg, level)))
        super().__init__(ports)

    def _address(self, row, col, head, chunk):
        cfg = self._cfg
        if cfg.streamed:
            return (row * self.pitch + col) * self.chunks + chunk
        return ((row * self.pitch + col) * cfg.heads + head) * self.chunks + chunk

    def elaborate(self, platform):
        cfg = self._cfg
        streamed = cfg.streamed
        height, width = cfg.max_shapes[self._level]
        m = Module()
        word = data.ArrayLayout(signed(cfg.value_bits), cfg.lanes)
        addr_bits = max(1, (self.depth - 1).bit_length())

        if streamed:
            fill = self.fill.payload
            m.d.comb += self.fill.ready.eq(1)
            load_x, load_y, load_data, load_valid = fill.x, fill.row, fill.data, self.fill.valid
            ring = self._address(fill.row >> 1, fill.x >> 1, 0, fill.chunk)
            load_addr = Mux(fill.patch, self.patch_base + fill.chunk, ring)
            load_ok = fill.x < width
        else:
            load = self.load.payload
            m.d.comb += self.load.ready.eq(1)
            load_x, load_y, load_data, load_valid = load.x, load.y, load.data, self.load.valid
            load_addr = self._address(load.y >> 1, load.x >> 1, load.head, load.chunk)
            load_ok = (load.x < width) & (load.y < height)

        # the last address stage copied per column, or for a bank of more than four columns
        # per group of columns, at most four copies (each copy's net spans its group)
        group = max(1, -(-dp16kd_columns(Shape.cast(word).width, self.depth) // 4))
        for b in range(4):
            bx, by = b & 1, b >> 1
            bank = BlockRam(word, self.depth, input_stages=3, group=group)
            m.submodules[f"bank{b}"] = bank
            # The write's address, data and enable are registered in the bank.
            m.d.comb += [
                bank.w_addr.eq(load_addr),
                bank.w_data.eq(load_data),
                bank.w_en.eq(load_valid & load_ok & (load_x[0] == bx) & (load_y[0] == by)),
            ]

            # The corner of the window in this bank: x = x0 + (bx xor x0[0]), same for y. Every
            # bank's registers are its own (kept by synthesis), next to its block RAMs.
            cx = copy_register(self.x0.shape(), name=f"cx{b}")
            cy = copy_register(self.y0.shape(), name=f"cy{b}")
            head = copy_register(self.head.shape(), name=f"head1_{b}")
            chunk = copy_register(self.chunk.shape(), name=f"chunk1_{b}")
            m.d.sync += [
                cx.eq(self.x0 + (self.x0[0] ^ bx)),
                cy.eq(self.y0 + (self.y0[0] ^ by)),
                head.eq(self.head),
                chunk.eq(self.chunk),
            ]
            # Then whether it is inside, and its pixel's index in the bank (row-major): with a
            # band the row is the ring row (the low bits of y), every row inside.
            inside = Signal(name=f"inside{b}")
            pixel = Signal(range(self.rows * self.pitch), name=f"pixel{b}")
            head2 = copy_register(head.shape(), name=f"head2_{b}")
            chunk2 = copy_register(chunk.shape(), name=f"chunk2_{b}")
            if streamed:
                ring_bits = cfg.window_rows[self._level].bit_length() - 1
                bank_row = cy[1:ring_bits]
                inside_y = 1
            else:
                bank_row = cy[1:]
                inside_y = (cy >= 0) & (cy < height)
            m.d.sync += [
                inside.eq((cx >= 0) & (cx < width) & inside_y),
                pixel.eq(bank_row * self.pitch + cx[1:]),
                head2.eq(head),
                chunk2.eq(chunk),
            ]
            read_addr = Signal(addr_bits, name=f"read_addr{b}")
            if streamed:
                patch = Signal(name=f"patch{b}")
                patch1 = copy_register(1, name=f"patch1_{b}")
                m.d.sync += [patch1.eq(self.patch), patch.eq(patch1)]
                with m.If(patch):
                    m.d.comb += read_addr.eq(self.patch_base + chunk2)
                with m.Elif(inside):
                    m.d.comb += read_addr.eq(pixel * self.chunks + chunk2)
                with m.Else():
                    m.d.comb += read_addr.eq(0)
            else:
                with m.If(inside):
                    m.d.comb += read_addr.eq((pixel * cfg.heads + head2) * self.chunks + chunk2)
                with m.Else():
                    m.d.comb += read_addr.eq(0)
            assert 2 + bank.latency + 1 == self.latency
            word_r = Signal(word, name=f"data{b}")
            m.d.sync += word_r.eq(bank.r_data)
            m.d.comb += [bank.r_addr.eq(read_addr), self.data[b].eq(word_r)]
        return m
