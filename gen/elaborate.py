"""Elaboration of RTL blocks to Verilog, with a manifest that tells testbenches and integrators
how every port is laid out.

The manifest (JSON) lists, per port, its direction and kind (``stream`` with ``valid``/
``ready``/``payload``, or a plain ``wire``) and for payloads every leaf field as
``{"offset", "width", "signed"}`` with arrays flattened to ``name.index``. Verilog port names
follow Amaranth: ``points__valid``, ``points__payload``, ``clk``, ``rst``.
Same config, same bytes: nothing time- or path-dependent is written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

from gen.config import DefaConfig
from rtl.core.core import COUNTER_BITS, COUNTER_LAG, Core
from rtl.core.layouts import FwpOp, job_layout
from rtl.core.level_buffer import buffer_geometry
from rtl.core.sampler import Sampler
from rtl.core.softmax import softmax_latency
from rtl.layer.fused_layer import FusedLayer
from rtl.layer.layer_registers import layer_csr_addr_bits, layer_csr_map
from rtl.layer.layer_top import ERRORS as LAYER_ERRORS
from rtl.layer.layer_top import LayerTop
from rtl.layer.projection import ProjectionUnit
from rtl.lib.block_ram import VERILOG as BLOCK_RAM_VERILOG
from rtl.lib.block_ram import VERILOG_MODULE as BLOCK_RAM_MODULE
from rtl.link.csr_bank import config_hash, csr_addr_bits, csr_map
from rtl.link.layer_linked import LayerLinked
from rtl.link.linked import Linked
from rtl.memory.job_fetch import job_beats
from rtl.memory.output_store import out_beats, slot_layout
from rtl.memory.run_control import ERRORS
from rtl.memory.streamed_sampler import StreamedSampler
from rtl.top import Top

__all__ = ["BLOCKS", "TARGETS", "flatten_layout", "generate", "port_manifest", "verilog_of"]


def flatten_layout(shape, prefix: str = "", offset: int = 0) -> dict[str, dict]:
    """Leaf fields of a layout (or plain shape) as ``name -> {offset, width, signed}``."""
    if isinstance(shape, data.StructLayout):
        fields = {}
        for name, field in shape:
            fields.update(flatten_layout(field.shape, f"{prefix}{name}.", offset + field.offset))
        return fields
    if isinstance(shape, data.ArrayLayout):
        fields = {}
        elem_width = Shape.cast(shape.elem_shape).width
        for i in range(shape.length):
            fields.update(
                flatten_layout(shape.elem_shape, f"{prefix}{i}.", offset + i * elem_width)
            )
        return fields
    s = Shape.cast(shape)
    return {prefix.rstrip("."): {"offset": offset, "width": s.width, "signed": s.signed}}


def port_manifest(component: wiring.Component) -> dict[str, dict]:
    ports = {}
    for name, member in component.signature.members.items():
        direction = "in" if member.flow == wiring.In else "out"
        if member.is_signature and isinstance(member.signature, stream.Signature):
            payload = member.signature.members["payload"].shape
            ports[name] = {
                "kind": "stream",
                "direction": direction,
                "payload_width": Shape.cast(payload).width,
                "fields": flatten_layout(payload),
            }
        elif member.is_port:
            s = Shape.cast(member.shape)
            ports[name] = {
                "kind": "wire",
                "direction": direction,
                "width": s.width,
                "signed": s.signed,
            }
            if isinstance(member.shape, data.Layout):
                ports[name]["fields"] = flatten_layout(member.shape)
        elif member.is_signature:  # a plain bus (the register bus): its wires, flattened
            sub = port_manifest(member.signature.create())  # directions as this block sees them
            ports[name] = {"kind": "bus", "direction": direction, "members": sub}
        else:
            raise NotImplementedError(f"port {name}: only streams, buses and wires are described")
    return ports


def _sampler_extra(cfg: DefaConfig, level: int, top) -> dict:
    """What a one-level block's manifest adds: its latency and buffer geometry."""
    return {
        "level": level,
        "latency": top.latency,
        "cycles_per_point": cfg.cycles_per_point,
        "buffer": {
            "banks": 4,
            **buffer_geometry(cfg, level),
            "word_bits": cfg.lanes * cfg.value_bits,
        },
    }


