"""The accelerator's RTL (Amaranth), by domain:

* ``rtl.core``: the MSDA core (softmax, PAP dispatcher, level units with their buffers,
  samplers and FWP maps, aggregator) and the layouts its blocks share;
* ``rtl.memory``: the maps in external memory (band windows, AXI4 masters, read arbiter) and
  the command interface that runs layers from memory (job fetch, output store, run control);
* ``rtl.link``: the register bank and the UART host link a board carries;
* ``rtl.lib``: building blocks (block RAM/ROM, multipliers, queues, credits, inboxes, stages);
* ``rtl.top``: the accelerator's top level (the core with its registers, or with its memory).
"""
