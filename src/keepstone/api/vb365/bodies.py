"""Request bodies of the JSON dialect, parsed as the vendor's (Newtonsoft) server does.

Property names are case-insensitive, booleans and numbers may come as strings, enum values are
case-insensitive, unknown and read-only properties are ignored, and ``null`` means "not sent".
Each body converts itself to the domain's edit value, so handlers stay thin.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import BackupType, ItemType, JobEdit, ScheduleEdit
from keepstone.domain.policy import HOURS_PER_WEEK, DailyType, Period, ScheduleType
from keepstone.domain.retention import (
    RetentionFrequency,
    RetentionPeriodType,
    RetentionType,
    YearlyPeriod,
)
from keepstone.services.catalog import OrganizationEdit, ProxyEdit, RepositoryEdit
from keepstone.services.proxies import NewProxy, PoolEdit

E = TypeVar("E", bound=enum.Enum)
M = TypeVar("M", bound=BaseModel)
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def any_case(enum_type: type[E]) -> BeforeValidator:
    by_lower = {member.value.lower(): member for member in enum_type}

    def canonical(value: Any) -> Any:
        return by_lower.get(value.lower(), value) if isinstance(value, str) else value

    return BeforeValidator(canonical)


def _time_of_day(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _TIME_OF_DAY.match(value.strip())
    hours, minutes, seconds = (int(g or 0) for g in match.groups()) if match else (-1, -1, -1)
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 60):
        raise ValueError(f"'{value}' is not a time of day in the form HH:mm:ss")
    return time(hours, minutes, seconds)


def _exactly_a_week(value: list[bool]) -> list[bool]:
    if len(value) != HOURS_PER_WEEK:
        raise ValueError(
            f"must have exactly {HOURS_PER_WEEK} booleans (7 days x 24 hours, Sunday first); "
            f"got {len(value)}"
        )
    return value


def _no_nul(value: str) -> str:
    # A path (or a name that becomes one) with NUL cannot reach any filesystem call: refuse it.
    if "\0" in value:
        raise ValueError("must not contain NUL (\\u0000)")
    return value


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
PathText = Annotated[str, AfterValidator(_no_nul)]  # a path, or a name used as a path segment
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # what SQLite's INTEGER holds
AWeek = Annotated[list[bool], AfterValidator(_exactly_a_week)]
AnyScheduleType = Annotated[ScheduleType, any_case(ScheduleType)]
AnyDailyType = Annotated[DailyType, any_case(DailyType)]
AnyPeriod = Annotated[Period, any_case(Period)]
AnyBackupType = Annotated[BackupType, any_case(BackupType)]
AnyItemType = Annotated[ItemType, any_case(ItemType)]
AnyRetentionType = Annotated[RetentionType, any_case(RetentionType)]
AnyRetentionPeriodType = Annotated[RetentionPeriodType, any_case(RetentionPeriodType)]
AnyYearlyPeriod = Annotated[YearlyPeriod, any_case(YearlyPeriod)]
AnyRetentionFrequency = Annotated[RetentionFrequency, any_case(RetentionFrequency)]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _fold_property_case(cls, data: Any) -> Any:
        return fold_property_case(_property_names(cls), data)


@dataclass(frozen=True, slots=True)
class PropertyNames:
    """A model's property names: each in lower case to its spelling, and the spellings."""

    by_lower: dict[str, str]
    spelled: frozenset[str]  # the names a key keeps as it is: each its lower case's spelling

    @classmethod
    def of(cls, names: Iterable[str]) -> PropertyNames:
        by_lower = {name.lower(): name for name in names}
        return cls(by_lower, frozenset(by_lower.values()))


def fold_property_case(names: PropertyNames, data: Any) -> Any:
    """``data`` with each key that is a property's name in another case spelled as the property
    is. ``data`` itself when no key needs it, as for a client that sends the documented
    spellings (seed 003's body): each key is looked up as it is before it is lower-cased, and
    no dict is made (folding every key cost about 2/3 of the body's validation)."""
    if not isinstance(data, dict):
        return data
    by_lower = names.by_lower
    for key in data:
        if key not in names.spelled and isinstance(key, str) and key.lower() in by_lower:
            return {
                by_lower.get(k.lower(), k) if isinstance(k, str) else k: v for k, v in data.items()
            }
    return data


@cache
def _property_names(model: type[BaseModel]) -> PropertyNames:
    """Once per model (a model's fields are fixed once the class is made; building this for
    every body cost about 7 % of the seed PUT's CPU under cProfile)."""
    return PropertyNames.of(f.alias or name for name, f in model.model_fields.items())


