"""`nocrud clean` stays inside the current project unless told otherwise (issue 13 item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from nocrud.docker import cleanup


class _Thing:
    def __init__(self, name: str, labels: dict[str, str], removed: list[str]) -> None:
        self.name = name
        self.labels = labels
        self.attrs = {"Labels": labels, "Containers": {}}
        self.tags = [name]
        self._removed = removed

    def remove(self, **_kwargs: object) -> None:
        self._removed.append(self.name)

    def reload(self) -> None:
        pass


class _Listing:
    """Lists everything, ignoring filters: the sweep's own check must hold the line."""

    def __init__(self, things: list[_Thing], removed: list[str]) -> None:
        self.things = things
        self._removed = removed
        self.filters: list[Any] = []

    def list(self, **kwargs: Any) -> list[_Thing]:
        self.filters.append(kwargs.get("filters"))
        return self.things

    def remove(self, tag: str, **_kwargs: object) -> None:
        self._removed.append(tag)


class _Daemon:
    def __init__(self) -> None:
        self.removed: list[str] = []
        gone = "elsewhere:1:1"

        def labels(project: str) -> dict[str, str]:
            return {
                cleanup.LABEL_RUN: "r",
                cleanup.LABEL_OWNER: gone,
                cleanup.LABEL_PROJECT: project,
            }

        self.containers = _Listing(
            [
                _Thing("shop-app", labels("shop"), self.removed),
                _Thing("blog-app", labels("blog"), self.removed),
            ],
            self.removed,
        )
        self.networks = _Listing(
            [
                _Thing("shop-net", labels("shop"), self.removed),
                _Thing("blog-net", labels("blog"), self.removed),
            ],
            self.removed,
        )
        image = {cleanup.LABEL_IMAGE_KEY: "k"}
        self.images = _Listing(
            [
                _Thing("nocrud/shop-db:1", {**image, cleanup.LABEL_PROJECT: "shop"}, self.removed),
                _Thing("nocrud/blog-db:1", {**image, cleanup.LABEL_PROJECT: "blog"}, self.removed),
            ],
            self.removed,
        )


def test_clean_of_one_project_leaves_the_other_projects_objects() -> None:
    daemon = _Daemon()
    report = cleanup.sweep(daemon, kept=True, live=True, project="shop")  # type: ignore[arg-type]
    assert daemon.removed == ["shop-app", "shop-net"]
    assert (report.containers, report.networks) == (1, 1)
    # Docker is asked for the project's label too, not only the sweep's own check.
    assert daemon.containers.filters[0] == {
        "label": [cleanup.LABEL_RUN, f"{cleanup.LABEL_PROJECT}=shop"]
    }


@pytest.mark.parametrize(
    ("project", "removed"),
    [("shop", ["nocrud/shop-db:1"]), (None, ["nocrud/shop-db:1", "nocrud/blog-db:1"])],
)
def test_cached_images_are_removed_for_the_project_or_all_when_asked(
    project: str | None, removed: list[str]
) -> None:
    daemon = _Daemon()
    assert cleanup.remove_cached_images(daemon, project) == len(removed)  # type: ignore[arg-type]
    assert daemon.removed == removed


def test_reaching_every_project_is_the_explicit_choice() -> None:
    daemon = _Daemon()
    cleanup.sweep(daemon, kept=True, live=True)  # type: ignore[arg-type]
    assert daemon.removed == ["shop-app", "blog-app", "shop-net", "blog-net"]
