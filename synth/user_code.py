"""Importing a user's Python file (custom primitives, hidden programs)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def import_user_file(path: str | Path, module_name: str, what: str) -> ModuleType:
    """Run ``path`` as module ``module_name``; any error is a ValueError naming the file.

    ``what`` says what the file was for, e.g. "primitives"."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's file: say what broke, not our traceback
        raise ValueError(f"could not load {what} from {path}: "
                         f"{type(err).__name__}: {err}") from None
    return module
