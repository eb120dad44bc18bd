"""A stored item's after-read check is one attribute look-up, not a runtime protocol check
(``isinstance`` with a runtime-checkable ``Protocol`` walks its members: about 5 us an item,
under the GIL, in every backup thread); counted, not timed."""

from __future__ import annotations

import io
import os
import typing
from pathlib import Path

import pytest

from keepstone.proxy.backup import _changed_while_read
from keepstone.sources.confined import OpenedFile


@pytest.mark.parametrize("items", [5, 20], ids=["N", "4N"])
def test_the_check_after_reading_makes_no_protocol_check(
    items: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[type] = []
    real = type(typing.Protocol).__instancecheck__

    def counting(cls: type, instance: object) -> bool:
        checks.append(cls)
        return bool(real(cls, instance))

    monkeypatch.setattr(type(typing.Protocol), "__instancecheck__", counting)
    changed = []
    for n in range(items):
        path = tmp_path / f"m{n}"
        path.write_bytes(b"x" * 100)
        fd = os.open(path, os.O_RDONLY)
        with OpenedFile(fd, os.fstat(fd), str(path)) as stream:
            stream.read()
            changed.append(_changed_while_read(stream, 100))
            changed.append(_changed_while_read(stream, 99))  # fewer bytes than it had
        changed.append(_changed_while_read(io.BytesIO(b"plain"), 5))  # not watched
    assert changed == [False, True, False] * items
    assert checks == []