def _sampler(cfg: DefaConfig, level: int):
    top = Sampler(cfg, level)
    return top, _sampler_extra(cfg, level, top)


def _streamed_sampler(cfg: DefaConfig, level: int):
    top = StreamedSampler(cfg, level)
    return top, _sampler_extra(cfg, level, top)


def _projection(cfg: DefaConfig, level: int):
    top = ProjectionUnit.of(cfg, "value")
    return top, {
        "lanes": top.lanes,
        "chunks": top.chunks,
        "latency": top.latency,
        "queue_depth": top.queue_depth,
    }


def _layer(cfg: DefaConfig, level: int):
    top = FusedLayer(cfg)
    return top, {
        **_core_extra(cfg, top.core.tag_bits),
        "projections": {
            name: {"lanes": unit.lanes, "chunks": unit.chunks, "latency": unit.latency}
            for name, unit in (
                ("value", top.loader.projection),
                ("offsets", top.queries_.offsets),
                ("logits", top.queries_.logits),
                ("output", top.output.projection),
            )
        },
    }


def _layer_top(cfg: DefaConfig, level: int):
    top = LayerTop(cfg)
    return top, _layer_top_extra(cfg, top)


def _layer_top_extra(cfg: DefaConfig, top: LayerTop) -> dict:
    fetch = top.fetch
    return {
        **_core_extra(cfg, top.tag_bits),
        "layer_memory": {
            "word_bytes": top.word_bits // 8,
            "records": {
                k.name: {"beats": k.beats, "fields": flatten_layout(k.layout)} for k in fetch.kinds
            },
            "constants": [
                {"kind": k.name, "count": n}
                for k, n in zip(fetch.kinds, fetch.const_counts, strict=False)
            ],
            "chunks": fetch.chunks,
            "proj_lanes": cfg.proj_lanes,
            "out_bytes": top.out_bytes,
            "out_bits": cfg.layer_out_bits,
            "errors": list(LAYER_ERRORS),
        },
        "config_hash": f"{config_hash(cfg):08x}",
        "csr": [dataclasses.asdict(r) for r in layer_csr_map(cfg, LAYER_ERRORS)],
        "csr_addr_bits": layer_csr_addr_bits(cfg, LAYER_ERRORS),
    }


def _core(cfg: DefaConfig, level: int):
    top = Core(cfg)
    return top, _core_extra(cfg, top.tag_bits)


def _core_extra(cfg: DefaConfig, tag_bits: int) -> dict:
    return {
        "tag_bits": tag_bits,
        "counter_bits": COUNTER_BITS,
        "counter_lag": COUNTER_LAG,
        "sampler_latency": Sampler.latency_of(cfg),
        "cycles_per_point": cfg.cycles_per_point,
        "buffers": [
            {"level": lv, "banks": 4, **buffer_geometry(cfg, lv)} for lv in range(cfg.levels)
        ],
        "fwp_ops": {op.name: op.value for op in FwpOp},
    }


def _top_extra(cfg: DefaConfig, tag_bits: int) -> dict:
    return {
        **_core_extra(cfg, tag_bits),
        "softmax_latency": softmax_latency(cfg) if cfg.softmax else 0,
        "config_hash": f"{config_hash(cfg):08x}",
        "csr": [dataclasses.asdict(r) for r in csr_map(cfg)],
        "csr_addr_bits": csr_addr_bits(cfg),
    }


def _top(cfg: DefaConfig, level: int):
    top = Top(cfg)
    extra = _top_extra(cfg, top.tag_bits)
    if cfg.streamed:
        extra["memory"] = _memory_extra(cfg, top.tag_bits)
    return top, extra


