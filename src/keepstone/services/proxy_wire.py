"""The proxy API's wire form: claimed runs, claims, work packages and restore point facts as
JSON (``services/proxy_link.py`` and ``api/proxy_link.py`` on the server, ``proxy/remote.py`` on
a remote proxy).

A work package carries secrets (repository passwords, S3 secret keys, an organization's
credentials): it is encoded only for the proxy holding the run's claim and sent only over TLS or
loopback. What a proxy sends back (facts) is parsed as hostile input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import BackupType
from keepstone.engine.s3location import S3Location
from keepstone.proxy.channel import GraphWork, RepositoryPlace, WorkPackage
from keepstone.services import restore_points, runs
from keepstone.services.oauth_tokens import TokenSource, token_source
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.auth import AppCredentials
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.imap.model import (
    Credentials,
    Endpoint,
    ImapAccess,
    MasterUser,
    OAuth2,
    Password,
    PinnedCertificate,
    Security,
    SystemTrust,
    Timeouts,
    Trust,
    TrustedCa,
)
from keepstone.store.codecs import policy_from_record, policy_to_record
from keepstone.store.tables import Organization

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def claim_token(run: runs.Attempt) -> str:
    """How a claim is named in the proxy API's paths: ``<retry count>.<claim instant in µs>``."""
    assert run.claimed_at is not None  # every claim handed to a proxy has its instant
    return f"{run.attempt}.{(run.claimed_at - EPOCH) // MICROSECOND}"


def parse_claim(session_id: str, token: str) -> runs.AttemptOf:
    attempt, _, micros = token.partition(".")
    if not (attempt.isdigit() and micros.isdigit() and len(attempt) < 10 and len(micros) < 20):
        raise InvalidInput(f"'{token}' does not name a claim", "claim")
    return runs.AttemptOf(session_id, int(attempt), EPOCH + int(micros) * MICROSECOND)


def encode_run(run: runs.ClaimedRun) -> dict[str, Any]:
    org = run.organization
    return {
        "sessionId": run.session_id,
        "attempt": run.attempt,
        "claim": claim_token(run),
        "jobId": run.job_id,
        "jobName": run.job_name,
        "organization": {
            "id": org.id,
            "name": org.name,
            "type": org.type,
            "settings": org.settings,
        },
        "policy": policy_to_record(run.policy),
        "manual": run.manual,
        "deadline": None if run.deadline is None else run.deadline.isoformat(),
        "scope": {
            "backupType": run.scope.backup_type.value,
            "selectedItems": run.scope.selected_items,
            "excludedItems": run.scope.excluded_items,
            "repositoryId": run.scope.repository_id,
            "repositoryPath": run.scope.repository_path,
        },
        "copy": None
        if run.copy is None
        else {
            "copyJobId": run.copy.copy_job_id,
            "sourceRepositoryId": run.copy.source_repository_id,
            "sourceRepositoryPath": run.copy.source_repository_path,
        },
    }


def decode_run(data: dict[str, Any]) -> runs.ClaimedRun:
    """A claimed run as the server sent it (the proxy's side; the server trusts none of it)."""
    org, scope, copy = data["organization"], data["scope"], data["copy"]
    return runs.ClaimedRun(
        session_id=str(data["sessionId"]),
        attempt=int(data["attempt"]),
        job_id=str(data["jobId"]),
        job_name=str(data["jobName"]),
        organization=Organization(
            id=org["id"],
            name=org["name"],
            type=org["type"],
            description="",
            settings=org["settings"],
        ),
        policy=policy_from_record(data["policy"]),
        manual=bool(data["manual"]),
        deadline=None if data["deadline"] is None else datetime.fromisoformat(data["deadline"]),
        scope=runs.JobScope(
            BackupType(scope["backupType"]),
            scope["selectedItems"],
            scope["excludedItems"],
            scope["repositoryId"],
            scope["repositoryPath"],
        ),
        copy=None
        if copy is None
        else runs.CopyScope(
            copy["copyJobId"], copy["sourceRepositoryId"], copy["sourceRepositoryPath"]
        ),
        claimed_at=parse_claim(str(data["sessionId"]), str(data["claim"])).claimed_at,
    )


class NotPortable(Exception):
    """A source access that cannot travel to a remote proxy (an IMAP OAuth2 token source)."""


def encode_work(package: WorkPackage) -> dict[str, Any]:
    """The work package on the wire: it carries secrets (sent only over TLS or loopback)."""
    unavailable = package.unavailable
    try:
        imap = None if package.imap is None else _encode_imap(package.imap)
    except NotPortable as why:
        imap, unavailable = None, str(why)
    return {
        "repositories": [_encode_place(place) for place in package.repositories.values()],
        "imap": imap,
        "graph": None if package.graph is None else _encode_graph(package.graph),
        "unavailable": unavailable,
    }


def _encode_place(place: RepositoryPlace) -> dict[str, Any]:
    s3 = place.s3
    return {
        "id": place.repository_id,
        "path": place.path,
        "password": place.password,
        "s3": None
        if s3 is None
        else {
            "servicePoint": s3.service_point,
            "region": s3.region,
            "bucket": s3.bucket,
            "folder": s3.folder,
            "accessKey": s3.access_key,
            "secretKey": s3.secret_key,
        },
    }


def decode_work(data: dict[str, Any]) -> WorkPackage:
    places = {}
    for place in data["repositories"]:
        s3 = place["s3"]
        location = (
            None
            if s3 is None
            else S3Location(
                s3["servicePoint"],
                s3["region"],
                s3["bucket"],
                s3["folder"],
                s3["accessKey"],
                s3["secretKey"],
            )
        )
        places[place["id"]] = RepositoryPlace(
            place["id"], place["path"], location, place["password"]
        )
    imap, graph = data.get("imap"), data.get("graph")
    return WorkPackage(
        places,
        imap=None if imap is None else _decode_imap(imap),
        graph=None if graph is None else _decode_graph(graph),
        unavailable=str(data.get("unavailable") or ""),
    )


