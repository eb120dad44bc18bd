"""Where everything is: the vendor's table of contents of the Enterprise Manager REST API.

``LOGON_SESSION_LINKS`` is the link list of a logon session as the vendor writes it
(loginsessions.html, build 13.1), in its order: every collection a client can reach, by
reference list (``...ReferenceList``: ``EntityReferences``) and by entity list (``...List``:
the plural root element). The service roots ``/agents``, ``/nas`` and ``/cloud`` (agents.html,
nas.html, cloud.html) list their own collections the same way. Left out: what Keepstone does not
serve at all (``/security``, ``/vCloud``, ``/selfService/vSphere``, creating backup servers).
"""

from __future__ import annotations

from dataclasses import dataclass

# (Rel, path under /api, Type, Name) in the vendor's order; "{session}" is the caller's session.
LOGON_SESSION_LINKS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("Up", "", "EnterpriseManager", None),
    ("Down", "backupServers", "BackupServerReferenceList", None),
    ("Down", "managedServers", "ManagedServerReferenceList", None),
    ("Down", "jobs", "JobReferenceList", None),
    ("Down", "failoverPlans", "FailoverPlanReferenceList", None),
    ("Down", "hierarchyRoots", "HierarchyRootReferenceList", None),
    ("Down", "repositories", "RepositoryReferenceList", None),
    ("Down", "backups", "BackupReferenceList", None),
    ("Down", "restorePoints", "RestorePointReferenceList", None),
    ("Down", "vmRestorePoints", "VmRestorePointReferenceList", None),
    ("Down", "vAppRestorePoints", "VAppRestorePointReferenceList", None),
    ("Down", "replicas", "ReplicaReferenceList", None),
    ("Down", "vmReplicaPoints", "VmReplicaPointReferenceList", None),
    ("Down", "catalog/vms", "CatalogVmReferenceList", None),
    ("Down", "backupSessions", "BackupJobSessionReferenceList", None),
    ("Down", "restoreSessions", "RestoreSessionReferenceList", None),
    ("Down", "replicaSessions", "ReplicaJobSessionReferenceList", None),
    ("Down", "backupTaskSessions", "BackupTaskSessionReferenceList", None),
    ("Down", "replicaTaskSessions", "ReplicaTaskSessionReferenceList", None),
    ("Down", "wanAccelerators", "WanAcceleratorReferenceList", None),
    ("Down", "backupFiles", "BackupFileReferenceList", None),
    ("Down", "externalRepositories", "ExternalRepositoryReferenceList", None),
    ("Down", "cdpPolicies", "CdpPolicyReferenceList", None),
    ("Down", "cdpReplicaSessions", "CdpReplicaSessionReferenceList", None),
    ("Down", "cdpReplicaTaskSessions", "CdpReplicaTaskSessionReferenceList", None),
    ("Down", "vAppReplicaPoints", "VAppReplicaPointReferenceList", None),
    ("Down", "cdpReplica/vms", "VmCdpReplicaReferenceList", None),
    ("Down", "cdpReplica/vApps", "VAppCdpReplicaReferenceList", None),
    ("Down", "systemSessions", "BackupJobSessionReferenceList", None),
    ("Down", "tasks", "TaskList", None),
    ("Down", "querySvc", "QueryService", None),
    ("Down", "lookupSvc", "LookupService", None),
    ("Down", "reports/summary", "Report", "Summary"),
    ("Down", "backupServers?format=Entity", "BackupServerList", None),
    ("Down", "managedServers?format=Entity", "ManagedServerList", None),
    ("Down", "jobs?format=Entity", "JobList", None),
    ("Down", "failoverPlans?format=Entity", "FailoverPlanList", None),
    ("Down", "hierarchyRoots?format=Entity", "HierarchyRootList", None),
    ("Down", "repositories?format=Entity", "RepositoryList", None),
    ("Down", "backups?format=Entity", "BackupList", None),
    ("Down", "restorePoints?format=Entity", "RestorePointList", None),
    ("Down", "vmRestorePoints?format=Entity", "VmRestorePointList", None),
    ("Down", "vAppRestorePoints?format=Entity", "VAppRestorePointList", None),
    ("Down", "replicas?format=Entity", "ReplicaList", None),
    ("Down", "vmReplicaPoints?format=Entity", "VmReplicaPointList", None),
    ("Down", "catalog/vms?format=Entity", "CatalogVmList", None),
    ("Down", "backupSessions?format=Entity", "BackupJobSessionList", None),
    ("Down", "restoreSessions?format=Entity", "RestoreSessionList", None),
    ("Down", "replicaSessions?format=Entity", "ReplicaJobSessionList", None),
    ("Down", "backupTaskSessions?format=Entity", "BackupTaskSessionList", None),
    ("Down", "replicaTaskSessions?format=Entity", "ReplicaTaskSessionList", None),
    ("Down", "wanAccelerators?format=Entity", "WanAcceleratorList", None),
    ("Down", "backupFiles?format=Entity", "BackupFileList", None),
    ("Down", "agents", "AgentsService", None),
    ("Down", "externalRepositories?format=Entity", "ExternalRepositoryList", None),
    ("Down", "nas", "NasService", None),
    ("Down", "cdpPolicies?format=Entity", "CdpPolicyList", None),
    ("Down", "cdpReplicaSessions?format=Entity", "CdpReplicaSessionList", None),
    ("Down", "cdpReplicaTaskSessions?format=Entity", "CdpReplicaTaskSessionList", None),
    ("Down", "vAppReplicaPoints?format=Entity", "VAppReplicaPointList", None),
    ("Down", "cdpReplica/vms?format=Entity", "VmCdpReplicaList", None),
    ("Down", "cdpReplica/vApps?format=Entity", "VAppCdpReplicaList", None),
    ("Down", "systemSessions?format=Entity", "BackupJobSessionList", None),
    ("Delete", "logonSessions/{session}", None, None),
)

