"""DSP placement on the ECP5-85F: the multipliers whose products are added first on adjacent
MULT18X18D sites and each level's together, instead of wherever the placer spreads them.

The 85F's 156 multipliers sit in three rows (Y10, Y34, Y58) of 52 sites, four per DSP block
(``MULT18_0``, ``_1``, ``_4``, ``_5`` at consecutive columns): ``SITES`` lists them row by
row, left to right (read from nextpnr-ecp5's own placement of 156 multipliers). ``plan`` fills
the rows in that order with the design's groups of multipliers (per sampler, the four
products of a lane on four consecutive sites, one DSP block: the pairs summed first, banks 0
and 1, 2 and 3, side by side, and the pairs' sum beside them; four lanes a group; then the
softmax's products), never splitting a group across rows, and returns a ``BEL`` per
multiplier cell; Yosys sets it as an attribute that nextpnr honours. Other devices, or designs
that do not fit, get no plan (``{}``).
"""

from __future__ import annotations

from gen.config import DefaConfig

__all__ = ["SITES", "plan", "yosys_commands"]

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


def plan(cfg: DefaConfig, block: str, device: str) -> dict[str, str]:
    """``{cell: BEL}`` for every multiplier, or ``{}`` (no plan for this device or design)."""
    if device not in DEVICES:
        return {}
    placed: dict[str, str] = {}
    row, used = 0, 0
    for group in _groups(cfg, block):
        if len(group) > len(SITES[0]):
            return {}
        if used + len(group) > len(SITES[row]):
            row, used = row + 1, 0
            if row == len(SITES):
                return {}
        for cell in group:
            placed[cell] = SITES[row][used]
            used += 1
    return placed


def yosys_commands(top: str, placement: dict[str, str]) -> list[str]:
    """``setattr`` commands (after flattening) that pin each cell to its BEL."""
    return [f'setattr -set BEL "{bel}" {top}/{cell}' for cell, bel in placement.items()]
