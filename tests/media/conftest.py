"""Fixtures for the media tests; the sample files themselves come from ``tests.media_samples``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# ``tests.media_samples`` is imported by module path: make sure the repository root is importable
# however pytest was started.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path
