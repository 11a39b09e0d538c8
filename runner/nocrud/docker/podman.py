"""Which engine answers the Docker API: Docker's daemon or Podman's compatible service.

nocrud speaks the Docker API to both. Where Podman's compat API differs, the code that
meets the difference handles it in place (``docker top``'s argument form in
:mod:`nocrud.docker.resources`, pulls answered 200 in :mod:`nocrud.docker.reaper`);
this module only names the engine and its mode, for ``nocrud doctor`` and the
benchmarks, from the answers to ``/version`` and ``/info`` a caller already has.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EngineKind", "engine_kind", "is_podman"]

#: The ``/version`` component Podman's service names itself with.
PODMAN_COMPONENT = "Podman Engine"


@dataclass(frozen=True)
class EngineKind:
    """The engine behind the Docker API.

    Attributes:
        name: ``Docker`` or ``Podman``.
        version: The engine's own version (Podman's, not the API's).
        rootless: True when it runs as an unprivileged user; None when it did not say.
    """

    name: str
    version: str
    rootless: bool | None

    @property
    def podman(self) -> bool:
        return self.name == "Podman"

    def describe(self) -> str:
        """``Podman 4.3.1, rootful`` (the mode only when the engine told it)."""
        mode = {True: ", rootless", False: ", rootful", None: ""}[self.rootless]
        return f"{self.name} {self.version}{mode}"


def engine_kind(version: Mapping[str, Any], info: Mapping[str, Any]) -> EngineKind:
    """Name the engine from its ``/version`` and ``/info`` answers.

    Podman lists a ``Podman Engine`` component in ``/version`` and says ``Rootless`` in
    ``/info``; Docker lists ``Engine`` and marks rootless mode in ``SecurityOptions``.
    """
    components = version.get("Components") or []
    for component in components:
        if isinstance(component, Mapping) and component.get("Name") == PODMAN_COMPONENT:
            rootless = info.get("Rootless")
            return EngineKind(
                "Podman",
                str(component.get("Version") or version.get("Version", "?")),
                rootless if isinstance(rootless, bool) else None,
            )
    options = info.get("SecurityOptions")
    rootless_docker = None
    if isinstance(options, list):
        rootless_docker = any("name=rootless" in str(option) for option in options)
    return EngineKind("Docker", str(version.get("Version", "?")), rootless_docker)


_known: dict[str, bool] = {}
_known_lock = threading.Lock()


def is_podman(client: Any) -> bool:
    """Whether ``client`` talks to Podman; one ``/version`` call per engine and process."""
    key = str(client.api.base_url)
    with _known_lock:
        if key in _known:
            return _known[key]
    answer = engine_kind(client.version(), {}).podman
    with _known_lock:
        _known[key] = answer
    return answer
