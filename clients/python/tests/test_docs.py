"""Every public class, function and method of the package says what it is
for: `help()` and IDEs show these docstrings as the API documentation."""

from __future__ import annotations

import inspect
from types import ModuleType

import prism_client
import prism_client.auth


def undocumented(module: ModuleType) -> list[str]:
    missing = []
    for name in module.__all__:
        item = getattr(module, name)
        if not (inspect.isclass(item) or inspect.isfunction(item)):
            continue
        if not (item.__doc__ or "").strip():
            missing.append(f"{module.__name__}.{name}")
        if not inspect.isclass(item):
            continue
        for member, value in vars(item).items():
            if member.startswith("_") or not callable(value) and not isinstance(value, property):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if not (getattr(value, "__doc__", None) or "").strip():
                missing.append(f"{module.__name__}.{name}.{member}")
    return missing


def test_the_public_api_has_docstrings() -> None:
    missing = undocumented(prism_client) + undocumented(prism_client.auth)
    assert not missing, f"no docstring: {missing}"
