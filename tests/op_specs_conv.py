"""Gradient specifications of convolution and pooling options (strategies and types: op_specs.py)."""

from __future__ import annotations

from op_specs import OpSpec

CONV_SPECS: list[OpSpec] = []
