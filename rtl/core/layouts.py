"""Stream payload layouts shared by the RTL blocks, all derived from one ``DefaConfig``.

Corner and bank order, used everywhere: corner k = 2*dy + dx for (x0 + dx, y0 + dy); bank
b = 2*(y mod 2) + (x mod 2).
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from gen.config import DefaConfig

__all__ = [
    "TAG_BITS",
    "FwpOp",
    "chunk_bits",
    "fill_layout",
    "fwp_command_layout",
    "fwp_result_layout",
    "head_bits",
    "load_layout",
    "partial_bits",
    "partial_layout",
    "point_layout",
    "side_bits",
]

#: default width of the opaque tag a point carries through the sampler (ordering checks,
#: query ids).
TAG_BITS = 8


def _bits_for(n: int) -> int:
    """Bits of an unsigned index in range(n) (at least 1)."""
    return max(1, (n - 1).bit_length())


def head_bits(cfg: DefaConfig) -> int:
    return _bits_for(cfg.heads)


def chunk_bits(cfg: DefaConfig) -> int:
    return _bits_for(cfg.cycles_per_point)


def side_bits(cfg: DefaConfig) -> int:
    """Unsigned width of a level height or width (1 .. max_side)."""
    return cfg.max_side.bit_length()


def partial_bits(cfg: DefaConfig) -> int:
    """Signed width of one lane's partial: the sum of four coefficient x value products."""
    return cfg.product_bits + 2


def point_layout(
    cfg: DefaConfig, tag_bits: int = TAG_BITS, *, patch: bool = False
) -> data.StructLayout:
    """One sampling point of one head at one level, as the sampler receives it; ``patch``
    adds the band's flag (its corners are in the buffer's patch, see ``LevelBuffer``)."""
    return data.StructLayout(
        {
            "ref_x": unsigned(cfg.ref_bits),  # ref_x * W, coord_frac_bits fraction
            "ref_y": unsigned(cfg.ref_bits),  # ref_y * H
            "off_x": signed(cfg.offset_bits),  # offset in pixels, coord_frac_bits fraction
            "off_y": signed(cfg.offset_bits),
            "prob": unsigned(cfg.prob_bits + 1),  # prob_bits fraction; above 1.0 counts as 1.0
            "head": unsigned(head_bits(cfg)),
            "tag": unsigned(tag_bits),
            **({"patch": unsigned(1)} if patch else {}),
        }
    )


def partial_layout(cfg: DefaConfig, tag_bits: int = TAG_BITS) -> data.StructLayout:
    """``lanes`` channels of one point's interpolated, probability-weighted head vector."""
    return data.StructLayout(
        {
            "lanes": data.ArrayLayout(signed(partial_bits(cfg)), cfg.lanes),
            "chunk": unsigned(chunk_bits(cfg)),  # channels [chunk*lanes, (chunk+1)*lanes)
            "last": unsigned(1),  # the point's last chunk
            "off_map": unsigned(1),  # no corner of the point lies on the map
            "tag": unsigned(tag_bits),
        }
    )


def load_layout(cfg: DefaConfig, level: int) -> data.StructLayout:
    """One write into a level buffer: ``lanes`` channels of one head at pixel (x, y); with
    ``probe`` set, no write but a question for the pixel's mask bit (the sampler answers)."""
    height, width = cfg.max_shapes[level]
    return data.StructLayout(
        {
            "x": unsigned(_bits_for(width)),
            "y": unsigned(_bits_for(height)),
            "head": unsigned(head_bits(cfg)),
            "chunk": unsigned(chunk_bits(cfg)),
            "data": data.ArrayLayout(signed(cfg.value_bits), cfg.lanes),
            "probe": unsigned(1),
        }
    )


def fill_layout(cfg: DefaConfig, level: int) -> data.StructLayout:
    """One write into a level's band (``cfg.window_rows``): ``lanes`` channels of the band's
    head at column ``x`` of ring row ``row`` (map row mod the band's height), or of the patch
    (``patch``: the corner at that column's and row's parity, see ``LevelBuffer``)."""
    _, width = cfg.max_shapes[level]
    return data.StructLayout(
        {
            "x": unsigned(_bits_for(width)),
            "row": unsigned(_bits_for(cfg.window_rows[level])),
            "chunk": unsigned(chunk_bits(cfg)),
            "patch": unsigned(1),
            "data": data.ArrayLayout(signed(cfg.value_bits), cfg.lanes),
        }
    )


def job_layout(
    cfg: DefaConfig, tag_bits: int, *, probs: bool | None = None, keep: bool = False
) -> data.StructLayout:
    """One (query, head): its L*P points. ``tag`` identifies the query. With
    ``cfg.softmax`` (unless ``probs`` says otherwise) the points carry attention logits
    (``logit``, signed ``logit_bits``), else probabilities (``prob``). ``keep=True`` adds PAP's
    decision per point (``keep[l]`` bit p: point p of level l survives ``tau_p``), for the
    dispatcher."""
    lv, p = cfg.levels, cfg.points
    if probs is None:
        probs = not cfg.softmax
    weight = (
        {"prob": data.ArrayLayout(data.ArrayLayout(unsigned(cfg.prob_bits + 1), p), lv)}
        if probs
        else {"logit": data.ArrayLayout(data.ArrayLayout(signed(cfg.logit_bits), p), lv)}
    )
    return data.StructLayout(
        {
            "tag": unsigned(tag_bits),
            "head": unsigned(head_bits(cfg)),
            "ref_x": data.ArrayLayout(unsigned(cfg.ref_bits), lv),  # ref_x * W_l per level
            "ref_y": data.ArrayLayout(unsigned(cfg.ref_bits), lv),
            "off_x": data.ArrayLayout(data.ArrayLayout(signed(cfg.offset_bits), p), lv),
            "off_y": data.ArrayLayout(data.ArrayLayout(signed(cfg.offset_bits), p), lv),
            **weight,
            **({"keep": data.ArrayLayout(unsigned(p), lv)} if keep else {}),
        }
    )


