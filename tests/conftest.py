"""Test configuration: hypothesis profiles and the backend switch.

- ``HYPOTHESIS_PROFILE=ci`` (the default) runs a fixed, small number of examples per property so
  the whole suite fits in a few minutes on 2 cores; ``HYPOTHESIS_PROFILE=dev`` runs many more.
- ``TINYMETA_BACKEND=cupy pytest`` runs the same suite with every tensor on the GPU (tests create
  their tensors with ``tinymeta.tensor``, which follows that variable). Without CuPy or a GPU,
  every test is skipped with the reason.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tinymeta import backend

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKEND = os.environ.get("TINYMETA_BACKEND", "numpy")


def pytest_report_header(config: pytest.Config) -> str:
    return f"tinymeta backend: {BACKEND}; hypothesis profile: {settings.get_current_profile_name()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "numpy":
        return
    if BACKEND != "cupy":
        raise pytest.UsageError(f"TINYMETA_BACKEND={BACKEND!r}: expected 'numpy' or 'cupy'")
    reason = backend.cupy_unavailable_reason()
    if reason is not None:
        skip = pytest.mark.skip(reason=f"TINYMETA_BACKEND=cupy but {reason}")
        for item in items:
            item.add_marker(skip)
