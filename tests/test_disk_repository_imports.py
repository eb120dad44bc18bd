"""A run or a restore of a repository on disk never loads the S3 client: importing
``services.object_storage`` (botocore) took about 0.2 s, a sixth of the bench's 1 % incremental
in a proxy's first run (issue 15)."""

from __future__ import annotations

import sys

import pytest

import keepstone.services
from keepstone.proxy.channel import place_of
from keepstone.services import catalog, vault
from keepstone.services.context import Context


def test_a_repository_on_disk_is_reached_without_the_object_storage_module(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = catalog.list_repositories(ctx)[0]
    # Importing the module now raises, wherever it is imported from.
    monkeypatch.setitem(sys.modules, "keepstone.services.object_storage", None)
    monkeypatch.delattr(keepstone.services, "object_storage", raising=False)
    assert not catalog.in_object_storage(ctx, repository.id)
    place = place_of(ctx, repository.id, repository.path)
    assert place.s3 is None and place.path == repository.path
    assert vault.open_repository(ctx, repository.id, repository.path).snapshots() == []
