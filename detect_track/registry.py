"""A name -> factory registry with helpful errors (used for detectors and trackers)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from detect_track.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories registered by name; an unknown name raises a ConfigError listing valid ones.

    Args:
        kind: What is registered (``"detector"``, ``"tracker"``), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator adding a factory under ``name``."""

        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return wrap

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def create(self, name: str, *args: Any) -> T:
        """Call the factory registered under ``name`` with ``args``.

        Raises:
            ConfigError: If ``name`` is not registered (with the nearest valid name).
        """
        if name not in self._factories:
            close = difflib.get_close_matches(name, list(self._factories), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}'{hint} (available: {', '.join(self.names())})"
            )
        return self._factories[name](*args)
