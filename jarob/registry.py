"""Name -> implementation registries that fill themselves.

A method registers itself where it is defined (`@LEARNERS.register("qmix", QMixConfig)`), and a
registry imports every module of its package the first time it is asked for a name, so adding a
method is a new module (plus its YAML file) and edits no list of names anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


class Registry:
    """Implementations of one kind of part (team learners, adversaries, regularizers), each with
    the config dataclass it owns."""

    def __init__(self, kind: str, packages: tuple[str, ...]):
        self.kind = kind
        self.packages = packages
        self._entries: dict[str, tuple[Any, type]] = {}
        self._loaded = False

    def register(self, name: str, config: type):
        """Class decorator: `name` resolves to the class and its config dataclass `config`."""

        def add(cls):
            if name in self._entries and self._entries[name][0] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = (cls, config)
            return cls

        return add

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for package in self.packages:
            pkg = importlib.import_module(package)
            for info in pkgutil.iter_modules(pkg.__path__):
                importlib.import_module(f"{package}.{info.name}")

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(sorted(self._entries))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def get(self, name: str):
        """The class registered as `name`; KeyError naming the allowed ones otherwise."""
        self._load()
        if name not in self._entries:
            raise KeyError(f"{self.kind}: unknown {name!r}; allowed: {', '.join(self.names())}")
        return self._entries[name][0]

    def config(self, name: str) -> type:
        """The config dataclass the implementation registered as `name` owns."""
        self.get(name)
        return self._entries[name][1]
