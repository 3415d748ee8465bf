"""The fused layer around the core: the projection units (value, offsets, attention logits,
output) that DEFA's fused attention PEs compute on chip."""
