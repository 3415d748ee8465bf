"""The ``defa`` command: configs, workloads, the demo and the benchmarks.

Every subcommand that takes a config accepts ``--preset NAME``, ``--config FILE.json`` and any
number of ``--set key=value`` overrides (values are JSON: ``--set lanes=8``,
``--set 'max_shapes=[[8,8],[4,4]]'``). Errors in user input exit with status 2 and one line
that names the parameter and its allowed range.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gen.config import PRESETS, DefaConfig, overrides_of, parse_json, parse_override, resolve
from gen.tools import ToolMissing

#: boards ``defa synth --board`` knows (gen.synth.BOARDS; listed here so that --help needs no
#: import of the flow)
SYNTH_BOARDS = ("ecpix5-85f", "orangecrab-85f", "ulx3s-85f")

__all__ = ["main", "config_from_args"]


def _add_config_args(p: argparse.ArgumentParser, default: str | None = "detr", note: str = ""):
    p.add_argument(
        "--preset",
        help=f"one of {sorted(PRESETS)} "
        + (note or f"(default {default}, or the preset a --config file records)"),
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a config JSON file applied on top of the preset (a partial file such as "
        '{"lanes": 4} changes only those parameters; a file written by `defa config` records '
        "its preset)",
    )
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one parameter (after --config); repeatable",
    )
    p.set_defaults(preset_default=default)


def config_from_args(args: argparse.Namespace) -> DefaConfig:
    """The config of ``--preset``/``--config``/``--set``: the file on top of the preset, the
    overrides on top of both. Sets ``args.preset`` to the preset used and prints the config
    (preset and what differs from it) on stderr."""
    data = {}
    if args.config:
        try:
            text = Path(args.config).read_text()
        except OSError as e:
            raise ValueError(f"cannot read config file {args.config!r}: {e.strerror}") from None
        data = parse_json(text)
    base = args.preset
    if base is None and "preset" not in data:
        base = args.preset_default
    name, cfg = resolve(data, base)
    overrides = dict(parse_override(s) for s in args.set)
    if overrides:
        cfg = cfg.replace(**overrides)
    args.preset = name
    changed = overrides_of(name, cfg)
    what = f" + {json.dumps(changed, separators=(',', ':'))}" if changed else ""
    print(f"defa {args.command}: config: preset {name}{what}", file=sys.stderr)
    return cfg


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 800x1333, got {text!r}"
        ) from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"input size {text!r} must be positive")
    return h, w


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas such as 20,14,12,10, got {text!r}"
        ) from None


def _cmd_config(args) -> int:
    cfg = config_from_args(args)
    print(json.dumps({"preset": args.preset, **cfg.to_dict()}, indent=2, sort_keys=True))
    return 0


def _cmd_workload(args) -> int:
    from sim import workload as wl

    if args.check:
        w = wl.load(args.check)
        print(w.describe())
        return 0
    cfg = config_from_args(args)
    kwargs = {"seed": args.seed}
    if args.queries is not None:
        kwargs["queries"] = args.queries
    w = wl.for_config(cfg, args.kind, input_hw=args.input, **kwargs)
    path = wl.save(w, args.output)
    print(f"{w.describe()} -> {path}")
    return 0


def _cmd_demo(args) -> int:
    from gen.demo import run_demo

    report = run_demo(
        config_from_args(args),
        input_hw=args.input,
        seed=args.seed,
        rtl=not args.no_rtl,
        stream=not args.no_stream,
        layer=not args.no_layer,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def _cmd_generate(args) -> int:
    from gen.elaborate import generate
    from gen.lint import lint

    cfg = config_from_args(args)
    out = generate(cfg, args.output, block=args.block, level=args.level)
    print(f"{out['verilog']}\n{out['manifest']}")
    if args.block == "top":
        from gen.artifacts import write_artifacts

        for path in write_artifacts(out, args.output, split=args.split):
            print(path)
    if args.lint:
        warnings = lint(out["verilog"])
        if warnings:
            print(f"verilator lint: {dict(warnings)}", file=sys.stderr)
            return 1
        print("verilator --lint-only -Wall: clean (waivers: gen/verilator.vlt)")
    return 0


def _cmd_synth(args) -> int:
    from gen.progress import steps
    from gen.synth import board_target, format_synth, synth

    cfg = config_from_args(args)
    target = {"device": "LFE5U-85F", "package": "CABGA381", "speed": 6}
    if args.board:
        board = board_target(args.board)
        if args.device:
            raise ValueError(
                f"--board {args.board} sets the device ({board['device']}): drop --device"
            )
        target = {k: board[k] for k in target}
    if args.device:
        target["device"] = args.device
    if args.speed is not None:
        target["speed"] = args.speed
    if args.record and args.block != "core" and not args.design:
        raise ValueError(
            f"--record files a preset's core figures under its name: block={args.block!r} "
            "is recorded as a design, named with --as"
        )
    changed = overrides_of(args.preset, cfg)
    if args.record and changed and not args.design:
        raise ValueError(
            f"--record files figures under the preset's name, but --config/--set changed "
            f"preset {args.preset!r}: {changed}; record the preset as it is, or name the "
            "design with --as"
        )
    if args.design and not (args.record and (changed or args.block != "core")):
        raise ValueError(
            f"--as {args.design!r} names a design recorded with --record: it needs --record "
            "and a --config/--set change of the preset or a block other than the core"
        )
    if args.design in PRESETS:
        raise ValueError(f"--as {args.design!r} is a preset's name: allowed another name")
    out = Path(args.output or f"build/synth/{args.preset}")
    try:
        with steps(f"defa synth {args.preset}", quiet=args.quiet) as step:
            result = synth(
                cfg,
                out,
                device=target["device"],
                package=target["package"],
                freq_mhz=args.freq,
                dsp=args.dsp,
                pnr=not args.no_pnr,
                xilinx=not args.no_xilinx,
                seed=args.seed,
                seeds_n=args.seeds,
                parallel=args.parallel,
                speed=target["speed"],
                place_dsps=args.dsp_placement == "rows",
                block=args.block,
                step=step,
            )
    except ToolMissing:
        raise  # main() reports it, as for every command
    except RuntimeError as e:
        print(f"defa synth: error: {e}", file=sys.stderr)
        return 1
    result["preset"] = args.preset
    result["config"] = cfg.to_dict()
    (out / "synth.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if args.record:
        from gen.synth import record_baseline

        record_baseline(
            Path(args.record),
            args.preset,
            result,
            design=args.design,
            overrides=changed if args.design else None,
            block=args.block,
        )
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else format_synth(result))
    return 0


def _cmd_build(args) -> int:
    from fpga.ulx3s import build
    from gen.progress import steps
    from gen.synth import _pnr_summary

    cfg = config_from_args(args)
    suffix = "-layer" if args.layer else ""
    out = Path(args.output or f"build/{args.board}-{args.preset}{suffix}")
    with steps(f"defa build {args.board}", quiet=args.quiet) as step:
        step("elaborate, synthesize, place and route, pack (amaranth-boards + YoWASP)")
        paths = build(cfg, out, board=args.board, baud=args.baud, layer=args.layer)
    report = _pnr_summary(json.loads(Path(paths["report"]).read_text()))
    print(f"bitstream {paths['bitstream']}")
    print(f"Fmax {report['fmax_mhz']:.1f} MHz (board clock 25 MHz); host link {args.baud} baud")
    if args.layer:
        print("host side: fpga/layer_host.py (LayerDevice + SerialTransport) with the manifest of")
        print(f"  defa generate --block layer_linked --preset {args.preset}")
    else:
        print("host side: fpga/host.py (Device + SerialTransport) with the manifest of")
        print(f"  defa generate --block linked --preset {args.preset}")
    return 0


def _cmd_sweep(args) -> int:
    from gen.progress import steps
    from gen.sweep import pareto, parse_vary, plot, sweep

    base = config_from_args(args)
    grid = parse_vary(args.vary)
    if not grid:
        raise ValueError("give at least one --vary name=value1,value2")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with steps("defa sweep", quiet=args.quiet) as step:
        rows = sweep(
            base,
            grid,
            out,
            out.with_suffix(".work"),
            synthesize=not args.no_synth,
            pnr=args.pnr,
            seed=args.seed,
            progress=step,
        )
    speed = "jobs_per_s" if args.pnr else "jobs_per_mcycle"
    print(f"{len(rows)} points in {out}")
    if not args.no_synth:
        for row in pareto(rows, speed=speed, cost="lut4"):
            print(f"  pareto: {row['params']}: {speed} {row[speed]}, LUT4 {row['lut4']}")
        picture = plot(rows, out.with_suffix(".png"))
        print(f"plot {picture}" if picture else "plot: install matplotlib (defa[plots])")
    return 0


_BENCH_PRESETS = {
    "golden": "detr",
    "core": "fpga",
    "sampler": "tiny",
    "stream": "fpga",
    "layer": "fpga",
}


def _cmd_bench(args) -> int:
    from gen import bench

    args.preset_default = _BENCH_PRESETS[args.what]
    cfg = config_from_args(args)
    if args.what == "golden":
        result = bench.golden_bench(cfg, input_hw=args.input, seed=args.seed, repeat=args.repeat)
        text = bench.format_table
    elif args.what == "core":
        from gen.progress import steps

        with steps("defa bench core") as step:
            result = bench.core_bench(
                cfg, input_hw=args.core_input, seed=args.seed, tau_p=args.tau_p, step=step
            )
        text = bench.format_core
    elif args.what == "stream":
        from gen import traffic

        # the routed clock times the layer when the design is a preset as recorded
        recorded = not overrides_of(args.preset, cfg)
        result = traffic.stream_bench(
            cfg,
            name=args.preset if recorded else None,
            input_hw=args.input,
            decoder_queries=args.decoder_queries,
            rows=args.rows,
            seed=args.seed,
            rtl_jobs=args.rtl_jobs,
        )
        text = traffic.format_stream
    elif args.what == "layer":
        from gen import layer_bench

        recorded = not overrides_of(args.preset, cfg)
        result = layer_bench.layer_bench(
            cfg,
            name=args.preset if recorded else None,
            input_hw=args.input,
            decoder_queries=args.decoder_queries,
            seed=args.seed,
            window_rows=args.rows,
            repeat=args.repeat,
        )
        text = layer_bench.format_layer
    else:
        result = bench.sampler_bench(cfg, seed=args.seed, points=args.points)
        text = bench.format_sampler
    print(f"defa bench {args.what}: config used: {result['config']}", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


#: ``--block`` of ``defa generate`` (``gen.elaborate.BLOCKS``; a test keeps them equal).
BLOCK_HELP = {
    "top": "the accelerator: core + CSR bank (generate also writes its C header, register "
    "map and report)",
    "core": "the MSDA core alone (softmax, PAP, level units, aggregator, FWP, counters)",
    "sampler": "one level's grid-sampling unit with its buffer and FWP map (--level)",
    "streamed_sampler": "one level's sampler reading its map from external memory: band "
    "window, sampler, AXI4 reader (needs window_rows; --level)",
    "linked": "the top behind the UART host link (what a board carries)",
    "projection": "the fused layer's value projection unit: proj_lanes int8 products a "
    "cycle, per-channel requantization (rtl/layer/projection.py)",
    "layer": "the fused layer with whole maps on chip: value, offset, attention and output "
    "projections around the core (rtl/layer/fused_layer.py; no window_rows)",
    "layer_top": "the fused layer from memory: constants, map and queries read and outputs "
    "written by one AXI4 master, a run per start pulse (rtl/layer/layer_top.py)",
    "layer_linked": "the layer top with its memory on chip behind the UART host link (what "
    "defa build --layer carries; rtl/link/layer_linked.py)",
}

EXIT_CODES = """exit status:
  0  success
  1  failure: a run, build or check failed (lint warnings, a tool's error)
  2  bad input: an invalid config, workload, file or option (the message names the
     parameter and its allowed range)
  3  a tool is missing (the message says what to install; `make test` installs all)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="defa",
        description="Generator of multi-scale deformable attention accelerators (DEFA).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"defa {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="print a config (preset + overrides) as JSON")
    _add_config_args(p)
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("workload", help="generate a synthetic workload file, or check one")
    _add_config_args(p)
    p.add_argument("--kind", choices=("encoder", "decoder"), default="encoder")
    p.add_argument(
        "--input", type=_hw, metavar="HxW", help="image size (default: the largest that fits)"
    )
    p.add_argument("--queries", type=int, help="decoder queries, or an encoder subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="build/workload.npz")
    p.add_argument("--check", metavar="FILE", help="validate and describe a workload file")
    p.set_defaults(func=_cmd_workload)

    p = sub.add_parser("demo", help="run a workload through the models and print a report")
    _add_config_args(p)
    p.add_argument(
        "--input", type=_hw, metavar="HxW", help="image size (default: the largest that fits)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print the report as JSON")
    p.add_argument("--no-rtl", action="store_true", help="models only: skip the core RTL run")
    p.add_argument(
        "--no-stream",
        action="store_true",
        help="skip the maps-in-memory report (defa bench stream on the fpga preset, a minute)",
    )
    p.add_argument(
        "--no-layer",
        action="store_true",
        help="skip the fused layer (its RTL on tiny with --no-rtl skipping that part, and "
        "defa bench layer on the fpga preset: two minutes)",
    )
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "generate",
        help="Verilog of the accelerator (or one block) with its manifest; for the top also a "
        "C header and a Python module with the register map, and a markdown report",
    )
    _add_config_args(p, default="tiny")
    p.add_argument(
        "--block",
        default="top",
        choices=sorted(BLOCK_HELP),
        help="; ".join(f"{k}: {v}" for k, v in BLOCK_HELP.items()) + " (default top)",
    )
    p.add_argument("--split", action="store_true", help="also one Verilog file per module")
    p.add_argument("--level", type=int, default=0, help="the level of a per-level block")
    p.add_argument("-o", "--output", default="build/generated", help="output directory")
    p.add_argument("--lint", action="store_true", help="run verilator --lint-only -Wall on it")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "synth",
        help="out-of-context ECP5 synthesis + place and route (Fmax, resources) and a Xilinx "
        "7-series resource estimate, with the YoWASP tools",
    )
    _add_config_args(p, default="tiny")
    p.add_argument("--device", help="ECP5 part (default LFE5U-85F, or the --board's)")
    p.add_argument(
        "--board",
        choices=sorted(SYNTH_BOARDS),
        help="take device, package and speed grade from an amaranth-boards board with an "
        "ECP5-85F: ulx3s-85f (LFE5U-85F, speed 6), ecpix5-85f (LFE5UM5G-85F, speed 8), "
        "orangecrab-85f (LFE5U-85F, speed 8); --speed still overrides",
    )
    p.add_argument("--freq", type=float, default=200.0, help="target clock in MHz (default 200)")
    p.add_argument(
        "--dsp",
        default="datapath",
        help="which multipliers use DSP blocks: datapath (default: samplers and softmax), "
        "all, none",
    )
    p.add_argument("--no-pnr", action="store_true", help="synthesis only (no Fmax)")
    p.add_argument("--no-xilinx", action="store_true", help="skip the Xilinx estimate")
    p.add_argument(
        "--seed", type=int, default=1, help="nextpnr placement seed (the first, with --seeds)"
    )
    p.add_argument(
        "--dsp-placement",
        choices=("rows", "placer"),
        default="rows",
        help="rows (default): pin the multipliers to MULT18X18D sites row by row (a lane's "
        "four products on one DSP block, each level's lanes together) and the level buffers' "
        "and FWP counters' block RAMs next to the multipliers they feed (gen/placement.py; the "
        "85F only); placer: leave them to nextpnr",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="place and route with N seeds (--seed, --seed+1, ...) and report the median "
        "Fmax, with every seed's (default 1; baselines are recorded with 3)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=2,
        metavar="N",
        help="placements run at a time with --seeds (default 2: memory and cores allowing)",
    )
    p.add_argument(
        "--speed",
        type=int,
        choices=(6, 7, 8),
        help="ECP5 speed grade nextpnr times (default 6, the ULX3S's, or the --board's; 8 "
        "the fastest)",
    )
    p.add_argument(
        "--block",
        default="core",
        choices=sorted(BLOCK_HELP),
        help="what to place and route: "
        + "; ".join(f"{k}: {v}" for k, v in BLOCK_HELP.items())
        + " (default core, what --record stores; sampler: level 0, a quicker look at timing)",
    )
    p.add_argument("-o", "--output", help="work directory (default build/synth/PRESET)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--record", metavar="FILE", help="store the figures as this preset's baseline in FILE"
    )
    p.add_argument(
        "--as",
        dest="design",
        metavar="NAME",
        help="with --record and --config/--set: file the figures as design NAME (the preset "
        "and its overrides), e.g. fpga-bands, the band design `defa bench stream` times",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser(
        "build", help="a bitstream for a board: the accelerator behind a UART host link"
    )
    _add_config_args(p, default="tiny")
    p.add_argument("--board", default="ulx3s-85f", help="ulx3s-85f (Radiona ULX3S, ECP5-85F)")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument(
        "--layer",
        action="store_true",
        help="the fused layer (projections, core, its memory on chip behind the link) "
        "instead of the core",
    )
    p.add_argument("-o", "--output", help="build directory (default build/BOARD-PRESET[-layer])")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "sweep",
        help="design-space sweep: cycle-model throughput x Fmax against FPGA resources (CSV, "
        "Pareto plot); a rerun skips the points already in the CSV",
    )
    _add_config_args(p, default="fpga")
    p.add_argument(
        "--vary",
        metavar="NAME=V1,V2",
        action="append",
        default=[],
        help="a parameter and its values; repeatable (every combination is run)",
    )
    p.add_argument("-o", "--output", default="build/sweep.csv", help="CSV (appended to)")
    p.add_argument("--pnr", action="store_true", help="also place and route (Fmax; slow)")
    p.add_argument("--no-synth", action="store_true", help="cycle model only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    p.add_argument(
        "what",
        choices=("golden", "sampler", "core", "stream", "layer"),
        help="golden: float vs bit-true vs torch kernel on an encoder workload shaped by the "
        "config (the models have no buffers: max_shapes follows --input); sampler: the "
        "sampler RTL on Icarus and Verilator; core: the core RTL on an encoder workload, "
        "dense and with PAP; stream: external-memory traffic and time per layer with level "
        "windows (models) on an --input encoder and a decoder; layer: the fused layer "
        "(projections and core, models) against the same layer on this CPU (torch)",
    )
    _add_config_args(
        p,
        default=None,
        note="(default: detr for golden, fpga for core, stream and layer, tiny for sampler)",
    )
    p.add_argument("--points", type=int, default=2000, help="sampler: points streamed")
    p.add_argument("--input", type=_hw, default=(800, 1333), metavar="HxW", help="golden input")
    p.add_argument(
        "--core-input",
        type=_hw,
        metavar="HxW",
        help="core input (default: the largest the config's buffers hold)",
    )
    p.add_argument("--tau-p", type=float, help="core: PAP threshold (default: the config's)")
    p.add_argument(
        "--rows",
        type=_int_list,
        metavar="R0,R1,...",
        help="stream: band rows per level (default: the knee of each level's curve); layer: "
        "the band windows (default: the config's, else 32,16,16,16)",
    )
    p.add_argument(
        "--decoder-queries", type=int, default=300, help="stream, layer: the decoder's queries"
    )
    p.add_argument(
        "--rtl-jobs",
        type=int,
        default=0,
        help="stream: also run the RTL (Verilator) on that many encoder jobs and compare the "
        "cycle model (minutes: a full-size core is built; at least 10000 for the issue's slice)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="timed runs per model (min is reported)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    for p in sub.choices.values():
        p.epilog = EXIT_CODES
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("defa")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit with status 2 (argparse)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"defa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ToolMissing as e:
        print(f"defa {args.command}: error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
