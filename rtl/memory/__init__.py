"""The memory side of the accelerator: AXI4 masters (and, as they arrive, the level windows'
refill engines and the command interface). The rest of ``rtl/`` moves into subpackages by
domain as its blocks grow (docs/DESIGN.md, Growing rtl/)."""
