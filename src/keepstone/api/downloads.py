"""Items of a restore session as HTTP downloads, the same for the API's saves and the
console's: one item streamed as it is read, several as a zip file written first."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, StreamingResponse

from keepstone.engine import Item
from keepstone.services import restores
from keepstone.services.auth import Principal
from keepstone.services.context import Context


def item_download(item: Item, chunks: Iterator[bytes]) -> StreamingResponse:
    """A message as ``.eml``, a file as itself (``restores.stream_item``'s answer)."""
    media = "message/rfc822" if item.kind == "mail" else "application/octet-stream"
    name = quote(restores.save_name(item), safe="")
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
            "Content-Length": str(item.size),
        },
    )


def zip_download(
    ctx: Context, session_id: str, owner_id: str, ids: list[str], caller: Principal
) -> FileResponse:
    """The owner's items ``ids`` as one zip file, saved by ``caller`` (``restores.write_zip``);
    the file is removed once sent, or at once when the save is refused."""
    target = Path(tempfile.mkstemp(suffix=".zip")[1])
    try:
        restores.write_zip(
            ctx, session_id, owner_id, ids, target, by=caller.user_name, caller=caller
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return FileResponse(
        target,
        media_type="application/zip",
        filename="restore.zip",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )
