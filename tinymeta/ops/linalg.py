"""Linear algebra as ``numpy.linalg`` has it (used as ``tinymeta.linalg.solve`` and so on)."""

from __future__ import annotations

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__: list[str] = []
