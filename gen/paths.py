"""The worst register-to-register paths of a routed design, from the SDF nextpnr writes
(``--sdf``): a static timing pass over its delays, so a report can list more than the one
critical path nextpnr prints.

The SDF carries every routed connection (``INTERCONNECT`` from a driver's pin to a sink's
pin) and every cell's arcs (``IOPATH`` from an input pin to an output pin; from a clock pin
for a register's clock-to-out) and its setup checks (``SETUPHOLD``). As nextpnr does, the
maximum of each (min:typ:max) triple is used and the clock is ideal. A path starts at a
clocked output and ends at an input pin no arc leaves (a register's data, enable or reset,
a block RAM's or a DSP's registered input), plus that pin's setup time.

``worst_paths`` returns, worst first, one path per pair of register groups (a bus's bits,
``name_TRELLIS_FF_Q_7``, count as one register), so ten entries name ten different places.
"""

from __future__ import annotations

import re
from collections import defaultdict

__all__ = ["worst_paths", "format_paths"]

_CLOCK_PINS = re.compile(r"^(CLK\w*|WCK)$")
_INSTANCE = re.compile(r"^\s*\(INSTANCE\s*(\S*)\s*\)")
_INTERCONNECT = re.compile(r"^\s*\(INTERCONNECT\s+(\S+)\s+(\S+)\s+\(([-\d.:]*)\)")
_IOPATH = re.compile(r"^\s*\(IOPATH\s+(\(\w+\s+\w+\)|\S+)\s+(\S+)\s+\(([-\d.:]*)\)")
_SETUP = re.compile(
    r"^\s*\((?:SETUPHOLD|SETUP)\s+(\(\w+\s+\w+\)|\S+)\s+(\(\w+\s+\w+\)|\S+)\s+\(([-\d.:]*)\)"
)


_NONE = float("-inf")  # no register reaches the pin


def _unescape(name: str) -> str:
    return name.replace("\\", "")


def _split_pin(ref: str) -> tuple[str, str]:
    cell, _, pin = _unescape(ref).rpartition("/")
    return cell, pin


def _max_ps(triple: str) -> float:
    """The max of an SDF delay triple ``min:typ:max``, in ps."""
    return float(triple.split(":")[-1] or 0)


def _pin_name(spec: str) -> str:
    """A port spec: ``A`` or ``(posedge CLK)``."""
    return spec.strip("()").split()[-1]


def _group(cell: str) -> str:
    """The register (or cell group) a netlist cell belongs to: the bit suffix Yosys and
    nextpnr add to a bus's flip-flops (and the chain of names behind them) removed."""
    name = re.sub(r"\$\d+", "", cell).split("$", 1)[0]
    name = re.sub(r"_TRELLIS_FF_Q(_\d+)?.*$", "", name)
    return re.sub(r"_(LUT4|PFUMX|CCU2C|L6MUX21|TRELLIS|DPR16X4|MULT18X18D|DP16KD)\b.*$", "", name)


