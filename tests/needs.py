"""What a test needs from outside the project: an oracle package or a tool. A missing one
fails the test (an oracle that silently skips proves nothing) unless it is named in the
explicit opt-out ``DEFA_ALLOW_MISSING`` (comma-separated names, or ``all``): then it skips."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest

OPT_OUT = "DEFA_ALLOW_MISSING"


def _allowed(name: str) -> bool:
    names = {n.strip() for n in os.environ.get(OPT_OUT, "").split(",")}
    return "all" in names or name in names


def _missing(name: str, what: str):
    message = f"{what}; `make test` installs it (or set {OPT_OUT}={name} to skip)"
    if _allowed(name):
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def oracle(module: str):
    """Import ``module`` (an independent oracle, e.g. ``torch_ms_deform_attn``)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        _missing(module.split(".")[0], f"oracle {module!r} is not importable ({e})")


def tool(name: str) -> str:
    """The path of command ``name`` (e.g. ``gcc``)."""
    path = shutil.which(name)
    if path is None:
        _missing(name, f"tool {name!r} is not on PATH")
    return path
