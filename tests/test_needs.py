"""Missing oracles and tools fail the tests that need them, unless explicitly allowed."""

import sys

import needs
import pytest


def test_a_missing_oracle_fails(monkeypatch):
    monkeypatch.delenv(needs.OPT_OUT, raising=False)
    monkeypatch.setitem(sys.modules, "torch_ms_deform_attn", None)  # import raises ImportError
    with pytest.raises(pytest.fail.Exception, match="torch_ms_deform_attn.*DEFA_ALLOW_MISSING"):
        needs.oracle("torch_ms_deform_attn")
    monkeypatch.setenv(needs.OPT_OUT, "transformers")  # another one allowed: still fails
    with pytest.raises(pytest.fail.Exception):
        needs.oracle("torch_ms_deform_attn")


def test_an_allowed_missing_oracle_skips(monkeypatch):
    monkeypatch.setitem(sys.modules, "defa_absent_oracle", None)  # import raises ImportError
    for allowed in ("defa_absent_oracle", "torch,defa_absent_oracle", "all"):
        monkeypatch.setenv(needs.OPT_OUT, allowed)
        with pytest.raises(pytest.skip.Exception):
            needs.oracle("defa_absent_oracle.models.layer")


def test_a_missing_tool_fails_unless_allowed(monkeypatch):
    monkeypatch.delenv(needs.OPT_OUT, raising=False)
    monkeypatch.setattr(needs.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="gcc"):
        needs.tool("gcc")
    monkeypatch.setenv(needs.OPT_OUT, "gcc")
    with pytest.raises(pytest.skip.Exception):
        needs.tool("gcc")


def test_present_ones_are_returned(monkeypatch):
    monkeypatch.delenv(needs.OPT_OUT, raising=False)
    assert needs.oracle("json").dumps([]) == "[]"
    assert needs.tool("sh").endswith("sh")
