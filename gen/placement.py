"""DSP and block RAM placement on the ECP5-85F: the multipliers whose products are added
first on adjacent MULT18X18D sites and each level's together, and each block RAM next to the
multipliers it feeds, instead of wherever the placer spreads them.

The 85F's 156 multipliers sit in three rows (Y10, Y34, Y58) of 52 sites, four per DSP block
(``MULT18_0``, ``_1``, ``_4``, ``_5`` at consecutive columns): ``SITES`` lists them row by
row, left to right (read from nextpnr-ecp5's own placement of 156 multipliers). ``plan`` fills
the rows in ``ROW_ORDER`` (the middle row first, then the others; alternate rows from the
right) with the design's groups of multipliers (per sampler, the four products of a lane on
four consecutive sites, one DSP block: the pairs summed first, banks 0 and 1, 2 and 3, side by
side, and the pairs' sum beside them; four lanes a group; then the softmax's products), never
splitting a group across rows.

Its 208 DP16KD sit in four rows (Y22, Y46, Y70, Y82) of 52, four per block (``EBR0`` .. ``3``
every other column): ``EBR_SITES``. Left alone, nextpnr scatters a level buffer's columns over
all four rows (a bank's 16 columns 70 tiles apart: every address and data net spans the chip).
``plan`` gives each level buffer column a site near the multipliers its data feeds (bank b's
products of the lanes its bits hold) and each FWP counter memory one near its level's
multipliers: the assignment with the least sum of squared distances (so no memory is
left far away to bring the rest closer). The softmax's tables stay with the placer.

``plan`` returns a ``BEL`` per cell; Yosys sets it as an attribute that nextpnr honours. Other
devices, or designs that do not fit, get no plan (``{}``).
"""

from __future__ import annotations

import re

import numpy as np

from gen.config import DefaConfig
from rtl.core.level_buffer import buffer_geometry
from rtl.lib.block_ram import dp16kd_blocks, dp16kd_grid

__all__ = ["EBR_SITES", "SITES", "plan", "yosys_commands"]

_ROWS = (10, 34, 58)
_COLUMNS = (
    4, 5, 8, 9, 13, 14, 17, 18, 22, 23, 26, 27, 31, 32, 35, 36, 40, 41, 44, 45, 49, 50, 53,
    54, 58, 59, 62, 63, 69, 70, 73, 74, 78, 79, 82, 83, 87, 88, 91, 92, 96, 97, 100, 101, 105,
    106, 109, 110, 114, 115, 118, 119,
)  # fmt: skip
_SLOTS = (0, 1, 4, 5)
#: the MULT18X18D sites of an LFE5U-85F (and LFE5UM5G-85F), per row, left to right
SITES = tuple(
    tuple(f"X{x}/Y{y}/MULT18_{_SLOTS[i % 4]}" for i, x in enumerate(_COLUMNS)) for y in _ROWS
)
DEVICES = ("LFE5U-85F", "LFE5UM5G-85F")

_EBR_ROWS = (22, 46, 70, 82)
_EBR_COLUMNS = (
    4, 6, 8, 10, 13, 15, 17, 19, 22, 24, 26, 28, 31, 33, 35, 37, 40, 42, 44, 46, 49, 51, 53,
    55, 58, 60, 62, 64, 69, 71, 73, 75, 78, 80, 82, 84, 87, 89, 91, 93, 96, 98, 100, 102, 105,
    107, 109, 111, 114, 116, 118, 120,
)  # fmt: skip
#: the DP16KD sites of an LFE5U-85F, per row, left to right (read from nextpnr-ecp5's placement)
EBR_SITES = tuple(
    tuple(f"X{x}/Y{y}/EBR{i % 4}" for i, x in enumerate(_EBR_COLUMNS)) for y in _EBR_ROWS
)


#: the order the multiplier rows are filled in: the middle one (Y34: block RAM rows on both
#: sides, for the level that needs most) from the left, then Y58 from the right (a level that
#: went on past the first row continues beside its end), then Y10 from the left
ROW_ORDER = (1, 2, 0)

#: lanes per group (all four banks of each): 16 multipliers, three groups to a row
LANES_PER_GROUP = 4


def _sampler_groups(cfg: DefaConfig, prefix: str) -> list[list[str]]:
    """A sampler's products in groups of adjacent sites: lane by lane, the four banks of the
    lane in order (0 and 1, then 2 and 3: the pairs summed first), ``LANES_PER_GROUP`` lanes a
    group."""
    groups = []
    for first in range(0, cfg.lanes, LANES_PER_GROUP):
        lanes = range(first, min(cfg.lanes, first + LANES_PER_GROUP))
        groups.append([f"{prefix}mult{b}_{lane}.dsp" for lane in lanes for b in range(4)])
    return groups


