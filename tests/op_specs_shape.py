"""Gradient specifications of the shape family (see op_specs.py: the strategies and the Case/Edge/OpSpec types)."""

from __future__ import annotations

from op_specs import OpSpec

SHAPE_SPECS: list[OpSpec] = []
