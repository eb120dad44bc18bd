"""``keepstone repo ...`` and ``keepstone restore ...``: repository upkeep and restores from a
terminal, on the catalog of a data directory (a running server may share it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keepstone.cli.common import DatabaseOption, DataDir, console, context, fail, operator, say
from keepstone.domain.errors import KeepstoneError, NotFound
from keepstone.domain.names import safe_component
from keepstone.services import catalog, maintenance, restore_points, restores
from keepstone.services.context import Context
from keepstone.services.save_tree import SaveTree, stamp
from keepstone.store.tables import Repository

if TYPE_CHECKING:
    from rich.progress import Progress

repo_app = typer.Typer(
    help="Attach, verify and apply retention to repositories.", no_args_is_help=True
)
restore_app = typer.Typer(
    help="List restore points, save items, put items back.", no_args_is_help=True
)


def find_repository(ctx: Context, which: str) -> Repository:
    """A repository by id, name or path."""
    for row in catalog.list_repositories(ctx):
        if which in (row.id, row.name) or Path(which).resolve() == Path(row.path):
            return row
    raise NotFound(f"no repository has the id, name or path '{which}'")


def bytes_progress() -> Progress:
    # Rich's progress bars and tables are imported where they are shown: every command, and
    # ``keepstone serve`` above all, imported them (0.01 s of a start) for the few that show them.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console(),
        transient=True,
    )


@repo_app.command("attach")
def attach(
    path: Path,
    name: Annotated[str | None, typer.Option(help="Name in the catalog.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register an existing repository directory and bring back its restore points."""
    try:
        row, found = maintenance.attach(
            context(data_dir, database_url), str(path.resolve()), name or path.name
        )
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Attached repository '{row.name}' ({row.id}) with {found} restore points")


@repo_app.command("verify")
def verify(
    repository: Annotated[str, typer.Argument(help="Id, name or path.")],
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Read everything back and check every hash; exits 1 when anything is damaged."""
    ctx = context(data_dir, database_url)
    try:
        row = find_repository(ctx, repository)
        with bytes_progress() as bar:
            task = bar.add_task(f"Verifying {row.name}", total=None)
            result = maintenance.verify(
                ctx, row.id, lambda done, total: bar.update(task, completed=done, total=total)
            )
    except KeepstoneError as error:
        raise fail(error) from None
    if result.ok:
        say(f"Repository '{row.name}' is intact: {result.checked_bytes} bytes checked")
        return
    say(f"Repository '{row.name}' is DAMAGED")
    for pack in result.damaged_packs:
        say(f"  damaged pack {pack}")
    for point, key in result.damaged_items:
        say(f"  damaged item {key} in restore point {point}")
    raise typer.Exit(1)


@repo_app.command("retention")
def retention(
    repository: Annotated[str, typer.Argument(help="Id, name or path.")],
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Apply the repository's retention policy now, then free unreferenced data."""
    ctx = context(data_dir, database_url)
    try:
        result = maintenance.apply_retention(ctx, find_repository(ctx, repository).id)
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Removed {result.removed_restore_points} restore points, freed {result.freed_bytes} bytes")


@restore_app.command("points")
def points(
    job: Annotated[str | None, typer.Option(help="Only this job's (id).")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """List restore points, newest first."""
    from rich.table import Table  # here: see bytes_progress
    from rich.text import Text

    table = Table("Id", "Taken (UTC)", "Items", "Job")
    for point in restore_points.list_points(context(data_dir, database_url), job_id=job):
        table.add_row(
            point.id,
            f"{point.backup_time:%Y-%m-%d %H:%M:%S}",
            str(point.item_count),
            Text(point.job_id or ""),
        )
    console().print(table)


@restore_app.command("save")
def save(
    point: Annotated[str, typer.Argument(help="Restore point id.")],
    user: Annotated[str, typer.Option(help="Whose items.")],
    to: Annotated[Path, typer.Option(help="Directory to write them into.")],
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write a user's items of a restore point into a directory: messages as .eml files."""
    ctx = context(data_dir, database_url)
    try:
        session = _session_on(ctx, point)
        view = restores.browser(ctx, session)
        # Folder items are a source's state for its next run (no content): never saved. The
        # user's items only: the point's trees are read one at a time, not kept.
        items = [item for item in view.each_item([user]) if item.kind != "folder"]
        if not items:
            raise NotFound(f"user '{user}' has no items in restore point {point}")
        with bytes_progress() as bar, SaveTree(to) as tree:
            task = bar.add_task(f"Saving {len(items)} items", total=sum(i.size for i in items))
            for item, content in view.repository.read_many(items):
                top = "Mail" if item.kind == "mail" else "OneDrive"
                _path, out = tree.create([safe_component(user), top, *restores.save_parts(item)])
                with out:
                    for chunk in content:
                        out.write(chunk)
                        bar.advance(task, len(chunk))
                    stamp(out, item.mode, item.mtime)
        restores.record_saved(
            ctx, session, user, len(items), str(to / safe_component(user)), by=operator()
        )
        restores.stop(ctx, session)
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Saved {len(items)} items of {user} into {to / safe_component(user)}")


@restore_app.command("put-back")
def put_back(
    point: Annotated[str, typer.Argument(help="Restore point id.")],
    user: Annotated[str, typer.Option(help="Whose items.")],
    to_user: Annotated[str | None, typer.Option(help="Restore to this user instead.")] = None,
    collision: Annotated[restores.Collision, typer.Option()] = restores.Collision.KEEP_BOTH,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Put a user's items of a restore point back into the organization."""
    ctx = context(data_dir, database_url)
    try:
        session = _session_on(ctx, point)
        view = restores.browser(ctx, session)
        counts = restores.RestoreCounts()
        with console().status(f"Restoring the items of {user}"):
            for kind in ("mail", "file"):
                owner = next((o for o in view.owners_with(kind) if o.name == user), None)
                if owner is not None:
                    done = restores.restore(
                        ctx,
                        session,
                        owner.id,
                        None,
                        kind=kind,
                        to_user=to_user,
                        collision=collision,
                        by=operator(),
                    )
                    counts.restored += done.restored
                    counts.skipped += done.skipped
                    counts.failed += done.failed
        restores.stop(ctx, session)
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Restored {counts.restored}, skipped {counts.skipped}, failed {counts.failed} items")


def _session_on(ctx: Context, point_id: str) -> str:
    point = restore_points.get_point(ctx, point_id)
    return restores.explore(ctx, point, user_name=operator()).id