def _memory_extra(cfg: DefaConfig, tag_bits: int) -> dict:
    """How a run lays out its jobs and outputs in memory (``fpga.host.MemoryRun`` reads it)."""
    return {
        "word_bytes": cfg.lanes * cfg.value_bits // 8,
        "job_bytes": job_beats(cfg, tag_bits) * cfg.lanes * cfg.value_bits // 8,
        "job_fields": flatten_layout(job_layout(cfg, tag_bits)),
        "out_bytes": out_beats(cfg) * cfg.lanes * cfg.value_bits // 8,
        "slot_fields": flatten_layout(slot_layout(cfg)),
        "errors": [name for name, _ in ERRORS],
    }


def _link_extra(link) -> dict:
    """The link's opcodes and stream layouts (``fpga.host.Protocol`` reads them)."""
    layouts = {**link.inputs, **link.outputs_}
    return {
        "opcodes": link.opcodes,
        "streams": {
            name: {"payload_width": Shape.cast(lay).width, "fields": flatten_layout(lay)}
            for name, lay in layouts.items()
        },
    }


def _linked(cfg: DefaConfig, level: int):
    top = Linked(cfg)
    return top, {**_top_extra(cfg, top.tag_bits), "link": _link_extra(top.link)}


def _layer_linked(cfg: DefaConfig, level: int):
    top = LayerLinked(cfg)
    return top, {
        **_layer_top_extra(cfg, top.top),
        "link": _link_extra(top.link),
        "ram": {"words": top.ram.words, "word_bytes": top.ram.data_bits // 8},
    }


BLOCKS = {
    "top": _top,
    "core": _core,
    "sampler": _sampler,
    "streamed_sampler": _streamed_sampler,
    "linked": _linked,
    "layer_linked": _layer_linked,
    "projection": _projection,
    "layer": _layer,
    "layer_top": _layer_top,
}


#: what ``generate(..., target=...)`` elaborates for: ``"generic"`` (portable Verilog, what
#: the simulations run) or ``"ecp5"`` (Lattice ECP5 primitives where a block has them:
#: MULT18X18D with its registers; the same behaviour and latency, see rtl/lib/multiplier.py)
TARGETS = {"generic": SimpleNamespace(family="generic"), "ecp5": SimpleNamespace(family="ecp5")}


def verilog_of(top, name: str, target: str = "generic") -> str:
    """The Verilog of elaboratable ``top`` as module ``name``, elaborated for ``target`` (for
    ``generic``, with the Verilog modules its blocks instantiate, ``rtl.lib.block_ram``'s)."""
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not known: allowed {sorted(TARGETS)}")
    text = verilog.convert(top, name=name, emit_src=False, platform=TARGETS[target])
    if f"{BLOCK_RAM_MODULE} #(" in text:  # (its instances always carry their parameters)
        text += "\n" + BLOCK_RAM_VERILOG
    return text


def generate(
    cfg: DefaConfig,
    out_dir: str | Path,
    *,
    block: str = "sampler",
    level: int = 0,
    target: str = "generic",
) -> dict:
    """Write ``defa_<block>.v`` and ``defa_<block>.json`` (the manifest) into ``out_dir``.
    Returns the manifest, with ``verilog`` and ``manifest`` paths added. (``defa generate``
    adds the C header, Python module and report for the top: ``gen.artifacts``.)"""
    if block not in BLOCKS:
        raise ValueError(f"block={block!r} is not known: allowed {sorted(BLOCKS)}")
    top, extra = BLOCKS[block](cfg, level)
    name = f"defa_{block}"
    text = verilog_of(top, name, target)
    manifest = {
        "block": block,
        "target": target,
        "top": name,
        "config": cfg.to_dict(),
        "clock": "clk",
        "reset": "rst",
        "ports": port_manifest(top),
        **extra,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = out_dir / f"{name}.v"
    manifest_path = out_dir / f"{name}.json"
    verilog_path.write_text(text)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {**manifest, "verilog": str(verilog_path), "manifest": str(manifest_path)}
