"""One method of a faust class replaced by Tawasul's, reversibly (the guards against faust bugs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class MethodPatch:
    """`install()` puts `replacement` in place of `owner.name` (idempotent), `uninstall()` puts
    the original back (for the tests that show the upstream behaviour)."""

    __slots__ = ("owner", "name", "replacement", "original")

    def __init__(self, owner: type, name: str, replacement: Callable[..., Any]) -> None:
        self.owner, self.name, self.replacement = owner, name, replacement
        self.original: Callable[..., Any] | None = None

    def install(self) -> None:
        if self.original is None:
            self.original = getattr(self.owner, self.name)
            setattr(self.owner, self.name, self.replacement)

    def uninstall(self) -> None:
        if self.original is not None:
            setattr(self.owner, self.name, self.original)
            self.original = None
