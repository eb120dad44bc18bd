"""Every type of the vendor's query service (query_type.html), with Keepstone's rows of it.

One line per type: its name as clients spell it in ``type=``, the element its entities are (as
RestAPI.xsd names it), and its rows; a type Keepstone has no objects of has no rows and answers
an empty result of the right shape. A resource module that gains objects of a type replaces its
line here (``"BackupTaskSession": QueryType("BackupTaskSession", its_rows)``).
"""

from __future__ import annotations

from keepstone.api.em import query_rows, task_sessions
from keepstone.api.em.queryable import QueryType

QUERY_TYPES: dict[str, QueryType] = {
    "AgentBackupJob": QueryType("AgentBackupJob"),
    "AgentProtectionGroup": QueryType("AgentProtectionGroup"),
    "AgentRestorePoint": QueryType("AgentRestorePoint"),
    "Backup": QueryType("Backup", query_rows.backup_rows),
    "BackupFile": QueryType("BackupFile"),
    "BackupJobSession": QueryType(
        "BackupJobSession", query_rows.session_rows, query_rows.session_page
    ),
    "BackupServer": QueryType("BackupServer", query_rows.server_rows),
    "BackupTaskSession": QueryType("BackupTaskSession", task_sessions.query_rows),
    "CdpPolicy": QueryType("CdpPolicy"),
    "CdpReplica": QueryType("CdpReplica"),
    "CdpReplicaSession": QueryType("CdpReplicaSession"),
    "CdpReplicaTaskSession": QueryType("CdpReplicaTaskSession"),
    "CloudGateway": QueryType("CloudGateway"),
    "CloudGatewayPool": QueryType("CloudGatewayPool"),
    "CloudTenant": QueryType("CloudTenant"),
    "CloudFailoverPlan": QueryType("CloudFailoverPlan"),
    "CloudFailoverSession": QueryType("CloudFailoverSession"),
    "CloudHardwarePlan": QueryType("CloudHardwarePlan"),
    "CloudPublicIpAddress": QueryType("CloudPublicIpAddress"),
    "CloudReplica": QueryType("CloudReplica"),
    "CloudSubtenant": QueryType("CloudSubtenant"),
    "CloudVmReplicaPoint": QueryType("CloudVmReplicaPoint"),
    "Credentials": QueryType("CredentialsInfo"),
    "DiscoveredComputer": QueryType("DiscoveredComputer"),
    "FailoverPlan": QueryType("FailoverPlan"),
    "FileServer": QueryType("FileServer"),
    "HierarchyRoot": QueryType("HierarchyRoot"),
    "Job": QueryType("Job", query_rows.job_rows, query_rows.job_page),
    "ManagedServer": QueryType("ManagedServer"),
    "NasJob": QueryType("NasJob"),
    "NasObject": QueryType("NasObject"),
    "ObjectInJob": QueryType("ObjectInJob"),
    "Passwords": QueryType("PasswordKeyInfo"),
    "Replica": QueryType("Replica"),
    "ReplicaJobSession": QueryType("ReplicaJobSession"),
    "ReplicaTaskSession": QueryType("ReplicaTaskSession"),
    "Repository": QueryType("Repository", query_rows.repository_rows),
    "RestorePoint": QueryType("RestorePoint", query_rows.restore_point_rows),
    "RestoreSession": QueryType("RestoreSession"),
    "Task": QueryType("Task", query_rows.task_rows),
    "vAppReplicaPoint": QueryType("VAppReplicaPoint"),
    "vAppRestorePoint": QueryType("VAppRestorePoint"),
    "VCloudOrganizationConfig": QueryType("VCloudOrganizationConfig"),
    "VlanConfiguration": QueryType("VlanConfiguration"),
    "VmReplicaPoint": QueryType("VmReplicaPoint"),
    "VmRestorePoint": QueryType("VmRestorePoint"),
    "VsphereSelfServiceConfig": QueryType("VsphereSelfServiceConfig"),
    "WanAccelerator": QueryType("WanAccelerator"),
}
QUERY_TYPE_NAMES = tuple(QUERY_TYPES)
_BY_LOWER_NAME = {name.lower(): kind for name, kind in QUERY_TYPES.items()}


def query_type(name: str) -> QueryType | None:
    """The type a ``type=`` names, whatever its case (the vendor's examples write ``type=job``)."""
    return _BY_LOWER_NAME.get(name.lower())