def parse_nested(model: type[M], value: Any, where: str) -> M:
    """``value`` (a property of a body already parsed) as ``model``; ``null`` is an empty one.
    A wrong value is the client's 400, naming the property below ``where``."""
    try:
        return model.model_validate({} if value is None else value)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join([where, *(str(part) for part in first["loc"])])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "model_type":
            message = "must be a JSON object or null"
        raise InvalidInput(message, path) from None


class BackupWindowSettingsBody(WireModel):
    backup_window: AWeek | None = None
    minute_offset: Int64 | None = None


class SchedulePolicyBody(WireModel):
    type: AnyScheduleType | None = None
    daily_type: AnyDailyType | None = None
    daily_time: TimeOfDay | None = None
    periodically_every: AnyPeriod | None = None
    backup_window_enabled: bool | None = None
    backup_window_settings: BackupWindowSettingsBody | None = None
    retry_enabled: bool | None = None
    retry_number: Int64 | None = None
    retry_wait_interval: Int64 | None = None
    schedule_enabled: bool | None = None
    periodically_offset_minutes: Int64 | None = None
    periodically_window_enabled: bool | None = None
    periodically_window_settings: BackupWindowSettingsBody | None = None

    def to_edit(self) -> ScheduleEdit:
        window, periodic = self.backup_window_settings, self.periodically_window_settings
        return ScheduleEdit(
            type=self.type,
            daily_type=self.daily_type,
            daily_time=self.daily_time,
            periodically_every=self.periodically_every,
            backup_window_enabled=self.backup_window_enabled,
            backup_window=tuple(window.backup_window) if window and window.backup_window else None,
            minute_offset=window.minute_offset if window else None,
            retry_enabled=self.retry_enabled,
            retry_number=self.retry_number,
            retry_wait_interval=self.retry_wait_interval,
            periodically_offset=self.periodically_offset_minutes,
            periodic_window_enabled=self.periodically_window_enabled,
            periodic_window=(
                tuple(periodic.backup_window) if periodic and periodic.backup_window else None
            ),
            periodic_minute_offset=periodic.minute_offset if periodic else None,
            schedule_enabled=self.schedule_enabled,
        )


