"""Gradient specifications of convolution and pooling options (see op_specs.py: the strategies and the Case/Edge/OpSpec types)."""

from __future__ import annotations

from op_specs import OpSpec

CONV_SPECS: list[OpSpec] = []
