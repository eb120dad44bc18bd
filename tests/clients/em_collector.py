"""A metrics collector for Veeam Backup Enterprise Manager, in the style of the Prometheus
exporters written for it: log on, read every list the logon session links to (the vendor's
LogonSession links each collection with ``Rel="Down"``: helpcenter.veeam.com/docs/backup/rest/
loginsessions_id.html), then every entity of those lists (its ``Alternate`` link,
``format=Entity``), the query service with a filter, and print metrics lines. JSON only
(``Accept: application/json``), with httpx.

    python em_collector.py URL USER PASSWORD

Exit status 0 when every request answered, 1 otherwise (the failures are printed on stderr).
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

RESULTS = {"Success": 0, "Warning": 1, "Failed": 2}


class Collector:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, headers={"Accept": "application/json"})
        logon = self.http.post("/api/sessionMngr/?v=latest", auth=(user, password))
        logon.raise_for_status()
        self.http.headers["X-RestSvcSessionId"] = logon.headers["X-RestSvcSessionId"]
        self.logon = logon.json()
        self.errors: list[str] = []
        self.lists_read = 0
        self.entities_read = 0

    def get(self, href: str, **params: str) -> Any:
        # params=None keeps a query the href carries (?format=Entity); {} would drop it
        response = self.http.get(href, params=params or None)
        if response.status_code != 200:
            self.errors.append(f"GET {response.request.url}: {response.status_code}")
            return None
        return response.json()

    def lists(self) -> dict[str, list[dict[str, Any]]]:
        """Every reference list the logon session links to (``Rel="Down"``), by its path: two
        lists may share a Type (``/api/backupSessions``, ``/api/systemSessions``)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for link in self.logon.get("Links", []):
            if link.get("Rel") != "Down" or not link.get("Type", "").endswith("ReferenceList"):
                continue
            body = self.get(link["Href"])
            self.lists_read += 1
            if body is not None:
                found[httpx.URL(link["Href"]).path] = list(body.get("Refs", []))
        return found

    def entity(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        """A listed object's entity: its ``Alternate`` link, as clients follow it."""
        alternate = next((x for x in ref.get("Links", []) if x.get("Rel") == "Alternate"), None)
        body = self.get(alternate["Href"] if alternate else ref["Href"] + "?format=Entity")
        self.entities_read += 1
        return body if isinstance(body, dict) else None

    def logoff(self) -> None:
        self.http.delete(self.logon["Href"])


def metric(name: str, value: float, **labels: str) -> str:
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"veeam_em_{name}{{{shown}}} {value:g}" if shown else f"veeam_em_{name} {value:g}"


def collect(collector: Collector) -> list[str]:
    lines: list[str] = []
    entities: dict[str, list[dict[str, Any]]] = {}  # entity Type -> entities
    for path, refs in collector.lists().items():
        lines.append(metric("objects", len(refs), list=path))
        for entity in filter(None, map(collector.entity, refs)):
            entities.setdefault(entity.get("Type", ""), []).append(entity)
    for session in entities.get("BackupJobSession", []):
        server = session["Links"][0].get("Name", "") if session.get("Links") else ""
        lines.append(
            metric(
                "backup_session_result",
                RESULTS.get(session.get("Result", ""), 3),
                job=session.get("JobName", ""),
                server=server,
                created=session.get("CreationTimeUTC", ""),
            )
        )
    for repository in entities.get("Repository", []):
        name = repository.get("Name", "")
        lines.append(metric("repository_capacity_bytes", repository["Capacity"], repository=name))
        lines.append(metric("repository_free_bytes", repository["FreeSpace"], repository=name))
    lines += recent_results(collector)
    lines.append(metric("collector_lists_read", collector.lists_read))
    lines.append(metric("collector_entities_read", collector.entities_read))
    return lines


def recent_results(collector: Collector) -> list[str]:
    """Sessions of the last 24 hours by result, from the query service."""
    since = (datetime.now(UTC) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")
    body = collector.get(
        "/api/query",
        type="BackupJobSession",
        format="Entities",
        filter=f"CreationTime>={since}",
        pageSize="1000",
    )
    if body is None:
        return []
    sessions = body["Entities"]["BackupJobSessions"]["BackupJobSessions"]
    counts = Counter(session["Result"] for session in sessions)
    return [metric("sessions_last_24h", n, result=result) for result, n in sorted(counts.items())]


def main(argv: list[str]) -> int:
    url, user, password = argv
    collector = Collector(url, user, password)
    try:
        print("\n".join(collect(collector)))
    finally:
        collector.logoff()
    for error in collector.errors:
        print(error, file=sys.stderr)
    return 1 if collector.errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
