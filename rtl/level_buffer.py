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

Load (stream): one word per cycle, always ready; a write outside ``max_shapes`` is dropped.
The word is written three cycles after acceptance (address, data and enable pass the three
input stages of each bank's ``BlockRam``). Writes and reads may overlap; a read of a word being
written returns the old word.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.config import DefaConfig
from rtl.block_ram import BlockRam, dp16kd_columns
from rtl.layouts import chunk_bits, head_bits, load_layout
from rtl.stages import copy_register

__all__ = ["LevelBuffer", "buffer_geometry"]


def buffer_geometry(cfg: DefaConfig, level: int) -> dict[str, int]:
    """Rows, pitch (words per bank row, pixels), chunks and depth (words) of each bank."""
    if not 0 <= level < cfg.levels:
        raise ValueError(f"level={level} is out of range: allowed [0, {cfg.levels - 1}]")
    height, width = cfg.max_shapes[level]
    rows, pitch = (height + 1) // 2, (width + 1) // 2
    chunks = cfg.cycles_per_point
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
        index = signed(cfg.coord_bits - cfg.coord_frac_bits)
        word = data.ArrayLayout(signed(cfg.value_bits), cfg.lanes)
        super().__init__(
            {
                "x0": In(index),
                "y0": In(index),
                "head": In(unsigned(head_bits(cfg))),
                "chunk": In(unsigned(chunk_bits(cfg))),
                "data": Out(data.ArrayLayout(word, 4)),
                "load": In(stream.Signature(load_layout(cfg, level))),
            }
        )

    def _address(self, row, col, head, chunk):
        cfg = self._cfg
        return ((row * self.pitch + col) * cfg.heads + head) * self.chunks + chunk

    def elaborate(self, platform):
        cfg = self._cfg
        height, width = cfg.max_shapes[self._level]
        m = Module()
        word = data.ArrayLayout(signed(cfg.value_bits), cfg.lanes)
        addr_bits = max(1, (self.depth - 1).bit_length())

        load = self.load.payload
        m.d.comb += self.load.ready.eq(1)
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
                bank.w_data.eq(load.data),
                bank.w_en.eq(self.load.valid & load_ok & (load.x[0] == bx) & (load.y[0] == by)),
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
            # Then whether it is inside, and its pixel's index in the bank (row-major).
            inside = Signal(name=f"inside{b}")
            pixel = Signal(range(self.rows * self.pitch), name=f"pixel{b}")
            head2 = copy_register(head.shape(), name=f"head2_{b}")
            chunk2 = copy_register(chunk.shape(), name=f"chunk2_{b}")
            m.d.sync += [
                inside.eq((cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)),
                pixel.eq(cy[1:] * self.pitch + cx[1:]),
                head2.eq(head),
                chunk2.eq(chunk),
            ]
            read_addr = Signal(addr_bits, name=f"read_addr{b}")
            with m.If(inside):
                m.d.comb += read_addr.eq((pixel * cfg.heads + head2) * self.chunks + chunk2)
            with m.Else():
                m.d.comb += read_addr.eq(0)
            assert 2 + bank.latency + 1 == self.latency
            word_r = Signal(word, name=f"data{b}")
            m.d.sync += word_r.eq(bank.r_data)
            m.d.comb += [bank.r_addr.eq(read_addr), self.data[b].eq(word_r)]
        return m
