"""``nocrud images export`` / ``import``: the archive's manifest, and loading only what is missing.

The daemon is a stand-in (the one Docker seam); the archives are real tar files shaped
like ``docker save`` output.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests

from nocrud.errors import InfrastructureError, UsageError
from nocrud.worker.images import archived_images, import_images


def archive(path: Path, manifest: Any) -> Path:
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


MANIFEST = [
    {"Config": "blobs/sha256/aaa", "RepoTags": ["nocrud/demo-app:1", "demo:latest"]},
    {"Config": "bbb.json", "RepoTags": ["nocrud/demo-db:2"]},
]


class Daemon:
    """What import_images asks of a Docker client: image ids by tag, and load."""

    def __init__(self, present: dict[str, str], fail: bool = False) -> None:
        self.present = present
        self.loaded = 0
        self.fail = fail
        self.images = self

    def get(self, ref: str) -> Any:
        import docker.errors

        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return type("Image", (), {"id": self.present[ref]})()

    def load(self, chunks: Any) -> None:
        if self.fail:
            raise requests.ReadTimeout("read timed out")
        self.loaded += sum(len(c) for c in chunks) > 0


def test_the_manifest_gives_each_tag_its_image_id(tmp_path: Path) -> None:
    found = archived_images(archive(tmp_path / "a.tar", MANIFEST))
    assert found == {
        "nocrud/demo-app:1": "sha256:aaa",
        "demo:latest": "sha256:aaa",
        "nocrud/demo-db:2": "sha256:bbb",
    }


def test_a_file_that_is_not_an_archive_says_how_to_make_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_text("not a tar")
    with pytest.raises(UsageError, match=r"bad.tar: not an image archive.*nocrud images export"):
        archived_images(bad)
    with pytest.raises(UsageError, match=r"no manifest\.json list"):
        archived_images(archive(tmp_path / "odd.tar", {"not": "a list"}))


def test_import_loads_only_when_something_is_missing(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.tar", MANIFEST)
    everything = {"nocrud/demo-app:1": "sha256:aaa", "demo:latest": "sha256:aaa"}
    full = Daemon({**everything, "nocrud/demo-db:2": "sha256:bbb"})
    report = import_images(full, path)
    assert (report.loaded, full.loaded) == ((), 0)
    partial = Daemon({**everything, "nocrud/demo-db:2": "sha256:old"})
    report = import_images(partial, path)
    assert report.loaded == ("nocrud/demo-db:2",)
    assert report.present == ("demo:latest", "nocrud/demo-app:1")
    assert partial.loaded == 1


def test_a_daemon_that_fails_to_load_is_an_infrastructure_error(tmp_path: Path) -> None:
    path = archive(tmp_path / "a.tar", MANIFEST)
    with pytest.raises(InfrastructureError, match=r"loading .*a.tar into the Docker daemon failed"):
        import_images(Daemon({}, fail=True), path)