class JobItemBody(WireModel):
    """A selected or excluded item (``RESTJobItemComposed``); kept as sent, keys normalised."""

    model_config = ConfigDict(alias_generator=to_camel, extra="allow", frozen=True)
    type: AnyItemType
    id: str | None = None
    mailbox: bool | None = None
    archive_mailbox: bool | None = None
    one_drive: bool | None = None
    user: dict[str, Any] | None = None
    group: dict[str, Any] | None = None
    folders: list[str] | None = None

    def record(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class JobBody(WireModel):
    """The body of ``PUT /v2/Jobs/{id}`` and ``POST /v2/Organizations/{id}/Jobs`` (seed 003)."""

    name: str | None = None
    description: str | None = None
    backup_type: AnyBackupType | None = None
    schedule_policy: SchedulePolicyBody | None = None
    proxy_id: str | None = None
    repository_id: str | None = None
    is_enabled: bool | None = None
    is_run: bool | None = None
    run_now: bool | None = None
    selected_items: list[JobItemBody] | None = None
    excluded_items: list[JobItemBody] | None = None

    def to_edit(self) -> JobEdit:
        return JobEdit(
            name=self.name,
            description=self.description,
            backup_type=self.backup_type,
            schedule=self.schedule_policy.to_edit() if self.schedule_policy else None,
            repository_id=self.repository_id,
            proxy_id=self.proxy_id,
            is_enabled=self.is_enabled,
            selected_items=_records(self.selected_items),
            excluded_items=_records(self.excluded_items),
            run_now=bool(self.is_run or self.run_now),
        )


class NewJobBody(JobBody):
    """v8's ``POST /Jobs`` (``RESTCreateBackupJob``): a job body naming its organization."""

    organization_id: str

    @model_validator(mode="before")
    @classmethod
    def _organization_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and not any(
            isinstance(k, str) and k.lower() == "organizationid" and v for k, v in data.items()
        ):
            raise ValueError("organizationId is required")
        return data


class StartBody(WireModel):
    """``POST /Jobs/{id}/start``: ``full`` asks for an active full backup."""

    full: bool | None = None


def _records(items: list[JobItemBody] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [item.record() for item in items]


class LocalSettingsBody(WireModel):
    path: PathText | None = None


class OrganizationBody(WireModel):
    type: str | None = None
    name: str | None = None
    description: str | None = None
    local_settings: LocalSettingsBody | None = None
    # Kept as sent: its rules cross properties and a PUT merges it into what is kept, so
    # services.imap_settings parses it (and names ``imapSettings.users[1].password``).
    imap_settings: dict[str, Any] | None = None
    # Office365 (RESTOffice365ConnectionSettings and the flags): kept as sent, for the same
    # reasons; services.m365_settings parses them and names the property it refuses.
    exchange_online_settings: Any = None
    share_point_online_settings: Any = None
    region: Any = None
    is_exchange_online: Any = None
    is_share_point_online: Any = None
    is_teams_online: Any = None
    is_teams_chats_online: Any = None
    configure_application: Any = None
    new_application_name: Any = None
    user_code: Any = None

    def office365(self) -> dict[str, Any] | None:
        """The Office365 properties sent, by their vendor names (None if none was)."""
        sent = self.model_dump(
            by_alias=True,
            include={
                "exchange_online_settings",
                "share_point_online_settings",
                "region",
                "is_exchange_online",
                "is_share_point_online",
                "is_teams_online",
                "is_teams_chats_online",
                "configure_application",
                "new_application_name",
                "user_code",
            },
            exclude_none=True,
        )
        return sent or None

    def to_edit(self) -> OrganizationEdit:
        kind = {"local": "Local", "office365": "Office365", "imap": "Imap"}.get(
            (self.type or "").lower(), self.type
        )
        return OrganizationEdit(
            name=self.name,
            description=self.description,
            type=kind,
            local_path=self.local_settings.path if self.local_settings else None,
            imap_settings=self.imap_settings,
            office365=self.office365(),
        )


class SyncKind(enum.Enum):
    INCREMENTAL = "Incremental"
    FULL = "Full"


class SyncOptionsBody(WireModel):
    """``POST /Organizations/{id}/Sync`` (``RESTOrganizationSyncOptions``)."""

    type: Annotated[SyncKind, any_case(SyncKind)] | None = None


class ProxyBody(WireModel):
    description: str | None = None
    threads_number: Int64 | None = None

    def to_edit(self) -> ProxyEdit:
        return ProxyEdit(description=self.description, threads_number=self.threads_number)


class NewProxyBody(WireModel):
    """``POST /Proxies`` (``RESTProxyFromClient``): the vendor's deployment properties (domain,
    credentials, SSH, service account) are not Keepstone's; a remote proxy registers itself."""

    host_name: str | None = None
    description: str | None = None
    port: Int64 | None = None
    threads_number: Int64 | None = None

    def to_spec(self) -> NewProxy:
        return NewProxy(self.host_name, self.description, self.port, self.threads_number)


class RemoveProxyBody(WireModel):
    """``RESTRemoveProxyOptions``: ``force`` cannot remove what a repository or job uses."""

    force: bool | None = None


class ProxyIdBody(WireModel):
    """``RESTProxyIdFromClient``."""

    proxy_id: str


class ProxyPoolBody(WireModel):
    """``RESTProxyPoolFromClient``."""

    name: str | None = None
    description: str | None = None
    proxy_ids: list[ProxyIdBody] | None = None

    def to_edit(self) -> PoolEdit:
        members = None if self.proxy_ids is None else [p.proxy_id for p in self.proxy_ids]
        return PoolEdit(self.name, self.description, members)


class RepositoryBody(WireModel):
    encryption_password: str | None = None  # Keepstone's: write-only, kept outside the catalog
    name: str | None = None
    description: str | None = None
    path: PathText | None = None
    proxy_id: str | None = None
    retention_type: AnyRetentionType | None = None
    retention_period_type: AnyRetentionPeriodType | None = None
    daily_retention_period: Int64 | None = None
    monthly_retention_period: Int64 | None = None
    yearly_retention_period: AnyYearlyPeriod | None = None
    retention_frequency_type: AnyRetentionFrequency | None = None
    daily_time: TimeOfDay | None = None
    daily_type: AnyDailyType | None = None
    # Object storage (api/vb365/object_storage.py): v6/v7 by id, v8 inline; v8 a pool owns it.
    object_storage_id: str | None = None
    object_storage: Any = None
    object_storage_encryption_enabled: bool | None = None
    proxy_pool_id: str | None = None

    def to_edit(self) -> RepositoryEdit:
        retention = {
            field: value
            for field, value in (
                ("retention_type", self.retention_type),
                ("period_type", self.retention_period_type),
                ("daily_period", self.daily_retention_period),
                ("monthly_period", self.monthly_retention_period),
                ("yearly_period", self.yearly_retention_period),
                ("frequency", self.retention_frequency_type),
                ("daily_time", self.daily_time),
                ("daily_type", self.daily_type),
            )
            if value is not None
        }
        return RepositoryEdit(
            name=self.name,
            description=self.description,
            path=self.path,
            proxy_id=self.proxy_id,
            retention=retention or None,
            proxy_pool_id=self.proxy_pool_id,
        )
