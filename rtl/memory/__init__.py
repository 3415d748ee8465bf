"""The memory side: the level units' band windows and their AXI4 reads (burst split, reader,
writer, read arbiter, streamed sampler), and the command interface that runs a layer from
memory (job fetch, output store, region check, run control)."""
