"""Gradient specifications of the linalg family (see op_specs.py: the strategies and the Case/Edge/OpSpec types)."""

from __future__ import annotations

from op_specs import OpSpec

LINALG_SPECS: list[OpSpec] = []