# ---- an organization's access -----------------------------------------------------------------


def _encode_imap(access: ImapAccess) -> dict[str, Any]:
    endpoint = access.endpoint
    return {
        "host": endpoint.host,
        "port": endpoint.port,
        "security": endpoint.security.value,
        "trust": _encode_trust(endpoint.trust),
        "timeouts": {"connect": endpoint.timeouts.connect, "command": endpoint.timeouts.command},
        "logins": {user: _encode_login(login) for user, login in access.logins.items()},
        "maxConnections": access.max_connections,
    }


def _encode_trust(trust: Trust) -> dict[str, str]:
    if isinstance(trust, TrustedCa):
        return {"kind": "ca", "pem": trust.pem}
    if isinstance(trust, PinnedCertificate):
        return {"kind": "pinned", "sha256": trust.sha256}
    return {"kind": "system"}


def _encode_login(login: Credentials) -> dict[str, str]:
    if isinstance(login, OAuth2):
        if not isinstance(login.token, TokenSource):
            raise NotPortable("this IMAP organization's OAuth2 token source cannot travel")
        client = login.token.client  # the proxy asks the authority for tokens itself
        return {
            "kind": "oauth2",
            "login": login.login,
            "tokenUrl": client.token_url,
            "clientId": client.client_id,
            "clientSecret": client.client_secret,
            "scope": client.scope,
        }
    if isinstance(login, MasterUser):
        return {
            "kind": "master",
            "login": login.login,
            "masterLogin": login.master_login,
            "masterPassword": login.master_password,
            "separator": login.separator,
        }
    return {"kind": "password", "login": login.login, "password": login.password}


def _decode_imap(data: dict[str, Any]) -> ImapAccess:
    trust = data["trust"]
    decoded_trust: Trust = (
        TrustedCa(trust["pem"])
        if trust["kind"] == "ca"
        else PinnedCertificate(trust["sha256"])
        if trust["kind"] == "pinned"
        else SystemTrust()
    )
    endpoint = Endpoint(
        data["host"],
        int(data["port"]),
        Security(data["security"]),
        decoded_trust,
        Timeouts(float(data["timeouts"]["connect"]), float(data["timeouts"]["command"])),
    )
    logins = {user: _decode_login(login) for user, login in data["logins"].items()}
    return ImapAccess(endpoint, logins, int(data["maxConnections"]))


def _decode_login(login: dict[str, str]) -> Credentials:
    if login["kind"] == "master":
        return MasterUser(
            login["login"], login["masterLogin"], login["masterPassword"], login["separator"]
        )
    if login["kind"] == "oauth2":
        source = token_source(
            login["tokenUrl"], login["clientId"], login["clientSecret"], login["scope"]
        )
        return OAuth2(login["login"], source)
    return Password(login["login"], login["password"])


def _encode_graph(work: GraphWork) -> dict[str, Any]:
    credentials = work.access.credentials
    return {
        "graphUrl": work.access.endpoints.graph_url,
        "loginUrl": work.access.endpoints.login_url,
        "tenant": credentials.tenant,
        "clientId": credentials.client_id,
        "secret": credentials.secret,
        "certificatePfx": credentials.certificate_pfx,
        "certificatePassword": credentials.certificate_password,
        "users": [
            {
                "name": user.name,
                "graphId": user.graph_id,
                "displayName": user.display_name,
                "kind": user.kind,
                "hasMailbox": user.has_mailbox,
                "hasArchive": user.has_archive,
                "hasOnedrive": user.has_onedrive,
            }
            for user in work.users
        ],
        "vendorIds": work.vendor_ids,
    }


def _decode_graph(data: dict[str, Any]) -> GraphWork:
    access = GraphAccess(
        GraphEndpoints(data["graphUrl"], data["loginUrl"]),
        AppCredentials(
            data["tenant"],
            data["clientId"],
            data["secret"],
            data["certificatePfx"],
            data["certificatePassword"],
        ),
    )
    users = [
        GraphUser(
            u["name"],
            u["graphId"],
            u["displayName"],
            u["kind"],
            bool(u["hasMailbox"]),
            bool(u["hasArchive"]),
            bool(u["hasOnedrive"]),
        )
        for u in data["users"]
    ]
    return GraphWork(access, users, dict(data["vendorIds"]))


# ---- what a proxy reports ---------------------------------------------------------------------


def encode_facts(facts: restore_points.SnapshotFacts) -> dict[str, Any]:
    return {
        "snapshotId": facts.snapshot_id,
        "time": facts.time.isoformat(),
        "tags": facts.tags,
        "itemCount": facts.item_count,
        "size": facts.size,
        "hasMail": facts.has_mail,
        "hasFiles": facts.has_files,
    }


def decode_facts(data: dict[str, Any]) -> restore_points.SnapshotFacts:
    """A snapshot's facts as a proxy sent them: checked for shape, every value typed."""
    try:
        tags = data["tags"]
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise InvalidInput("tags must map names to strings", "tags")
        when = datetime.fromisoformat(str(data["time"]))
        if when.tzinfo is None:
            raise InvalidInput("time must carry its UTC offset", "time")
        return restore_points.SnapshotFacts(
            snapshot_id=str(data["snapshotId"]),
            time=when,
            tags=dict(tags),
            item_count=int(data["itemCount"]),
            size=int(data["size"]),
            has_mail=bool(data["hasMail"]),
            has_files=bool(data["hasFiles"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInput(f"restore point facts are malformed: {error}", "facts") from None
