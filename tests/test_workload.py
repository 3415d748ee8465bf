import numpy as np
import pytest

from gen.config import preset
from sim import workload as wl


def test_encoder_shapes_and_reference_points():
    w = wl.encoder(input_hw=(800, 1333), queries=500, seed=1)
    assert w.shapes.tolist() == [[100, 167], [50, 84], [25, 42], [13, 21]]
    assert w.level_start.tolist() == [0, 16700, 20900, 21950]
    full = wl.encoder(input_hw=(64, 96), seed=1)
    assert full.queries == 8 * 12 + 4 * 6 + 2 * 3 + 1 * 2
    # Reference points of the first level are its pixel centres, the same for every level.
    h, w_ = full.shapes[0]
    ref0 = full.ref[: h * w_, 0]
    assert np.allclose(ref0[1], [(1 + 0.5) / w_, 0.5 / h])
    assert np.allclose(full.ref, full.ref[:, :1])
    assert full.probs.shape == (full.queries, 8, 4, 4)
    assert np.allclose(full.probs.sum((2, 3)), 1.0)


def test_generator_is_seeded():
    a, b = wl.decoder(queries=50, seed=3), wl.decoder(queries=50, seed=3)
    c = wl.decoder(queries=50, seed=4)
    for name in ("value", "ref", "offsets", "logits"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.offsets, c.offsets)
    assert (a.ref > 0).all() and (a.ref < 1).all()


def test_controls_do_what_they_say():
    flat = wl.decoder(queries=400, seed=0, logit_spread=0.0)
    assert np.allclose(flat.probs, 1 / 16)
    peaky = wl.decoder(queries=400, seed=0, logit_spread=3.0)
    assert peaky.probs.max(axis=(2, 3)).mean() > 0.3
    skew = wl.decoder(queries=400, seed=0, level_bias=(3.0, 0.0, 0.0, 0.0))
    assert skew.probs[:, :, 0].sum(-1).mean() > 0.7
    wide = wl.decoder(queries=400, seed=0, offset_spread=(8.0, 8.0, 8.0, 8.0))
    narrow = wl.decoder(queries=400, seed=0, offset_spread=(1.0, 1.0, 1.0, 1.0))
    assert np.abs(wide.offsets).mean() > 4 * np.abs(narrow.offsets).mean()
    # Per-channel scales vary, and outliers exist.
    peak = np.abs(flat.value).max(0).ravel()
    assert peak.max() > 3 * peak.min()
    spiky = wl.decoder(queries=10, seed=0, outlier_rate=0.01, outlier_gain=50.0)
    assert np.abs(spiky.value).max() > 20 * np.abs(spiky.value).std()


def test_for_config_fits_the_buffers():
    cfg = preset("fpga")
    w = wl.for_config(cfg, "encoder", seed=0)
    cfg.check_shapes(w.shapes)
    assert w.shapes.tolist() == [list(s) for s in cfg.max_shapes]
    assert (w.heads, w.head_dim, w.points) == (cfg.heads, cfg.head_dim, cfg.points)
    with pytest.raises(ValueError, match="does not fit the level buffer"):
        wl.for_config(cfg, "decoder", input_hw=(512, 512), queries=3)
    with pytest.raises(ValueError, match="kind='mixed'"):
        wl.for_config(cfg, "mixed")


def test_file_round_trip(tmp_path):
    w = wl.decoder(queries=20, input_hw=(100, 150), seed=2)
    path = wl.save(w, tmp_path / "sub" / "w.npz")
    back = wl.load(path)
    assert back.name == w.name
    for name in ("value", "shapes", "level_start", "ref", "offsets", "logits"):
        np.testing.assert_array_equal(getattr(back, name), getattr(w, name))
        assert getattr(back, name).dtype == getattr(w, name).dtype


def _spoiled(tmp_path, **changes):
    w = wl.decoder(queries=5, input_hw=(64, 64), seed=0)
    arrays = {
        k: getattr(w, k) for k in ("value", "shapes", "level_start", "ref", "offsets", "logits")
    }
    extra = {"format": np.array(wl.FORMAT), "version": np.array(wl.VERSION)}
    for key, v in changes.items():
        if v is None:
            arrays.pop(key, None)
            extra.pop(key, None)
        elif key in extra:
            extra[key] = v
        else:
            arrays[key] = v(arrays[key]) if callable(v) else v
    path = tmp_path / "bad.npz"
    np.savez(path, **extra, **arrays)
    return path


def _nan_at(a):
    a = a.copy()
    a.flat[3] = np.nan
    return a


BAD_FILES = [
    ("value shape", {"value": lambda a: a[:-1]}, r"'value' must have shape \(Nv=85"),
    ("level start", {"level_start": lambda a: a + 1}, "'level_start'.*inconsistent"),
    (
        "shapes dtype",
        {"shapes": lambda a: a.astype(np.float32)},
        "'shapes' must have an integer dtype",
    ),
    ("value dtype", {"value": lambda a: a.astype(np.int32)}, "'value' must be float32 or float64"),
    ("value NaN", {"value": _nan_at}, "'value' holds NaN or Inf"),
    ("offsets Inf", {"offsets": lambda a: a * np.inf}, "'offsets' holds NaN or Inf"),
    ("logits shape", {"logits": lambda a: a[:, :, :-1]}, r"'logits' must have shape"),
    ("ref range", {"ref": lambda a: a + 2}, r"'ref' must lie in \[0, 1\]"),
    ("ref shape", {"ref": lambda a: a[:, :2]}, r"'ref' must have shape"),
    ("missing", {"logits": None}, r"lacks arrays \['logits'\]"),
    ("foreign", {"format": np.array("other")}, "is not a defa-workload file"),
    ("version", {"version": np.array(7)}, "has version 7; supported: 1"),
    ("extra", {"bogus": np.zeros(2)}, r"unknown arrays \['bogus'\]"),
    ("shapes zero", {"shapes": lambda a: a * 0}, "'shapes' must be >= 1"),
]


@pytest.mark.parametrize("name,changes,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_malformed_files_give_clear_errors(tmp_path, name, changes, message):
    path = _spoiled(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        wl.load(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        wl.load(tmp_path / "nope.npz")
    path = tmp_path / "trunc.npz"
    good = wl.save(wl.decoder(queries=5, input_hw=(64, 64), seed=0), tmp_path / "good.npz")
    path.write_bytes(good.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable .npz"):
        wl.load(path)


def test_generator_argument_errors():
    with pytest.raises(ValueError, match="offset_spread needs one entry per level"):
        wl.encoder(input_hw=(64, 64), offset_spread=(1.0,))
    with pytest.raises(ValueError, match=r"queries=0 is out of range"):
        wl.encoder(input_hw=(64, 64), queries=0)
    with pytest.raises(ValueError, match="input_hw"):
        wl.level_shapes((0, 10))