def worst_paths(sdf_text: str, count: int = 10) -> list[dict]:
    """The ``count`` worst paths, one per (start group, end group), worst first: each
    ``{"from", "to", "delay_ns", "logic_ns", "routing_ns", "logic_levels", "steps"}``, the
    steps as ``(kind, from "cell/pin", to "cell/pin", ns)``."""
    edges: dict[tuple[str, str], list[tuple[tuple[str, str], float, str]]] = defaultdict(list)
    starts: dict[tuple[str, str], float] = {}
    setup: dict[tuple[str, str], float] = {}
    has_arc: set[tuple[str, str]] = set()
    clocked: set[str] = set()  # cells with a clock (registers, registered RAM and DSP ports)
    name = ""
    for line in sdf_text.splitlines():
        if "(INTERCONNECT" in line:
            match = _INTERCONNECT.match(line)
            if match:
                src, dst = _split_pin(match[1]), _split_pin(match[2])
                edges[dst].append((src, _max_ps(match[3]), "routing"))
        elif "(IOPATH" in line:
            match = _IOPATH.match(line)
            if match:
                pin_in, pin_out, delay = _pin_name(match[1]), match[2], _max_ps(match[3])
                has_arc.add((name, pin_in))
                if _CLOCK_PINS.match(pin_in):
                    clocked.add(name)
                    key = (name, pin_out)
                    starts[key] = max(starts.get(key, 0.0), delay)
                else:
                    edges[(name, pin_out)].append(((name, pin_in), delay, "logic"))
        elif "(INSTANCE" in line:
            match = _INSTANCE.match(line)
            name = _unescape(match[1]) if match else ""
        elif "(SETUP" in line:
            match = _SETUP.match(line)
            if match:
                pin = (name, _pin_name(match[1]))
                setup[pin] = max(setup.get(pin, 0.0), _max_ps(match[3]))

    arrival: dict[tuple[str, str], float] = {}
    via: dict[tuple[str, str], tuple] = {}

    def arrive(pin):
        # iterative depth-first evaluation (paths are thousands of pins deep at most)
        stack = [pin]
        while stack:
            p = stack[-1]
            if p in arrival:
                stack.pop()
                continue
            if p in starts:
                arrival[p] = starts[p]
                via[p] = None
                stack.pop()
                continue
            pending = [src for src, _, _ in edges.get(p, ()) if src not in arrival]
            if pending:
                stack.extend(pending)
                continue
            # Only paths from a register count: a pin no register reaches (a constant
            # driver such as $PACKER_GND, a port) has no arrival, as in nextpnr's analysis.
            best, choice = _NONE, None
            for src, delay, kind in edges.get(p, ()):
                if arrival[src] == _NONE:
                    continue
                t = arrival[src] + delay
                if choice is None or t > best:
                    best, choice = t, (src, delay, kind)
            arrival[p] = best
            via[p] = choice
            stack.pop()
        return arrival[pin]

    endpoints = [
        p for p in edges if p not in has_arc and p not in starts and (p in setup or p[0] in clocked)
    ]
    timed = []
    for p in endpoints:
        if arrive(p) != _NONE:
            timed.append((arrival[p] + setup.get(p, 0.0), p))
    timed.sort(reverse=True)

    paths, seen = [], set()
    for t, end in timed:
        steps, p = [], end
        while via.get(p) is not None:
            src, delay, kind = via[p]
            steps.append((kind, f"{src[0]}/{src[1]}", f"{p[0]}/{p[1]}", round(delay / 1000, 3)))
            p = src
        steps.append(("clk-to-q", f"{p[0]}/CLK", f"{p[0]}/{p[1]}", round(starts[p] / 1000, 3)))
        steps.reverse()
        if setup.get(end):
            pin = f"{end[0]}/{end[1]}"
            steps.append(("setup", pin, pin, round(setup[end] / 1000, 3)))
        key = (_group(p[0]), _group(end[0]))
        if key in seen:
            continue
        seen.add(key)
        routing = sum(s[3] for s in steps if s[0] == "routing")
        paths.append(
            {
                "from": p[0],
                "to": f"{end[0]}/{end[1]}",
                "delay_ns": round(t / 1000, 3),
                "routing_ns": round(routing, 3),
                "logic_levels": sum(1 for s in steps if s[0] == "logic"),
                "steps": steps,
            }
        )
        if len(paths) == count:
            break
    return paths


def format_paths(paths: list[dict]) -> list[str]:
    lines = []
    for i, path in enumerate(paths, 1):
        start, end = _group(path["from"]), _group(path["to"].rsplit("/", 1)[0])
        lines.append(
            f"    {i:2d}. {path['delay_ns']:6.2f} ns ({path['routing_ns']:.2f} routing, "
            f"{path['logic_levels']} logic) {start} -> {end}"
        )
    return lines
