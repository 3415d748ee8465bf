"""The MSDA core: softmax, PAP dispatcher, level units (buffer, sampler, FWP map), aggregator."""
