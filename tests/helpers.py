"""Helpers for tests that read the published data under ``$SYNTH_DATA_DIR``."""
import os
from pathlib import Path

import pytest


def data_file(*parts: str) -> Path:
    """A data file: skipped without SYNTH_DATA_DIR, a failure when it is set and the file is missing."""
    root = os.environ.get("SYNTH_DATA_DIR")
    if not root:
        pytest.skip("SYNTH_DATA_DIR is not set")
    path = Path(root, *parts)
    if not path.is_file():
        pytest.fail(f"{path} is missing, though SYNTH_DATA_DIR is set")
    return path
