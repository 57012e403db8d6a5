"""One registry mechanism shared by hosts and tasks (and anything else that is looked up by name).

Modelled on lm-evaluation-harness' ``Registry[T]`` and timm's model registry:

* typed: a registry holds objects of one base type (checked when an entry is materialised);
* lazy: an entry may be a ``"package.module:attr"`` string, imported on first use, so listing the
  registry never imports heavy code (transformers, spaCy, ...);
* aliases: several names resolve to one entry;
* helpful errors: an unknown name raises :class:`UnknownNameError` with "did you mean ..." suggestions;
* listing with metadata (a small dict per entry, readable without importing the entry);
* entry points: a package outside this repository registers an entry through the Python entry-point
  group ``finsta.<registry name>`` (for example ``finsta.hosts``), without editing this repository::

      [project.entry-points."finsta.hosts"]
      myhost = "my_pkg.hosts:MyHostSpec"

It lives in ``finsta_core`` because ``hosts`` and ``tasks`` may import ``finsta_core`` but not each
other nor ``harness`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence
        return str(self.args[0]) if self.args else ""


class RegistryError(RuntimeError):
    """Raised for a conflicting registration or an entry that fails to load."""


@dataclass
class _Entry:
    name: str
    target: Any  # the object, or "module:attr" for a lazy entry
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A named collection of objects of type ``base`` (classes or instances, see ``instances``).

    Args:
        name: registry name; also the entry-point group suffix (``finsta.<name>``).
        base: the type entries must be (instances of, or subclasses of when ``instances=False``).
        instances: whether entries are instances of ``base`` (True) or subclasses (False).
    """

    def __init__(self, name: str, base: type | None = None, instances: bool = True) -> None:
        self.name = name
        self.base = base
        self.instances = instances
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False
        self._frozen = False

    # ------------------------------------------------------------------ registration
    def register(
        self,
        name: str,
        target: Any = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        overwrite: bool = False,
        **meta: Any,
    ) -> Any:
        """Register ``target`` under ``name``; usable as a decorator when ``target`` is omitted.

        ``target`` may be the object itself or a lazy ``"module:attr"`` string. ``meta`` is free-form
        metadata shown by :meth:`list` without materialising the entry.
        """
        if target is None:

            def decorator(obj: Any) -> Any:
                self.register(name, obj, aliases=aliases, overwrite=overwrite, **meta)
                return obj

            return decorator
        key = self._normalise(name)
        if self._frozen:
            raise RegistryError(f"registry '{self.name}' is frozen; cannot register '{name}'")
        if not overwrite and (key in self._entries or key in self._aliases):
            raise RegistryError(f"'{name}' is already registered in '{self.name}' (pass overwrite=True)")
        if isinstance(target, str) and ":" not in target:
            raise RegistryError(f"lazy entry for '{name}' must look like 'module:attr', got '{target}'")
        self._entries[key] = _Entry(key, target, dict(meta))
        for alias in aliases:
            self.alias(alias, key, overwrite=overwrite)
        return target

    def alias(self, alias: str, name: str, *, overwrite: bool = False) -> None:
        """Make ``alias`` resolve to the registered ``name``."""
        a, n = self._normalise(alias), self._normalise(name)
        if not overwrite and (a in self._entries or a in self._aliases):
            raise RegistryError(f"alias '{alias}' already used in '{self.name}'")
        self._aliases[a] = n

    def freeze(self) -> None:
        """Forbid further registrations (useful once a run has been planned)."""
        self._frozen = True

    # ------------------------------------------------------------------ lookup
    def resolve(self, name: str) -> str:
        """Canonical name for ``name`` or an alias of it; raises :class:`UnknownNameError`."""
        self._load_entry_points()
        key = self._normalise(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(self._unknown_message(name))
        return key

    def get(self, name: str) -> T:
        """The registered object (importing a lazy entry on first use)."""
        entry = self._entries[self.resolve(name)]
        if isinstance(entry.target, str):
            entry.target = self._import(entry.name, entry.target)
            self._check_type(entry.name, entry.target)
        return entry.target

    __getitem__ = get

    def meta(self, name: str) -> dict[str, Any]:
        """Metadata given at registration (no import)."""
        return dict(self._entries[self.resolve(name)].meta)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.resolve(name)
        except UnknownNameError:
            return False
        return True

    def names(self) -> list[str]:
        """Sorted canonical names (entry points included)."""
        self._load_entry_points()
        return sorted(self._entries)

    def aliases_of(self, name: str) -> list[str]:
        key = self.resolve(name)
        return sorted(a for a, n in self._aliases.items() if n == key)

    def list(self) -> list[dict[str, Any]]:
        """One dict per entry: ``name``, ``aliases`` and the registration metadata."""
        return [{"name": n, "aliases": self.aliases_of(n), **self._entries[n].meta} for n in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _normalise(name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise RegistryError(f"registry names must be non-empty strings, got {name!r}")
        return name.strip().lower()

    def _unknown_message(self, name: str) -> str:
        known = sorted(set(self._entries) | set(self._aliases))
        close = difflib.get_close_matches(self._normalise(name), known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.name.rstrip('s')} '{name}'{hint} (known: {', '.join(sorted(self._entries))})"

    def _import(self, name: str, target: str) -> Any:
        module_name, _, attr = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as err:
            raise RegistryError(f"{self.name} entry '{name}' -> '{target}' failed to load: {err}") from err
        return obj

    def _check_type(self, name: str, obj: Any) -> None:
        if self.base is None:
            return
        ok = isinstance(obj, self.base) if self.instances else (
            isinstance(obj, type) and issubclass(obj, self.base)
        )
        if not ok and callable(obj) and not isinstance(obj, type):
            return  # factory functions are allowed; their result is checked by the caller
        if not ok:
            raise RegistryError(f"{self.name} entry '{name}' is {obj!r}, expected a {self.base.__name__}")

    def _load_entry_points(self) -> None:
        """Register entries advertised by installed packages under group ``finsta.<name>``."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=f"finsta.{self.name}"):
            key = self._normalise(ep.name)
            if key not in self._entries:
                self._entries[key] = _Entry(key, ep.value, {"source": f"entry point {ep.value}"})

