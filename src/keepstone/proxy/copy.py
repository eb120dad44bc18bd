"""A copy job's run: the backup job's new restore points copied into the copy's repository.

Each copy is recorded as a restore point of the target repository (the backup job's, kept
there), so it can be explored and restored from alone; the copy's snapshot names the source
snapshot and session in its tags, never the source session as its own (a session has one
restore point per repository it made).
"""

from __future__ import annotations

from keepstone.domain.jobs import SessionStatus
from keepstone.domain.units import human_bytes
from keepstone.engine import Repository, SnapshotInfo
from keepstone.engine.copy import CopyStats, copy_snapshots, pending
from keepstone.proxy.backup import facts_of
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.services import restore_points

TAG_COPY_JOB, TAG_COPY_SESSION, TAG_SOURCE_SESSION = (
    "copy_job_id",
    "copy_session_id",
    "source_session_id",
)


def run_copy(run: RunContext) -> Outcome:
    claim = run.run
    assert claim.copy is not None
    copy_job_id = claim.copy.copy_job_id
    if claim.copy.source_repository_id == claim.scope.repository_id:
        return Outcome(
            SessionStatus.FAILED,
            "The copy job's repository is now its backup job's: nothing can be copied there",
            retryable=False,
        )
    source = run.work().open_repository(claim.copy.source_repository_id)
    target = run.work().open_repository(claim.scope.repository_id)
    todo = pending(
        source, target, lambda info: info.tags.get(restore_points.TAG_JOB) == claim.job_id
    )
    if not todo:
        return Outcome(SessionStatus.SUCCESS, "No new restore points to copy")
    run.log(SessionStatus.RUNNING, f"Copying {len(todo)} restore points of job {claim.job_name}")

    def retag(info: SnapshotInfo) -> dict[str, str]:
        tags = {k: v for k, v in info.tags.items() if k != restore_points.TAG_SESSION}
        tags[TAG_SOURCE_SESSION] = info.tags.get(restore_points.TAG_SESSION, "")
        return tags | {TAG_COPY_JOB: copy_job_id, TAG_COPY_SESSION: claim.session_id}

    stats = copy_snapshots(source, target, todo, retag, run.check)
    _record(run, target, stats)
    run.report(
        progress=stats.snapshots,
        read_bytes=stats.bytes_read,
        read_items=stats.items,
        transferred_bytes=stats.bytes_read,
        written_bytes=stats.bytes_stored,
    )
    return Outcome(SessionStatus.SUCCESS, _summary(stats))


def _record(run: RunContext, target: Repository, stats: CopyStats) -> None:
    by_id = {info.id: info for info in target.snapshots()}
    for _, target_id in stats.copied:
        facts = facts_of(target, by_id[target_id], stats.kinds[target_id])
        run.record(run.run.scope.repository_id, facts)


def _summary(stats: CopyStats) -> str:
    return (
        f"Copied {stats.snapshots} restore points: {stats.items} items "
        f"({stats.items_carried} unchanged), {human_bytes(stats.bytes_read)} read, "
        f"{human_bytes(stats.bytes_stored)} new"
    )
