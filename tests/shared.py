"""The one place tests find ../shared (read-only data beside the project)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    candidates = [os.environ.get("SIEVE_SHARED"), ROOT.parent / "shared"]
    for c in candidates:
        if c and Path(c, "fixtures").is_dir():
            return Path(c)
    raise RuntimeError(
        f"The shared data folder was not found (looked for {ROOT.parent / 'shared'}; set SIEVE_SHARED "
        "to its path). Tests read real export files and datasets from it and cannot run without it."
    )


def shared(*parts) -> Path:
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        raise RuntimeError(f"Shared file missing: {path}")
    return path
