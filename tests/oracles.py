"""transformers' Deformable DETR attention layer as an oracle: run with given float weights, or
built by transformers itself from a config (its own initialization)."""

from __future__ import annotations

import os

import numpy as np
from needs import oracle

from sim import golden

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _modeling():
    return oracle("transformers.models.deformable_detr.modeling_deformable_detr")


def _config(d_model: int, heads: int, levels: int, points: int):
    return oracle("transformers").DeformableDetrConfig(
        d_model=d_model,
        encoder_attention_heads=heads,
        num_feature_levels=levels,
        encoder_n_points=points,
        encoder_layers=1,
        encoder_ffn_dim=2 * d_model,
        disable_custom_kernels=True,  # the pure-PyTorch op, not a compiled kernel
    )


def _linears(layer):
    return (layer.value_proj, layer.sampling_offsets, layer.attention_weights, layer.output_proj)


def built_layer(d_model: int, heads: int, levels: int, points: int, seed: int):
    """The attention of layer 0 of a ``DeformableDetrEncoder`` that transformers builds and
    initializes from a config (``torch.manual_seed(seed)``)."""
    torch = oracle("torch")
    torch.manual_seed(seed)
    encoder = _modeling().DeformableDetrEncoder(_config(d_model, heads, levels, points))
    return encoder.layers[0].self_attn.double().eval()


def params_of(layer) -> golden.LayerParams:
    """A transformers attention layer's weights as ``golden.LayerParams`` (x @ W + b)."""
    value, offset, attention, output = (
        (lin.weight.detach().double().numpy().T.copy(), lin.bias.detach().double().numpy().copy())
        for lin in _linears(layer)
    )
    return golden.LayerParams(
        heads=layer.n_heads,
        levels=layer.n_levels,
        points=layer.n_points,
        value_w=value[0],
        value_b=value[1],
        offset_w=offset[0],
        offset_b=offset[1],
        attention_w=attention[0],
        attention_b=attention[1],
        output_w=output[0],
        output_b=output[1],
    )


def layer_with(params: golden.LayerParams, dtype=np.float64):
    """transformers' attention layer carrying ``params``' weights, in ``dtype``."""
    torch = oracle("torch")
    config = _config(params.d_model, params.heads, params.levels, params.points)
    layer = _modeling().DeformableDetrMultiscaleDeformableAttention(
        config, num_heads=params.heads, n_points=params.points
    )
    layer = layer.to(torch.float64 if dtype == np.float64 else torch.float32).eval()
    weights = (
        (params.value_w, params.value_b),
        (params.offset_w, params.offset_b),
        (params.attention_w, params.attention_b),
        (params.output_w, params.output_b),
    )
    with torch.no_grad():
        for linear, (w, b) in zip(_linears(layer), weights, strict=True):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(b))
    return layer


def run(layer, query, ref, x, shapes) -> np.ndarray:
    """The layer's output (Nq, C) as float64 for one image: query (Nq, C) with positions
    added, ref (Nq, L, 2), x (Nv, C)."""
    torch = oracle("torch")
    dtype = next(layer.parameters()).dtype
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a[None])).to(dtype)  # noqa: E731
    shapes = np.asarray(shapes, dtype=np.int64)
    with torch.no_grad():
        out, _ = layer(
            hidden_states=t(query),
            encoder_hidden_states=t(x),
            reference_points=t(ref),
            spatial_shapes=torch.from_numpy(shapes),
            spatial_shapes_list=[tuple(int(v) for v in s) for s in shapes],
            level_start_index=torch.from_numpy(golden.level_start_of(shapes)),
        )
    return out[0].double().numpy()