def _groups(cfg: DefaConfig, block: str) -> list[list[str]]:
    """The design's multiplier cells (names after flattening), in groups to keep adjacent."""
    if block == "sampler":
        return _sampler_groups(cfg, "")
    if block != "core":
        return []
    groups = [
        group
        for level in range(cfg.levels)
        for group in _sampler_groups(cfg, f"level{level}.sampler.")
    ]
    if cfg.softmax:
        groups.append([f"softmax.mult{k}.dsp" for k in range(cfg.points_per_head)])
    return groups


def _xy(site: str) -> tuple[int, int]:
    x, y = re.match(r"X(\d+)/Y(\d+)/", site).groups()
    return int(x), int(y)


def _memories(cfg: DefaConfig, block: str, dsps: dict[str, str]) -> dict[str, tuple[float, float]]:
    """The block RAM cells to place, each with the point it should sit nearest: a level buffer
    column by the bank's multipliers of the lanes its bits hold, an FWP counter memory by its
    level's multipliers."""
    if block not in ("core", "sampler"):
        return {}

    def centre(cells):
        points = [_xy(dsps[c]) for c in cells]
        return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)

    targets = {}
    word = cfg.lanes * cfg.value_bits
    for level in range(cfg.levels) if block == "core" else (0,):
        prefix = f"level{level}.sampler." if block == "core" else ""
        geometry = buffer_geometry(cfg, level)
        depth = geometry["depth"]
        segments, port, columns = dp16kd_grid(word, depth)
        for bank in range(4):
            for column in range(columns):
                first = column * port // cfg.value_bits
                last = min(cfg.lanes, -(-(column + 1) * port // cfg.value_bits)) - 1
                cells = [f"{prefix}mult{bank}_{lane}.dsp" for lane in range(first, last + 1)]
                for segment in range(segments):  # (block RAM cells are numbered row-major)
                    cell = f"{prefix}buffer.bank{bank}.bram{segment * columns + column}"
                    targets[cell] = centre(cells)
        level_dsps = [c for c in dsps if c.startswith(f"{prefix}mult")]
        fwp = buffer_geometry(cfg, level, whole_map=True)
        counters = fwp["rows"] * fwp["pitch"]
        for bank in range(4):
            for ram in range(dp16kd_blocks(cfg.importance_bits, counters)):
                targets[f"{prefix}fwp.bank{bank}.counters.bram{ram}"] = centre(level_dsps)
    return targets


def _assign(cost: np.ndarray) -> list[int]:
    """A least-total-cost assignment of rows to distinct columns (rows <= columns): the
    shortest augmenting path method (Kuhn-Munkres with potentials), a row at a time."""
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=int)  # owner[j]: the row (1-based) on column j, 0 if none
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            reduced = cost[owner[j0] - 1] - u[owner[j0]] - v[1:]
            free = ~used[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    column = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            column[owner[j] - 1] = j - 1
    return column


def _place_memories(targets: dict[str, tuple[float, float]]) -> dict[str, str]:
    """Each cell on its own site, the sum of the squared distances (Manhattan, in tiles) to
    the targets least; ``{}`` if they do not all fit."""
    sites = [site for row in EBR_SITES for site in row]
    if not targets or len(targets) > len(sites):
        return {}
    cells = list(targets)
    where = np.array([_xy(site) for site in sites], dtype=float)
    goal = np.array([targets[cell] for cell in cells], dtype=float)
    cost = np.abs(goal[:, None, :] - where[None, :, :]).sum(-1) ** 2
    return {cell: sites[j] for cell, j in zip(cells, _assign(cost), strict=True)}


def plan(cfg: DefaConfig, block: str, device: str) -> dict[str, str]:
    """``{cell: BEL}`` for every multiplier and level buffer / FWP block RAM, or ``{}`` (no
    plan for this device or design)."""
    if device not in DEVICES:
        return {}
    placed: dict[str, str] = {}
    turn, used = 0, 0
    for group in _groups(cfg, block):
        if len(group) > len(SITES[0]):
            return {}
        if used + len(group) > len(SITES[0]):
            turn, used = turn + 1, 0
            if turn == len(ROW_ORDER):
                return {}
        row, leftward = ROW_ORDER[turn], turn % 2 == 1
        first = len(SITES[row]) - used - len(group) if leftward else used
        for i, cell in enumerate(group):
            placed[cell] = SITES[row][first + i]
        used += len(group)
    return placed | _place_memories(_memories(cfg, block, placed))


def yosys_commands(top: str, placement: dict[str, str]) -> list[str]:
    """``setattr`` commands (after flattening) that pin each cell to its BEL."""
    return [f'setattr -set BEL "{bel}" {top}/{cell}' for cell, bel in placement.items()]