# Service roots: (path, root element, Type, [(collection path, item type)]), in the vendor's
# link order. Each collection has a reference list (<item>ReferenceList) and an entity list.
SERVICES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "agents",
        "Agents",
        "AgentsService",
        (
            ("agents/jobs", "Job"),
            ("agents/agentRestorePoints", "AgentRestorePoint"),
            ("agents/backups", "Backup"),
            ("agents/restorePoints", "RestorePoint"),
            ("agents/backupFiles", "RestorePoint"),
            ("agents/backupSessions", "BackupJobSession"),
            ("agents/protectionGroups", "AgentProtectionGroup"),
            ("agents/discoveredComputers", "DiscoveredComputer"),
        ),
    ),
    (
        "nas",
        "NASService",
        "NasService",
        (
            ("nas/jobs", "NasJob"),
            ("nas/fileServers", "FileServer"),
            ("nas/backupSessions", "BackupJobSession"),
        ),
    ),
    (
        "cloud",
        "CloudConnectService",
        "CloudConnectService",
        (
            ("cloud/gateways", "CloudGateway"),
            ("cloud/tenants", "CloudTenant"),
            ("cloud/hardwarePlans", "CloudHardwarePlan"),
            ("cloud/publicIpAddresses", "CloudPublicIpAddress"),
            ("cloud/cloudFailoverPlans", "CloudFailoverPlan"),
            ("cloud/vmReplicaPoints", "CloudVmReplicaPoint"),
            ("cloud/replicas", "CloudReplica"),
            ("cloud/vlans", "VlanConfiguration"),
            ("cloud/failoverSessions", "CloudFailoverSession"),
            ("cloud/gatewayPools", "CloudGatewayPool"),
        ),
    ),
)

# Collections Keepstone fills (their own modules serve them); every other one is empty.
FILLED = frozenset(
    {"backupServers", "jobs", "repositories", "backups", "restorePoints", "backupSessions"}
)
# Collections another module serves although Keepstone may have none of their objects.
SERVED_ELSEWHERE = frozenset({"backupTaskSessions"})


@dataclass(frozen=True, slots=True)
class Collection:
    path: str  # under /api
    item: str  # the entity type of its items (Job, ReplicaJobSession, ...)


def _item_of(reference_list: str) -> str:
    return reference_list.removesuffix("ReferenceList")


def collections() -> list[Collection]:
    """Every GET list of the reference: the logon session's reference lists and the services'."""
    found = [
        Collection(path, _item_of(kind or ""))
        for rel, path, kind, _ in LOGON_SESSION_LINKS
        if rel == "Down" and (kind or "").endswith("ReferenceList")
    ]
    found += [Collection(path, item) for _, _, _, lists in SERVICES for path, item in lists]
    return found


def empty_collections() -> list[Collection]:
    """The collections Keepstone has no objects of."""
    return [c for c in collections() if c.path not in FILLED | SERVED_ELSEWHERE]
