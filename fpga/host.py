"""Host driver for a defa accelerator behind its host link (``rtl/link/host_link.py``): registers,
value maps, jobs and FWP commands, over a serial port or any byte transport.

``Protocol`` turns requests into link frames and link bytes back into values; it does no I/O.
``Device`` drives a transport (``write(bytes)``, ``read(n) -> bytes``) with it:

    dev = Device(SerialTransport("/dev/ttyUSB0"), manifest)   # manifest: defa_linked.json
    dev.check_identity()
    outputs = dev.run(qc)      # a sim.bittrue.QuantizedCore -> (Nq, M, Dh) output words

``MemoryRun`` is the host's side of a top whose maps, jobs and outputs live in memory (a
config with ``window_rows``; its ``top`` manifest): it lays a run out in memory (the jobs in
band order), says which registers to write, and reads the outputs back by query.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gen.config import DefaConfig
from gen.payload import Payload
from sim.band import memory_layout

__all__ = [
    "Device",
    "LinkError",
    "MemoryRun",
    "Plan",
    "Protocol",
    "SerialTransport",
    "band_order",
    "job_fields",
    "map_images",
]


class LinkError(RuntimeError):
    """The device answered something the protocol does not allow, or not at all."""


def _nbytes(width: int) -> int:
    return -(-width // 8)


class Protocol:
    """Frames of the link protocol for the accelerator a manifest describes (the ``linked``
    block's manifest: its ``link`` entry has the opcodes and stream layouts)."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        link = manifest["link"]
        self.opcodes = link["opcodes"]
        self.streams = link["streams"]
        self.payloads = {name: Payload(s["fields"]) for name, s in self.streams.items()}
        self.csr = {r["name"]: r for r in manifest["csr"]}
        self.by_header = {code: name for name, code in self.opcodes["out"].items()}
        self.by_header[self.opcodes["reply"]] = "reply"

    def _address(self, name: str) -> int:
        if name not in self.csr:
            raise ValueError(f"register {name!r} is not in the map: allowed {sorted(self.csr)}")
        return self.csr[name]["addr"]

    def write_csr(self, name: str, value: int) -> bytes:
        reg = self.csr.get(name)
        if reg is not None and reg["access"] != "rw":
            raise ValueError(f"register {name} is read-only")
        if not 0 <= value < 1 << 32:
            raise ValueError(f"value {value} for {name} is out of range: allowed [0, 2**32)")
        return bytes([self.opcodes["write"], self._address(name)]) + value.to_bytes(4, "little")

    def read_csr(self, name: str) -> bytes:
        return bytes([self.opcodes["read"], self._address(name)])

    def beat(self, stream: str, fields: dict[str, int]) -> bytes:
        """One beat on input stream ``stream`` (``jobs``, ``load``, ``fwp``)."""
        if stream not in self.opcodes["in"]:
            raise ValueError(
                f"stream {stream!r} is not an input: allowed {list(self.opcodes['in'])}"
            )
        word = self.payloads[stream].pack(fields)
        size = _nbytes(self.streams[stream]["payload_width"])
        return bytes([self.opcodes["in"][stream]]) + word.to_bytes(size, "little")

    def frame_size(self, header: int) -> int:
        """Payload bytes after a device-to-host header byte."""
        name = self.by_header.get(header)
        if name is None:
            raise LinkError(f"unexpected byte 0x{header:02x} from the device")
        return 4 if name == "reply" else _nbytes(self.streams[name]["payload_width"])

    def decode(self, header: int, body: bytes) -> tuple[str, int]:
        """(kind, value): kind is ``reply``, ``outputs`` or ``fwp_result``."""
        return self.by_header[header], int.from_bytes(body, "little")

    # -- workloads ---------------------------------------------------------------------------

    def configure(self, qc, tau_p: int, tau_f: int) -> bytes:
        """Level shapes, thresholds and every value word of a quantized workload."""
        cfg_levels = len(qc.shapes)
        cfg = self.manifest["config"]
        # (the whole-map core keeps only the side bits of SHAPE: a map beyond its buffers
        # would be sampled wrongly, not refused)
        DefaConfig.from_dict(cfg).check_shapes(qc.shapes)
        out = bytearray()
        for level, (h, w) in enumerate(qc.shapes):
            out += self.write_csr(f"SHAPE{level}", int(h) << 16 | int(w))
        out += self.write_csr("TAU_P", tau_p) + self.write_csr("TAU_F", tau_f)
        lanes = cfg["lanes"]
        chunks = (cfg["d_model"] // cfg["heads"]) // lanes
        load = self.payloads["load"]
        for level in range(cfg_levels):
            h, w = (int(v) for v in qc.shapes[level])
            start = int(qc.level_start[level])
            for y in range(h):
                for x in range(w):
                    pixel = qc.value[start + y * w + x]
                    for head in range(cfg["heads"]):
                        for chunk in range(chunks):
                            words = pixel[head, chunk * lanes : (chunk + 1) * lanes]
                            fields = {"level": level, "x": x, "y": y, "head": head, "chunk": chunk}
                            fields.update(load.pack_array("data", words))
                            out += self.beat("load", fields)
        return bytes(out)

    def jobs(self, qc) -> bytes:
        """Every (query, head) job of the workload, query-major."""
        nq, heads = qc.probs.shape[:2]
        tag_mask = (1 << self.streams["jobs"]["fields"]["tag"]["width"]) - 1
        out = bytearray()
        for q in range(nq):
            for h in range(heads):
                out += self.beat("jobs", job_fields(qc, q, h, tag_mask))
        return bytes(out)

    def output_values(self, word: int) -> tuple[int, int, list[int]]:
        """(tag, head, values) of one ``outputs`` beat."""
        p = self.payloads["outputs"]
        return p.unpack(word, "tag"), p.unpack(word, "head"), p.unpack_array(word, "values")


class Device:
    """An accelerator over a byte transport."""

    def __init__(self, transport, manifest: dict):
        self.transport = transport
        self.protocol = Protocol(manifest)
        self.pending: list[tuple[str, int]] = []  # frames read but not yet asked for

    def _frame(self) -> tuple[str, int]:
        header = self.transport.read(1)
        if len(header) != 1:
            raise LinkError("no answer from the device (timeout)")
        size = self.protocol.frame_size(header[0])
        body = self.transport.read(size)
        if len(body) != size:
            raise LinkError(f"frame 0x{header[0]:02x} cut short: {len(body)} of {size} bytes")
        return self.protocol.decode(header[0], body)

    def _next(self, kind: str) -> int:
        for i, (k, value) in enumerate(self.pending):
            if k == kind:
                del self.pending[i]
                return value
        while True:
            k, value = self._frame()
            if k == kind:
                return value
            self.pending.append((k, value))

    def read_csr(self, name: str) -> int:
        self.transport.write(self.protocol.read_csr(name))
        return self._next("reply")

    def write_csr(self, name: str, value: int) -> None:
        self.transport.write(self.protocol.write_csr(name, value))

    def check_identity(self) -> None:
        ident = self.read_csr("ID")
        if ident != 0x44454641:
            raise LinkError(f"not a defa accelerator: ID register reads 0x{ident:08x}")
        want = int(self.protocol.manifest["config_hash"], 16)
        got = self.read_csr("CONFIG_HASH")
        if got != want:
            raise LinkError(
                f"the device was built from another config (hash 0x{got:08x}, expected "
                f"0x{want:08x}): regenerate the manifest or rebuild the bitstream"
            )

    def counters(self) -> dict[str, int]:
        names = [r for r, d in self.protocol.csr.items() if d["access"] == "ro" and r != "ID"]
        return {name: self.read_csr(name) for name in names if name != "CONFIG_HASH"}

    def configure(self, qc, *, tau_p: int, tau_f: int) -> None:
        self.transport.write(self.protocol.configure(qc, tau_p, tau_f))

    def run(self, qc) -> np.ndarray:
        """Send every job, collect every output: (Nq, M, Dh) output words, in job order."""
        nq, heads = qc.probs.shape[:2]
        head_dim = qc.value.shape[2]
        tag_mask = (1 << self.protocol.streams["jobs"]["fields"]["tag"]["width"]) - 1
        self.transport.write(self.protocol.jobs(qc))
        out = np.zeros((nq, heads, head_dim), dtype=np.int64)
        for q in range(nq):
            for h in range(heads):
                tag, head, values = self.protocol.output_values(self._next("outputs"))
                if (tag, head) != (q & tag_mask, h):
                    raise LinkError(f"output for query {q} head {h} came as ({tag}, {head})")
                out[q, h] = values
        return out

    def fwp(self, op: str, *, level: int = 0, x: int = 0, y: int = 0, keep: int = 0):
        """An FWP command; READ returns ``{"importance", "keep"}``."""
        ops = self.protocol.manifest["fwp_ops"]
        if op not in ops:
            raise ValueError(f"FWP op {op!r} is not known: allowed {sorted(ops)}")
        fields = {"op": ops[op], "level": level, "x": x, "y": y, "keep": keep}
        self.transport.write(self.protocol.beat("fwp", fields))
        if op != "READ":
            return None
        word = self._next("fwp_result")
        p = self.protocol.payloads["fwp_result"]
        return {"importance": p.unpack(word, "importance"), "keep": p.unpack(word, "keep")}


class SerialTransport:
    """A serial port (pyserial): ``SerialTransport("/dev/ttyUSB0", baud=115200)``."""

    def __init__(self, port: str, *, baud: int = 115200, timeout: float = 2.0):
        try:
            import serial
        except ImportError:
            raise LinkError(
                "pyserial is not installed: pip install pyserial (the PyPI package)"
            ) from None
        self.port = serial.Serial(port, baud, timeout=timeout)

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, n: int) -> bytes:
        return self.port.read(n)


def job_fields(qc, q: int, h: int, tag_mask: int) -> dict[str, int]:
    """Query ``q``, head ``h`` of a quantized workload as ``job_layout`` fields (manifest
    leaf names: ``off_x.1.3`` is level 1, point 3), its tag ``q & tag_mask``."""
    weights = "logit" if qc.logits is not None else "prob"
    source = qc.logits if qc.logits is not None else qc.probs
    levels, points = qc.probs.shape[2:4]
    fields = {"tag": q & tag_mask, "head": h}
    for level in range(levels):
        fields[f"ref_x.{level}"] = int(qc.ref_w[q, level, 0])
        fields[f"ref_y.{level}"] = int(qc.ref_w[q, level, 1])
        for p in range(points):
            fields[f"off_x.{level}.{p}"] = int(qc.offsets[q, h, level, p, 0])
            fields[f"off_y.{level}.{p}"] = int(qc.offsets[q, h, level, p, 1])
            fields[f"{weights}.{level}.{p}"] = int(source[q, h, level, p])
    return fields


def map_images(qc) -> list[bytes]:
    """Each level's map of a quantized workload as it lives in external memory
    (``sim.band.memory_layout``: ``[head][row][column][channel]``)."""
    images = []
    for level, (h, w) in enumerate(qc.shapes):
        start = int(qc.level_start[level])
        values = qc.value[start : start + int(h) * int(w)]
        images.append(memory_layout(values, int(h), int(w)))
    return images


def _kept_runs(addr: int, image: bytes, keep: np.ndarray, heads: int) -> list[tuple[int, bytes]]:
    """The regions of a map ``image`` at ``addr`` (``[head][row][column][channel]``) that hold
    kept pixels (``keep``, rows x columns): one per run of kept pixels in a head's row."""
    height, width = keep.shape
    pixel = len(image) // (heads * height * width)
    regions = []
    for head in range(heads):
        for row in range(height):
            cols = np.flatnonzero(keep[row])
            if not len(cols):
                continue
            breaks = np.flatnonzero(np.diff(cols) > 1)
            for first, last in zip(
                cols[np.r_[0, breaks + 1]], cols[np.r_[breaks, len(cols) - 1]], strict=True
            ):
                at = ((head * height + row) * width + int(first)) * pixel
                regions.append((addr + at, image[at : at + (int(last) - int(first) + 1) * pixel]))
    return regions


def band_order(ref_w: np.ndarray, heads: int) -> list[tuple[int, int]]:
    """The (query, head) jobs in the order a band window wants: head-major passes, each over
    the queries in raster order of their reference points on the finest level (``ref_w``:
    (Nq, L, 2) reference points in level-0 pixel units, as the jobs carry them). Outputs land
    in their query's slot whatever the order: the inverse is the slot layout."""
    raster = np.lexsort((ref_w[:, 0, 0], ref_w[:, 0, 1])).tolist()
    return [(q, h) for h in range(heads) for q in raster]


@dataclass
class Plan:
    """One run in memory: ``regions`` (byte address, bytes) to write before the start,
    ``registers`` (CSR name -> value) to write before ``CONTROL`` bit 1, and where the outputs
    land (``out_base``, ``queries`` slots)."""

    regions: list[tuple[int, bytes]] = field(default_factory=list)
    registers: dict[str, int] = field(default_factory=dict)
    out_base: int = 0
    queries: int = 0
    jobs: int = 0


class MemoryRun:
    """Memory layouts of a maps-in-memory top (its manifest's ``memory`` entry): jobs packed
    as ``job_layout`` at ``JOBS_BASE + k * job_bytes``; the output of (query, head) at
    ``OUT_BASE + (query * heads + head) * out_bytes``; maps ``[head][row][column][channel]``."""

    def __init__(self, manifest: dict):
        if "memory" not in manifest:
            raise ValueError(
                "the manifest has no 'memory' entry: MemoryRun drives the top of a config with "
                "window_rows (maps in memory); generate it with that config"
            )
        mem = manifest["memory"]
        self.word_bytes = mem["word_bytes"]
        self.job_bytes = mem["job_bytes"]
        self.out_bytes = mem["out_bytes"]
        self.job = Payload(mem["job_fields"])
        self.slot = Payload(mem["slot_fields"])
        self.errors = mem["errors"]
        self.tag_bits = manifest["tag_bits"]
        self.heads = manifest["config"]["heads"]

    def _align(self, addr: int) -> int:
        return -(-addr // self.word_bytes) * self.word_bytes

    def job_image(self, qc, order) -> bytes:
        """The jobs of ``order`` ((query, head) pairs), packed one after the other."""
        tag_mask = (1 << self.tag_bits) - 1
        out = bytearray()
        for q, h in order:
            fields = job_fields(qc, q, h, tag_mask)
            out += self.job.pack(fields).to_bytes(self.job_bytes, "little")
        return bytes(out)

    def plan(self, qc, *, base: int = 0, order=None, gaps=None, pixel_mask=None) -> Plan:
        """Maps, jobs and output slots one after the other from ``base`` (rounded up to a
        beat), ``gaps`` (bytes, one per region: maps..., jobs) between them; ``order``:
        the jobs (default ``band_order``). ``pixel_mask`` (every level's pixels, True: kept),
        FWP's mask as the accelerator holds it: a masked pixel is not stored (each map is
        written as runs of kept pixels, the masked ones' bytes left as they are: the
        accelerator never reads them)."""
        nq, heads = qc.probs.shape[:2]
        if nq > 1 << self.tag_bits:
            raise ValueError(
                f"the run has {nq} queries; tags are {self.tag_bits} bits: at most "
                f"{1 << self.tag_bits} queries per run (split the layer)"
            )
        if order is None:
            order = band_order(qc.ref_w, heads)
        levels = len(qc.shapes)
        gaps = list(gaps) if gaps is not None else [0] * (levels + 1)
        plan = Plan(queries=nq, jobs=len(order))
        addr = self._align(base)
        nv = int(sum(int(h) * int(w) for h, w in qc.shapes))
        if pixel_mask is not None and np.shape(pixel_mask) != (nv,):
            raise ValueError(f"pixel_mask has shape {np.shape(pixel_mask)}: the maps have {nv}")
        for level, ((h, w), image) in enumerate(zip(qc.shapes, map_images(qc), strict=True)):
            if pixel_mask is None:
                plan.regions.append((addr, image))
            else:
                start = int(qc.level_start[level])
                keep = np.asarray(pixel_mask[start : start + int(h) * int(w)], bool)
                plan.regions += _kept_runs(addr, image, keep.reshape(int(h), int(w)), heads)
            plan.registers[f"SHAPE{level}"] = int(h) << 16 | int(w)
            plan.registers[f"MAP_BASE{level}"] = addr
            addr = self._align(addr + len(image) + gaps[level])
        image = self.job_image(qc, order)
        plan.regions.append((addr, image))
        plan.registers["JOBS_BASE"] = addr
        plan.registers["JOB_COUNT"] = len(order)
        addr = self._align(addr + len(image) + gaps[levels])
        plan.out_base = addr
        plan.registers["OUT_BASE"] = addr
        plan.registers["QUERIES"] = nq
        return plan

    def outputs(self, raw: bytes, queries: int) -> np.ndarray:
        """(queries, heads, head_dim) output words from the bytes at ``OUT_BASE``."""
        slots = []
        for i in range(queries * self.heads):
            word = int.from_bytes(raw[i * self.out_bytes : (i + 1) * self.out_bytes], "little")
            slots.append(self.slot.unpack_array(word, "values"))
        return np.array(slots, dtype=np.int64).reshape(queries, self.heads, -1)

    def error_names(self, error: int) -> list[str]:
        """The names of the ``ERROR`` register's set bits."""
        return [name for i, name in enumerate(self.errors) if error >> i & 1]
