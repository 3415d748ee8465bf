"""The host's side of the fused layer from memory (``rtl/layer/layer_top.py``, its
``layer_top`` manifest's ``layer_memory`` entry): the memory images of a run (the projections'
constants, the map x, the queries), the registers to write, and the outputs read back.

    run = LayerRun(manifest)
    plan = run.plan(ql, result.x, result.query, result.core_inputs.ref_w, shapes, base=0)
    # write plan.regions into memory, plan.registers into the registers, CONTROL = 2 (start),
    # wait for irq or STATUS.done
    out = run.outputs(memory[plan.out_base:], queries)      # (Nq, d_model) output words

Every record is packed as its manifest layout (bit 0 at bit 0 of its first byte, little-endian
bytes) and zero-padded to whole beats; a projection's weight rows past ``d_model`` are 0.

``LayerDevice`` drives the board build (the ``layer_linked`` manifest: the layer with its
memory on chip behind the host link) over a byte transport: memory words, registers, a run.

    dev = LayerDevice(SerialTransport("/dev/ttyUSB0"), manifest)   # defa_layer_linked.json
    dev.check_identity()
    out = dev.run(plan, tau_p=cfg.tau_p_q, tau_f=cfg.tau_f_q)  # plan: LayerRun.plan's
    # out: (Nq, d_model) output words, read back from the on-chip memory
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fpga.host import Device, LinkError
from gen.payload import Payload

__all__ = ["LayerDevice", "LayerPlan", "LayerRun"]

#: the constants' projections in memory order, with ``sim.layer.QuantizedLayer``'s names
_PROJECTIONS = (
    ("value", "value"),
    ("offsets", "offset"),
    ("logits", "attention"),
    ("output", "output"),
)


@dataclass
class LayerPlan:
    """A run laid out: ``regions`` ((byte address, bytes) to write), the ``registers`` to write
    (register name -> value, ``layer_csr_map``'s names) and where the outputs go."""

    queries: int
    out_base: int = 0
    regions: list[tuple[int, bytes]] = field(default_factory=list)
    registers: dict = field(default_factory=dict)


class LayerRun:
    def __init__(self, manifest: dict):
        if "layer_memory" not in manifest:
            raise ValueError(
                "the manifest has no 'layer_memory' entry: LayerRun drives the layer_top block "
                "(defa generate --block layer_top)"
            )
        mem = manifest["layer_memory"]
        self.word_bytes = mem["word_bytes"]
        self.records = {
            name: (Payload(r["fields"]), r["beats"] * self.word_bytes)
            for name, r in mem["records"].items()
        }
        self.constants = [(c["kind"], c["count"]) for c in mem["constants"]]
        self.chunks, self.lanes = mem["chunks"], mem["proj_lanes"]
        self.out_bytes, self.out_bits = mem["out_bytes"], mem["out_bits"]
        self.errors = mem["errors"]
        self.tag_bits = manifest["tag_bits"]
        self.d_model = manifest["config"]["d_model"]

    def _pack(self, kind: str, fields: dict) -> bytes:
        payload, nbytes = self.records[kind]
        return payload.pack(fields).to_bytes(nbytes, "little")

    def _rows(self, kind: str, codes: np.ndarray) -> bytes:
        """Rows of activation codes as ``chunks`` records each of ``proj_lanes`` codes."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.d_model:
            raise ValueError(
                f"{kind} has shape {codes.shape}: rows of d_model={self.d_model} codes expected"
            )
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"{kind} holds {codes.dtype} values: integer codes expected")
        codes = codes.astype(np.int64)
        padded = np.pad(codes, ((0, 0), (0, self.chunks * self.lanes - codes.shape[1])))
        out = bytearray()
        payload, _ = self.records[kind]
        for row in padded:
            for k in range(self.chunks):
                out += self._pack(kind, _array(payload, row[k * self.lanes : (k + 1) * self.lanes]))
        return bytes(out)

    def constants_image(self, ql) -> bytes:
        """Every projection's weight words then channel constants (``sim.layer`` ``ql``)."""
        out = bytearray()
        counts = dict(self.constants)
        for kind, attr in _PROJECTIONS:
            proj = getattr(ql, attr)
            n_in, n_out = proj.weight.shape
            weight = np.pad(proj.weight, ((0, self.chunks * self.lanes - n_in), (0, 0)))
            payload, _ = self.records[f"{kind}_w"]
            if counts[f"{kind}_w"] != n_out * self.chunks or counts[f"{kind}_c"] != n_out:
                raise ValueError(
                    f"the {kind} projection has {n_out} outputs: the manifest's layer holds "
                    f"{counts[f'{kind}_c']} (a layer quantized for another config)"
                )
            for o in range(n_out):
                for k in range(self.chunks):
                    column = weight[k * self.lanes : (k + 1) * self.lanes, o]
                    out += self._pack(f"{kind}_w", _array(payload, column))
            for o in range(n_out):
                fields = {
                    "bias": int(proj.bias[o]),
                    "mult": int(proj.mult[o]),
                    "shift": int(proj.shift[o]),
                }
                out += self._pack(f"{kind}_c", fields)
        return bytes(out)

    def x_image(self, x: np.ndarray) -> bytes:
        """The map's pixels ((Nv, d_model) activation codes, the loader's order)."""
        return self._rows("x", x)

    def query_image(self, query: np.ndarray, ref_w: np.ndarray) -> bytes:
        """Per query its reference words ((Nq, L, 2): x, y per level) then its rows."""
        query, ref_w = np.asarray(query), np.asarray(ref_w)
        if query.ndim != 2 or ref_w.ndim != 3 or ref_w.shape[0] != query.shape[0]:
            raise ValueError(
                f"ref_w has shape {ref_w.shape}, query {query.shape}: (Nq, L, 2) and (Nq, "
                f"{self.d_model}) expected"
            )
        if not np.issubdtype(ref_w.dtype, np.integer):
            raise ValueError(f"ref_w holds {ref_w.dtype} values: integer reference words expected")
        payload, _ = self.records["ref"]
        out = bytearray()
        for q in range(query.shape[0]):
            fields = {
                **payload.pack_array("ref_x", ref_w[q, :, 0]),
                **payload.pack_array("ref_y", ref_w[q, :, 1]),
            }
            out += self._pack("ref", fields)
            out += self._rows("query", query[q : q + 1])
        return bytes(out)

    def _align(self, addr: int) -> int:
        return -(-addr // self.word_bytes) * self.word_bytes

    def plan(self, ql, x, query, ref_w, shapes, *, base: int = 0, gaps=(0, 0, 0)) -> LayerPlan:
        """Constants, map, queries and the output slots one after the other from ``base``
        (rounded up to a beat), ``gaps`` bytes between them."""
        nq = int(np.shape(query)[0])
        if not 1 <= nq <= 1 << self.tag_bits:
            raise ValueError(f"queries={nq} is out of range: allowed [1, {1 << self.tag_bits}]")
        nv = sum(int(h) * int(w) for h, w in shapes)
        if np.shape(x)[0] != nv:
            raise ValueError(f"x has {np.shape(x)[0]} pixels: the shapes have {nv}")
        plan = LayerPlan(queries=nq)
        addr = self._align(base)
        images = (self.constants_image(ql), self.x_image(x), self.query_image(query, ref_w))
        names = ("CONST_BASE", "X_BASE", "QUERY_BASE")
        for name, image, gap in zip(names, images, gaps, strict=True):
            plan.regions.append((addr, image))
            plan.registers[name] = addr
            addr = self._align(addr + len(image) + gap)
        plan.out_base = addr
        plan.registers["OUT_BASE"] = addr
        plan.registers["QUERIES"] = nq
        for level, (h, w) in enumerate(shapes):
            plan.registers[f"SHAPE{level}"] = int(h) << 16 | int(w)
        return plan

    def outputs(self, raw: bytes, queries: int) -> np.ndarray:
        """(queries, d_model) output words from the bytes at ``out_base``."""
        bits, mask = self.out_bits, (1 << self.out_bits) - 1
        rows = []
        for q in range(queries):
            word = int.from_bytes(raw[q * self.out_bytes : (q + 1) * self.out_bytes], "little")
            row = [(word >> (i * bits)) & mask for i in range(self.d_model)]
            rows.append([v - (1 << bits) if v >> (bits - 1) else v for v in row])
        return np.array(rows, dtype=np.int64).reshape(queries, self.d_model)

    def error_names(self, error: int) -> list[str]:
        """The names of the ``ERROR`` register's set bits."""
        return [name for i, name in enumerate(self.errors) if error >> i & 1]


class LayerDevice(Device):
    """The fused layer's board build over a byte transport (``fpga.host.Device``'s registers
    and FWP commands, plus the on-chip memory and whole runs)."""

    def __init__(self, transport, manifest: dict):
        if "ram" not in manifest or "link" not in manifest:
            raise ValueError(
                "the manifest has no 'ram' and 'link' entries: LayerDevice drives the "
                "layer_linked block (defa generate --block layer_linked)"
            )
        super().__init__(transport, manifest)
        self.layer = LayerRun(manifest)
        self.words, self.word_bytes = manifest["ram"]["words"], manifest["ram"]["word_bytes"]

    def _span(self, addr: int, nbytes: int) -> range:
        size = self.words * self.word_bytes
        if addr % self.word_bytes or nbytes % self.word_bytes:
            raise ValueError(
                f"memory access at 0x{addr:x} of {nbytes} bytes: address and length must be "
                f"multiples of the word ({self.word_bytes} bytes)"
            )
        if addr < 0 or nbytes < 0 or addr + nbytes > size:
            raise ValueError(
                f"memory access at 0x{addr:x} of {nbytes} bytes is out of range: allowed "
                f"[0, 0x{size:x}) (the build's {self.words} words of {self.word_bytes} bytes)"
            )
        return range(addr // self.word_bytes, (addr + nbytes) // self.word_bytes)

    def write_memory(self, addr: int, image: bytes) -> None:
        """Whole words of ``image`` from byte address ``addr``."""
        frames = bytearray()
        for i, word in enumerate(self._span(addr, len(image))):
            chunk = image[i * self.word_bytes : (i + 1) * self.word_bytes]
            data = int.from_bytes(chunk, "little")
            frames += self.protocol.beat("mem_write", {"addr": word, "data": data})
        self.transport.write(bytes(frames))

    def read_memory(self, addr: int, nbytes: int) -> bytes:
        """``nbytes`` (whole words) from byte address ``addr``."""
        words = self._span(addr, nbytes)
        self.transport.write(b"".join(self.protocol.beat("mem_read", {"addr": w}) for w in words))
        return b"".join(self._next("mem_data").to_bytes(self.word_bytes, "little") for _ in words)

    def run(self, plan: LayerPlan, *, tau_p: int, tau_f: int, polls: int = 10_000) -> np.ndarray:
        """Write the plan's images and registers, the thresholds, start, wait for done (at most
        ``polls`` reads of ``STATUS``), then read the outputs back: (Nq, d_model) words. A run
        that ends with ``ERROR`` set raises ``LinkError`` naming the bits."""
        if polls < 1:
            raise ValueError(f"polls={polls} is out of range: allowed >= 1")
        for addr, image in plan.regions:
            pad = -len(image) % self.word_bytes
            self.write_memory(addr, image + bytes(pad))
        for name, value in plan.registers.items():
            self.write_csr(name, value)
        self.write_csr("TAU_P", tau_p)
        self.write_csr("TAU_F", tau_f)
        self.write_csr("CONTROL", 2)
        for _ in range(polls):
            status = self.read_csr("STATUS")
            if status & 2:
                break
        else:
            raise LinkError(f"the run did not finish: STATUS 0x{status:x} after {polls} polls")
        if status & 4:
            names = self.layer.error_names(self.read_csr("ERROR"))
            raise LinkError(f"the run ended with errors: {', '.join(names)}")
        nbytes = plan.queries * self.layer.out_bytes
        raw = self.read_memory(plan.out_base, nbytes + -nbytes % self.word_bytes)
        return self.layer.outputs(raw, plan.queries)


def _array(payload: Payload, values) -> dict[str, int]:
    """A record that is one array (a row of codes, a weight word): its leaves by index."""
    names = sorted(payload.fields, key=int)
    return dict(zip(names, (int(v) for v in values), strict=True))
