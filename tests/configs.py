"""Configs shared by the RTL regressions and the cycle-model tests, so that each distinct core
is built once per simulator (builds are cached by config and generator sources:
``tb/runner.py``)."""

from gen.config import preset

TINY = preset("tiny")
#: four chunks per point, deeper queues
TINY_LANES4 = preset("tiny", lanes=4, queue_depth=8)
#: probabilities in (no fused softmax)
TINY_PROBS = preset("tiny", softmax=False)
#: odd everything: 3 heads of 8 channels, 3 levels of 3 points, 2-deep queues, narrow formats
#: with coord_frac_bits 4 (one-stage coefficient trees: a shorter sampler), 9 points per head
#: (two-stage softmax trees), and the narrowest exact accumulator (as fpga's)
ODD = preset(
    "tiny",
    d_model=24,
    heads=3,
    levels=3,
    points=3,
    lanes=4,
    max_shapes=((7, 13), (4, 7), (2, 3)),
    coord_frac_bits=4,
    prob_bits=9,
    coeff_bits=10,
    offset_bits=11,
    queue_depth=2,
    tau_p=0.05,
)
ODD = ODD.replace(acc_bits=ODD.min_acc_bits)
#: the ECP5-85F preset as it is
FPGA = preset("fpga")
#: maps in external memory: over maps up to 40 and 24 rows, a band of 16 rows (2 fetched
#: ahead) and one of 2 rows (most points refill or take the slow path); two chunks per
#: point (64-bit bus words)
TINY_BAND = preset(
    "tiny", lanes=8, offset_bits=16, max_shapes=((40, 11), (24, 6)), window_rows=(16, 2)
)