def entry_layout(cfg: DefaConfig) -> data.StructLayout:
    """A job's points at one level, with the PAP keep mask (at least one bit set)."""
    p = cfg.points
    return data.StructLayout(
        {
            "head": unsigned(head_bits(cfg)),
            "ref_x": unsigned(cfg.ref_bits),
            "ref_y": unsigned(cfg.ref_bits),
            "off_x": data.ArrayLayout(signed(cfg.offset_bits), p),
            "off_y": data.ArrayLayout(signed(cfg.offset_bits), p),
            "prob": data.ArrayLayout(unsigned(cfg.prob_bits + 1), p),
            "keep": unsigned(p),
        }
    )


#: channels of the aggregator that share one copy of a descriptor's ``empty`` bits
EMPTY_GROUP = 4


def join_copies_of(cfg: DefaConfig) -> int:
    """Copies of the aggregator's join decision: one per level's sum inbox (its control), one
    for the descriptor inbox, one for the output queue and the pipeline, and one per 64-bit
    slice of a level sum (that slice's read pointer in every level's sum inbox)."""
    return cfg.levels + 2 + -(-level_sum_layout(cfg).size // 64)


def descriptor_layout(cfg: DefaConfig, tag_bits: int) -> data.StructLayout:
    """What the aggregator must join for one job: its tag and head, and per level whether no
    point was kept there (``empty``: that level sends no sum; it counts as zero). ``zero``
    repeats ``empty`` once per ``EMPTY_GROUP`` channels: the copies that zero the level sums
    (separate bits all the way, so no one bit reaches every channel's register); ``join``
    repeats it once per copy of the aggregator's join decision (``join_copies_of``)."""
    copies = -(-cfg.head_dim // EMPTY_GROUP)
    return data.StructLayout(
        {
            "tag": unsigned(tag_bits),
            "head": unsigned(head_bits(cfg)),
            "empty": unsigned(cfg.levels),
            "zero": data.ArrayLayout(unsigned(cfg.levels), copies),
            "join": data.ArrayLayout(unsigned(cfg.levels), join_copies_of(cfg)),
        }
    )


def level_sum_layout(cfg: DefaConfig) -> data.ArrayLayout:
    """A level's exact sum over its kept points of one job, all channels of the head."""
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.head_dim)


#: bits of the aggregator's descriptor inbox per LUT RAM group, and of the descriptor
#: crossing's valid copies: the inbox is deep (the round trip through a level), four LUT RAMs
#: per bit, so a pointer copy per 16 bits reaches 16 of them, not 64
DESC_GROUP = 16

#: bits of the aggregator's sum inboxes per LUT RAM group (``Inbox(address_group=...)``), and
#: of the level sum crossing's valid copies: one copy per group (the channels' adders spread)
SUM_GROUP = 32


def output_layout(cfg: DefaConfig, tag_bits: int) -> data.StructLayout:
    """One (query, head) of the core's output: rounded, saturated ``out_bits`` words."""
    return data.StructLayout(
        {
            "tag": unsigned(tag_bits),
            "head": unsigned(head_bits(cfg)),
            "values": data.ArrayLayout(signed(cfg.out_bits), cfg.head_dim),
        }
    )


class FwpOp(enum.Enum, shape=2):
    """FWP commands (see ``ImportanceMap``)."""

    #: importance counters to 0, mask to all kept
    CLEAR = 0
    #: mask from the counters and tau_f, then counters to 0 (closes a layer)
    DERIVE = 1
    #: one pixel's counter and mask bit, on the result stream
    READ = 2
    #: set one pixel's mask bit (``keep``)
    MASK = 3


def fwp_command_layout(cfg: DefaConfig, level: int | None = None) -> data.StructLayout:
    """An FWP command for one level's map (``level`` given) or for the core (with a ``level``
    field; CLEAR and DERIVE act on every level). ``x``, ``y``, ``keep``: READ/MASK operands."""
    if level is None:
        height = max(h for h, _ in cfg.max_shapes)
        width = max(w for _, w in cfg.max_shapes)
        fields = {"level": unsigned(_bits_for(cfg.levels))}
    else:
        height, width = cfg.max_shapes[level]
        fields = {}
    return data.StructLayout(
        {
            "op": FwpOp,
            **fields,
            "x": unsigned(_bits_for(width)),
            "y": unsigned(_bits_for(height)),
            "keep": unsigned(1),
        }
    )


def fwp_result_layout(cfg: DefaConfig) -> data.StructLayout:
    """What READ returns: the pixel's saturated importance counter and its mask bit."""
    return data.StructLayout({"importance": unsigned(cfg.importance_bits), "keep": unsigned(1)})
