"""Shared test fixtures: where the workplace's shared data lies."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JASCO_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "fixtures" / "jasco-golden" / "chords_drums"
CHORDS_DEV = SHARED / "data" / "chords-dev"


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.skip(f"golden fixtures not found at {GOLDEN} (set JASCO_SHARED)")
    return GOLDEN


@pytest.fixture(scope="session")
def chord_pkl(golden_dir) -> Path:
    return golden_dir / "chord_to_index_mapping.pkl"


@pytest.fixture(scope="session")
def chords_dev_dir() -> Path:
    if not CHORDS_DEV.is_dir():
        pytest.skip(f"chords-dev data not found at {CHORDS_DEV} (set JASCO_SHARED)")
    return CHORDS_DEV
