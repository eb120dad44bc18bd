"""<JobScheduleOptions> <-> SchedulePolicy: round trips, refusals, partial edits, XSD validity."""

from __future__ import annotations

import copy
from dataclasses import asdict, fields, replace
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from keepstone.api.em.schedule_xml import (
    NS,
    WEEK,
    parse_schedule_options,
    render_schedule_options,
)
from keepstone.api.em.xml import SCHEMA_PATH
from keepstone.api.em.xml import schema as shipped_schema
from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import ScheduleEdit
from keepstone.domain.policy import (
    ALWAYS_OPEN,
    DailyType,
    Period,
    SchedulePolicy,
    ScheduleType,
)

MAIN = Path(__file__).resolve().parents[2]
REFERENCE_XSD = MAIN.parent / "shared" / "reference" / "em" / "RestAPI.xsd"
XSD_ORDER = [
    "RetryOptions",
    "WaitForBackupCompletion",
    "BackupCompetitionWaitingPeriodMin",
    "OptionsDaily",
    "OptionsMonthly",
    "OptionsPeriodically",
    "OptionsContinuous",
    "OptionsBackupWindow",
    "OptionsDaisyChaining",
]
ONES = ",".join(["1"] * 24)
ZEROS = ",".join(["0"] * 24)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """The schema the server ships and validates with (a copy of the vendor's RestAPI.xsd)."""
    return shipped_schema()


def test_the_shipped_schema_is_the_vendors() -> None:
    if not REFERENCE_XSD.exists():
        pytest.skip(f"no reference copy beside this checkout at {REFERENCE_XSD}")
    assert SCHEMA_PATH.read_bytes() == REFERENCE_XSD.read_bytes()


def in_job(options: etree._Element) -> etree._Element:
    """A minimal valid <Job> document holding (a copy of) the given <JobScheduleOptions>."""
    job = etree.Element(
        f"{{{NS}}}Job",
        {"Href": "https://em.example:9398/api/jobs/1", "Name": "job", "UID": "urn:veeam:Job:1"},
        nsmap={None: NS},
    )
    job.append(copy.deepcopy(options))
    return job


def assert_valid(schema: etree.XMLSchema, options: etree._Element) -> None:
    document = in_job(options)
    assert schema.validate(document), (
        str(schema.error_log) + "\n" + etree.tostring(document, pretty_print=True).decode()
    )


def body(inner: str) -> etree._Element:
    return etree.fromstring(f'<JobScheduleOptions xmlns="{NS}">{inner}</JobScheduleOptions>')


def week(rows: dict[str, str] | None = None, tag: str = "TimePeriods") -> str:
    rows = rows or {}
    days = "".join(f'<Day Name="{d}">{rows.get(d, ONES)}</Day>' for d in WEEK)
    return f"<{tag}>{days}</{tag}>"


# what the XML has no element for: the periodic shift within the hour and the periodic
# window's own clock (set through the JSON dialect, kept by an EM edit)
NOT_IN_XML = ("periodically_offset", "periodic_minute_offset")


def full_edit(policy: SchedulePolicy) -> ScheduleEdit:
    return ScheduleEdit(**{k: v for k, v in asdict(policy).items() if k not in NOT_IN_XML})


def local(node: etree._Element) -> str:
    return etree.QName(node).localname


# --- rendering -------------------------------------------------------------------------------


def test_the_default_policy_renders_like_veeam(schema: etree.XMLSchema) -> None:
    element = render_schedule_options(SchedulePolicy())
    assert_valid(schema, element)
    assert element.tag == f"{{{NS}}}JobScheduleOptions"
    names = [local(child) for child in element]
    assert names == [
        "RetryOptions",
        "WaitForBackupCompletion",
        "OptionsDaily",
        "OptionsMonthly",
        "OptionsPeriodically",
        "OptionsContinuous",
        "OptionsBackupWindow",
    ]
    ns = {"v": NS}
    assert element.xpath("v:RetryOptions/v:RetryTimes/text()", namespaces=ns) == ["3"]
    assert element.xpath("v:RetryOptions/v:RetryTimeout/text()", namespaces=ns) == ["10"]
    assert element.xpath("v:RetryOptions/v:RetrySpecified/text()", namespaces=ns) == ["true"]
    assert element.xpath("v:WaitForBackupCompletion/text()", namespaces=ns) == ["false"]
    assert element.xpath("v:OptionsDaily/@Enabled", namespaces=ns) == ["true"]
    assert element.xpath("v:OptionsDaily/v:Kind/text()", namespaces=ns) == ["Everyday"]
    assert element.xpath("v:OptionsDaily/v:Days/text()", namespaces=ns) == list(WEEK)
    assert element.xpath("v:OptionsDaily/v:Time/text()", namespaces=ns) == ["15:00:00"]
    assert element.xpath("v:OptionsDaily/v:TimeOffsetUtc/text()", namespaces=ns) == ["0"]
    assert element.xpath("v:OptionsMonthly/@Enabled", namespaces=ns) == ["false"]
    assert element.xpath("v:OptionsPeriodically/@Enabled", namespaces=ns) == ["false"]
    assert element.xpath("v:OptionsPeriodically/v:Kind/text()", namespaces=ns) == ["Hours"]
    assert element.xpath("v:OptionsPeriodically/v:FullPeriod/text()", namespaces=ns) == ["1"]
    schedule = element.xpath("v:OptionsPeriodically/v:Schedule/v:Day", namespaces=ns)
    assert [(d.get("Name"), d.text) for d in schedule] == [(d, ONES) for d in WEEK]
    assert element.xpath("v:OptionsContinuous/@Enabled", namespaces=ns) == ["false"]
    assert element.xpath("v:OptionsBackupWindow/@Enabled", namespaces=ns) == ["false"]


def test_children_follow_the_xsd_sequence_for_every_type() -> None:
    for schedule_type in ScheduleType:
        element = render_schedule_options(SchedulePolicy(type=schedule_type))
        names = [local(child) for child in element]
        assert names == sorted(names, key=XSD_ORDER.index)


@pytest.mark.parametrize(
    ("daily_type", "kind", "days"),
    [
        (DailyType.EVERYDAY, "Everyday", list(WEEK)),
        (DailyType.WORKDAYS, "WeekDays", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
        (DailyType.WEEKENDS, "SelectedDays", ["Sunday", "Saturday"]),
        (DailyType.WEDNESDAY, "SelectedDays", ["Wednesday"]),
        (DailyType.SUNDAY, "SelectedDays", ["Sunday"]),
    ],
)
def test_daily_types_render_as_kind_and_days(
    daily_type: DailyType, kind: str, days: list[str]
) -> None:
    element = render_schedule_options(SchedulePolicy(daily_type=daily_type))
    ns = {"v": NS}
    assert element.xpath("v:OptionsDaily/v:Kind/text()", namespaces=ns) == [kind]
    assert element.xpath("v:OptionsDaily/v:Days/text()", namespaces=ns) == days


@pytest.mark.parametrize(
    ("period", "kind", "full"),
    [
        (Period.MINUTES5, "Minutes", "5"),
        (Period.MINUTES30, "Minutes", "30"),
        (Period.HOURS1, "Hours", "1"),
        (Period.HOURS12, "Hours", "12"),
    ],
)
def test_periods_render_as_kind_and_full_period(period: Period, kind: str, full: str) -> None:
    element = render_schedule_options(SchedulePolicy(periodically_every=period))
    ns = {"v": NS}
    assert element.xpath("v:OptionsPeriodically/v:Kind/text()", namespaces=ns) == [kind]
    assert element.xpath("v:OptionsPeriodically/v:FullPeriod/text()", namespaces=ns) == [full]


def test_window_rows_start_on_sunday_midnight() -> None:
    window = [False] * 168
    window[0] = True  # Sunday 00:00
    window[24 + 9] = True  # Monday 09:00
    window[167] = True  # Saturday 23:00
    policy = SchedulePolicy(backup_window_enabled=True, backup_window=tuple(window))
    rows = render_schedule_options(policy).xpath(
        "v:OptionsBackupWindow/v:TimePeriods/v:Day", namespaces={"v": NS}
    )
    assert [row.get("Name") for row in rows] == list(WEEK)
    assert rows[0].text == "1," + ",".join(["0"] * 23)
    assert rows[1].text.split(",").index("1") == 9
    assert rows[6].text == ",".join(["0"] * 23) + ",1"
    assert rows[2].text == ZEROS


def test_a_whole_hour_offset_renders_in_hours_and_others_are_left_out() -> None:
    ns = {"v": NS}
    offset = "v:OptionsDaily/v:TimeOffsetUtc/text()"
    minus_five = render_schedule_options(SchedulePolicy(minute_offset=-300))
    assert minus_five.xpath(offset, namespaces=ns) == ["-5"]
    india = render_schedule_options(SchedulePolicy(minute_offset=330))
    assert india.xpath(offset, namespaces=ns) == []


# --- round trips -----------------------------------------------------------------------------

EXAMPLES = [
    SchedulePolicy(),
    SchedulePolicy(type=ScheduleType.MANUAL_ONLY, retry_enabled=False, retry_number=0),
    SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_every=Period.MINUTES30,
        backup_window_enabled=True,
        backup_window=tuple(h % 24 >= 20 for h in range(168)),
        minute_offset=120,
    ),
    SchedulePolicy(daily_type=DailyType.WEEKENDS, daily_time=time(1, 2, 3, 456789)),
    SchedulePolicy(daily_type=DailyType.WORKDAYS, minute_offset=-14 * 60, retry_wait_interval=1),
    SchedulePolicy(daily_type=DailyType.FRIDAY, daily_time=time(22, 30), minute_offset=14 * 60),
    SchedulePolicy(
        type=ScheduleType.PERIODICALLY,
        periodically_every=Period.HOURS12,
        backup_window=tuple(h % 2 == 0 for h in range(168)),
        retry_number=777,
        retry_wait_interval=10_080,
    ),
]


@pytest.mark.parametrize("policy", EXAMPLES)
def test_examples_round_trip(schema: etree.XMLSchema, policy: SchedulePolicy) -> None:
    element = render_schedule_options(policy)
    assert_valid(schema, element)
    edit = parse_schedule_options(element)
    assert edit == full_edit(policy)
    assert edit.apply(SchedulePolicy()) == policy


def test_round_trip_survives_serialization(schema: etree.XMLSchema) -> None:
    policy = EXAMPLES[2]
    text = etree.tostring(in_job(render_schedule_options(policy)))
    document = etree.fromstring(text)
    assert schema.validate(document)
    options = document.find(f"{{{NS}}}JobScheduleOptions")
    assert options is not None
    assert parse_schedule_options(options).apply(SchedulePolicy()) == policy


@st.composite
def policies(draw: st.DrawFn, offsets: st.SearchStrategy[int]) -> SchedulePolicy:
    enabled = draw(st.booleans())
    window = draw(st.lists(st.booleans(), min_size=168, max_size=168))
    if enabled and not any(window):
        window[draw(st.integers(0, 167))] = True
    return SchedulePolicy(
        type=draw(st.sampled_from(ScheduleType)),
        daily_type=draw(st.sampled_from(DailyType)),
        daily_time=draw(st.times()),
        periodically_every=draw(st.sampled_from(Period)),
        backup_window_enabled=enabled,
        backup_window=tuple(window),
        minute_offset=draw(offsets),
        retry_enabled=draw(st.booleans()),
        retry_number=draw(st.integers(0, 777)),
        retry_wait_interval=draw(st.integers(1, 10_080)),
    )


WHOLE_HOURS = st.integers(-14, 14).map(lambda hours: hours * 60)


@settings(max_examples=300, deadline=None)
@given(policy=policies(WHOLE_HOURS))
def test_every_representable_policy_round_trips_and_is_schema_valid(
    schema: etree.XMLSchema, policy: SchedulePolicy
) -> None:
    element = render_schedule_options(policy)
    assert_valid(schema, element)
    edit = parse_schedule_options(element)
    assert edit == full_edit(policy)
    # every field the XML has is set, so the edit reproduces the policy whatever it is applied to
    # (but for what the XML has no element for, and scheduleEnabled, which follows the type)
    unset = {f.name for f in fields(edit) if getattr(edit, f.name) is None}
    assert unset == {*NOT_IN_XML, "schedule_enabled"}
    assert edit.apply(SchedulePolicy(type=ScheduleType.MANUAL_ONLY, minute_offset=330)) == policy


@settings(max_examples=200, deadline=None)
@given(policy=policies(st.integers(-840, 840)))
def test_any_offset_survives_an_echoed_body(
    schema: etree.XMLSchema, policy: SchedulePolicy
) -> None:
    element = render_schedule_options(policy)
    assert_valid(schema, element)
    edit = parse_schedule_options(element)
    assert edit.apply(policy) == policy
    whole = policy.minute_offset % 60 == 0
    assert edit.minute_offset == (policy.minute_offset if whole else None)
    assert replace(edit, minute_offset=None) == replace(full_edit(policy), minute_offset=None)


# --- parsing what clients write ----------------------------------------------------------------

VEEAM_SHAPED = f"""
<RetryOptions>
  <RetryTimes>5</RetryTimes><RetryTimeout>20</RetryTimeout><RetrySpecified>true</RetrySpecified>
</RetryOptions>
<WaitForBackupCompletion>false</WaitForBackupCompletion>
<BackupCompetitionWaitingPeriodMin>180</BackupCompetitionWaitingPeriodMin>
<OptionsDaily Enabled="true">
  <Kind>Everyday</Kind>
  {"".join(f"<Days>{d}</Days>" for d in WEEK)}
  <Time>16:00:00.0000000</Time>
  <TimeOffsetUtc>2</TimeOffsetUtc>
</OptionsDaily>
<OptionsMonthly Enabled="false">
  <Time>22:00:00.0000000+01:00</Time><TimeOffsetUtc>2</TimeOffsetUtc>
  <DayNumberInMonth>Fourth</DayNumberInMonth><DayOfWeek>Saturday</DayOfWeek>
  <Months>January</Months><Months>December</Months><DayOfMonth>1</DayOfMonth>
</OptionsMonthly>
<OptionsPeriodically Enabled="false">
  <Kind>Hours</Kind><FullPeriod>1</FullPeriod>{week(tag="Schedule")}
</OptionsPeriodically>
<OptionsContinuous Enabled="false"/>
<OptionsBackupWindow Enabled="false">{week()}</OptionsBackupWindow>
<OptionsDaisyChaining Enabled="false"><PreviousJobUid>urn:veeam:Job:7</PreviousJobUid>
</OptionsDaisyChaining>
"""


def test_a_veeam_shaped_body_parses_and_ignores_disabled_extras(
    schema: etree.XMLSchema,
) -> None:
    element = body(VEEAM_SHAPED)
    assert_valid(schema, element)
    assert parse_schedule_options(element) == ScheduleEdit(
        type=ScheduleType.DAILY,
        daily_type=DailyType.EVERYDAY,
        daily_time=time(16, 0),
        periodically_every=Period.HOURS1,
        backup_window_enabled=False,
        backup_window=ALWAYS_OPEN,
        minute_offset=120,
        retry_enabled=True,
        retry_number=5,
        retry_wait_interval=20,
        periodic_window_enabled=False,  # its Schedule allows every hour
        periodic_window=ALWAYS_OPEN,
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], DailyType.WORKDAYS),
        (["Saturday", "Sunday"], DailyType.WEEKENDS),
        (list(WEEK), DailyType.EVERYDAY),
        (["Thursday"], DailyType.THURSDAY),
        (["Thursday", "Thursday"], DailyType.THURSDAY),
    ],
)
def test_selected_days_map_to_the_domains_day_sets(days: list[str], expected: DailyType) -> None:
    listed = "".join(f"<Days>{d}</Days>" for d in days)
    selected = body(
        f'<OptionsDaily Enabled="true"><Kind>SelectedDays</Kind>{listed}</OptionsDaily>'
    )
    assert parse_schedule_options(selected).daily_type is expected
    without_kind = body(f'<OptionsDaily Enabled="true">{listed}</OptionsDaily>')
    assert parse_schedule_options(without_kind).daily_type is expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Everyday", DailyType.EVERYDAY),
        ("WeekDays", DailyType.WORKDAYS),
        (" weekdays ", DailyType.WORKDAYS),
        ("EVERYDAY", DailyType.EVERYDAY),
    ],
)
def test_kinds_without_days(kind: str, expected: DailyType) -> None:
    parsed = parse_schedule_options(
        body(f'<OptionsDaily Enabled="true"><Kind>{kind}</Kind></OptionsDaily>')
    )
    assert parsed.daily_type is expected


@pytest.mark.parametrize(
    ("kind", "full", "expected"),
    [
        ("Minutes", 5, Period.MINUTES5),
        ("Minutes", 60, Period.HOURS1),
        ("Minutes", 120, Period.HOURS2),
        ("Hours", 8, Period.HOURS8),
        ("hours", 4, Period.HOURS4),
    ],
)
def test_periods_are_read_by_duration(kind: str, full: int, expected: Period) -> None:
    parsed = parse_schedule_options(
        body(
            f'<OptionsPeriodically Enabled="true"><Kind>{kind}</Kind>'
            f"<FullPeriod>{full}</FullPeriod></OptionsPeriodically>"
        )
    )
    assert parsed == ScheduleEdit(type=ScheduleType.PERIODICALLY, periodically_every=expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("06:30:00", time(6, 30)),
        ("06:30:15.1234560", time(6, 30, 15, 123456)),
        ("23:59:59.5", time(23, 59, 59, 500000)),
    ],
)
def test_times(text: str, expected: time) -> None:
    parsed = parse_schedule_options(
        body(f'<OptionsDaily Enabled="true"><Time>{text}</Time></OptionsDaily>')
    )
    assert parsed.daily_time == expected


# --- type selection ------------------------------------------------------------------------------


def test_both_disabled_is_manual_only() -> None:
    parsed = parse_schedule_options(
        body('<OptionsDaily Enabled="false"/><OptionsPeriodically Enabled="false"/>')
    )
    assert parsed == ScheduleEdit(type=ScheduleType.MANUAL_ONLY)


def test_disabled_settings_are_kept_when_the_type_is_settled() -> None:
    parsed = parse_schedule_options(
        body(
            '<OptionsDaily Enabled="false"><Kind>SelectedDays</Kind><Days>Monday</Days>'
            "<Time>01:00:00</Time></OptionsDaily>"
            '<OptionsPeriodically Enabled="true"><Kind>Minutes</Kind><FullPeriod>15</FullPeriod>'
            "</OptionsPeriodically>"
        )
    )
    assert parsed == ScheduleEdit(
        type=ScheduleType.PERIODICALLY,
        daily_type=DailyType.MONDAY,
        daily_time=time(1, 0),
        periodically_every=Period.MINUTES15,
    )
    policy = parsed.apply(SchedulePolicy())
    assert policy.type is ScheduleType.PERIODICALLY
    assert policy.daily_type is DailyType.MONDAY


def test_one_enabled_element_settles_the_type_alone() -> None:
    daily = parse_schedule_options(body('<OptionsDaily Enabled="true"/>'))
    assert daily == ScheduleEdit(type=ScheduleType.DAILY)
    periodic = parse_schedule_options(
        body('<OptionsDaily Enabled="false"/><OptionsPeriodically Enabled="true"/>')
    )
    assert periodic == ScheduleEdit(type=ScheduleType.PERIODICALLY)


def test_a_lone_disabled_element_changes_no_type() -> None:
    parsed = parse_schedule_options(
        body('<OptionsDaily Enabled="false"><TimeOffsetUtc>-3</TimeOffsetUtc></OptionsDaily>')
    )
    assert parsed == ScheduleEdit(minute_offset=-180)
    assert parse_schedule_options(body('<OptionsPeriodically Enabled="false"/>')) == ScheduleEdit()


# --- partial edits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("", ScheduleEdit()),
        (
            "<RetryOptions><RetryTimes>7</RetryTimes><RetryTimeout>30</RetryTimeout>"
            "<RetrySpecified>false</RetrySpecified></RetryOptions>",
            ScheduleEdit(retry_enabled=False, retry_number=7, retry_wait_interval=30),
        ),
        ("<RetryOptions><RetryTimes>0</RetryTimes></RetryOptions>", ScheduleEdit(retry_number=0)),
        ("<RetryOptions/>", ScheduleEdit()),
        (
            "<RetryOptions><RetrySpecified>1</RetrySpecified></RetryOptions>",
            ScheduleEdit(retry_enabled=True),
        ),
        ("<WaitForBackupCompletion>false</WaitForBackupCompletion>", ScheduleEdit()),
        (
            "<BackupCompetitionWaitingPeriodMin>180</BackupCompetitionWaitingPeriodMin>",
            ScheduleEdit(),
        ),
        (
            '<OptionsBackupWindow Enabled="false"><TimePeriods/></OptionsBackupWindow>',
            ScheduleEdit(backup_window_enabled=False),
        ),
        (
            f"<OptionsBackupWindow>{week({'Monday': ZEROS})}</OptionsBackupWindow>",
            ScheduleEdit(backup_window=(True,) * 24 + (False,) * 24 + (True,) * 120),
        ),
        (
            "<OptionsDaily><TimeOffsetUtc>5</TimeOffsetUtc></OptionsDaily>",
            ScheduleEdit(minute_offset=300),
        ),
        (
            '<OptionsMonthly Enabled="false"/><OptionsContinuous Enabled="false"/>'
            '<OptionsDaisyChaining Enabled="false"><PreviousJobUid>urn:veeam:Job:x</PreviousJobUid>'
            "</OptionsDaisyChaining>",
            ScheduleEdit(),
        ),
    ],
)
def test_only_what_is_present_changes(
    schema: etree.XMLSchema, inner: str, expected: ScheduleEdit
) -> None:
    element = body(inner)
    assert_valid(schema, element)
    assert parse_schedule_options(element) == expected


def test_a_partial_edit_applies_onto_the_stored_policy() -> None:
    stored = EXAMPLES[2]
    edit = parse_schedule_options(body("<RetryOptions><RetryTimes>9</RetryTimes></RetryOptions>"))
    assert edit.apply(stored) == replace(stored, retry_number=9)


# --- refusals ------------------------------------------------------------------------------------

P = "JobScheduleOptions/"
DAILY_ON = '<OptionsDaily Enabled="true">{}</OptionsDaily>'
PERIODIC_ON = '<OptionsPeriodically Enabled="true">{}</OptionsPeriodically>'
WINDOW = '<OptionsBackupWindow Enabled="true">{}</OptionsBackupWindow>'
MON_ROW = "OptionsBackupWindow/TimePeriods/Day[@Name='Monday']"

REFUSALS: list[tuple[str, str, str]] = [
    # (case id, body inner XML, expected prop)
    ("monthly", '<OptionsMonthly Enabled="true"/>', "OptionsMonthly"),
    (
        "monthly-with-content",
        '<OptionsMonthly Enabled="true"><DayOfMonth>3</DayOfMonth></OptionsMonthly>',
        "OptionsMonthly",
    ),
    ("continuous", '<OptionsContinuous Enabled="true"/>', "OptionsContinuous"),
    (
        "daisy-chain",
        '<OptionsDaisyChaining Enabled="true"><PreviousJobUid>urn:veeam:Job:1</PreviousJobUid>'
        "</OptionsDaisyChaining>",
        "OptionsDaisyChaining",
    ),
    (
        "wait-for-backup",
        "<WaitForBackupCompletion>true</WaitForBackupCompletion>",
        "WaitForBackupCompletion",
    ),
    (
        "daily-and-periodic",
        DAILY_ON.format("") + PERIODIC_ON.format(""),
        "OptionsPeriodically",
    ),
    (
        "two-selected-days",
        DAILY_ON.format("<Kind>SelectedDays</Kind><Days>Monday</Days><Days>Wednesday</Days>"),
        "OptionsDaily/Days",
    ),
    (
        "six-days",
        DAILY_ON.format("".join(f"<Days>{d}</Days>" for d in WEEK[1:])),
        "OptionsDaily/Days",
    ),
    ("selected-no-days", DAILY_ON.format("<Kind>SelectedDays</Kind>"), "OptionsDaily/Days"),
    (
        "everyday-with-one-day",
        DAILY_ON.format("<Kind>Everyday</Kind><Days>Saturday</Days>"),
        "OptionsDaily/Days",
    ),
    (
        "weekdays-with-weekend",
        DAILY_ON.format("<Kind>WeekDays</Kind><Days>Saturday</Days><Days>Sunday</Days>"),
        "OptionsDaily/Days",
    ),
    ("unknown-daily-kind", DAILY_ON.format("<Kind>Monthly</Kind>"), "OptionsDaily/Kind"),
    ("time-with-offset", DAILY_ON.format("<Time>22:00:00-07:00</Time>"), "OptionsDaily/Time"),
    ("time-in-utc", DAILY_ON.format("<Time>22:00:00Z</Time>"), "OptionsDaily/Time"),
    ("time-24-00", DAILY_ON.format("<Time>24:00:00</Time>"), "OptionsDaily/Time"),
    (
        "time-finer-than-microseconds",
        DAILY_ON.format("<Time>22:00:00.1234567</Time>"),
        "OptionsDaily/Time",
    ),
    (
        "offset-too-east",
        DAILY_ON.format("<TimeOffsetUtc>15</TimeOffsetUtc>"),
        "OptionsDaily/TimeOffsetUtc",
    ),
    (
        "offset-in-minutes",
        DAILY_ON.format("<TimeOffsetUtc>-330</TimeOffsetUtc>"),
        "OptionsDaily/TimeOffsetUtc",
    ),
    (
        "period-3-hours",
        PERIODIC_ON.format("<Kind>Hours</Kind><FullPeriod>3</FullPeriod>"),
        "OptionsPeriodically/FullPeriod",
    ),
    (
        "period-1-minute",
        PERIODIC_ON.format("<Kind>Minutes</Kind><FullPeriod>1</FullPeriod>"),
        "OptionsPeriodically/FullPeriod",
    ),
    (
        "period-zero",
        PERIODIC_ON.format("<Kind>Hours</Kind><FullPeriod>0</FullPeriod>"),
        "OptionsPeriodically/FullPeriod",
    ),
    (
        "period-continuously",
        PERIODIC_ON.format("<Kind>Continuously</Kind><FullPeriod>1</FullPeriod>"),
        "OptionsPeriodically/Kind",
    ),
    (
        "period-without-kind",
        PERIODIC_ON.format("<FullPeriod>4</FullPeriod>"),
        "OptionsPeriodically/Kind",
    ),
    (
        "kind-without-period",
        PERIODIC_ON.format("<Kind>Hours</Kind>"),
        "OptionsPeriodically/FullPeriod",
    ),
    (
        "periodic-schedule-no-hour",
        PERIODIC_ON.format(week(dict.fromkeys(WEEK, ",".join(["0"] * 24)), tag="Schedule")),
        "OptionsPeriodically/Schedule",
    ),
    (
        "periodic-schedule-bad-row",
        PERIODIC_ON.format(week({"Friday": "1,1"}, tag="Schedule")),
        "OptionsPeriodically/Schedule/Day[@Name='Friday']",
    ),
    ("window-23-values", WINDOW.format(week({"Monday": ",".join(["1"] * 23)})), MON_ROW),
    ("window-25-values", WINDOW.format(week({"Monday": ",".join(["1"] * 25)})), MON_ROW),
    ("window-empty-row", WINDOW.format(week({"Monday": ""})), MON_ROW),
    ("window-value-2", WINDOW.format(week({"Monday": "2," + ",".join(["1"] * 23)})), MON_ROW),
    ("window-value-true", WINDOW.format(week({"Monday": "true," + ",".join(["1"] * 23)})), MON_ROW),
    (
        "window-unknown-day",
        WINDOW.format(
            week().replace("</TimePeriods>", f'<Day Name="Funday">{ONES}</Day></TimePeriods>')
        ),
        "OptionsBackupWindow/TimePeriods/Day[@Name='Funday']",
    ),
    (
        "window-duplicate-day",
        WINDOW.format(
            week().replace("</TimePeriods>", f'<Day Name="Monday">{ONES}</Day></TimePeriods>')
        ),
        MON_ROW,
    ),
    (
        "window-missing-day",
        WINDOW.format(f'<TimePeriods><Day Name="Monday">{ONES}</Day></TimePeriods>'),
        "OptionsBackupWindow/TimePeriods",
    ),
    (
        "window-enabled-but-closed",
        WINDOW.format(week(dict.fromkeys(WEEK, ZEROS))),
        "OptionsBackupWindow/TimePeriods",
    ),
    (
        "retry-times-too-many",
        "<RetryOptions><RetryTimes>778</RetryTimes></RetryOptions>",
        "RetryOptions/RetryTimes",
    ),
    (
        "retry-times-negative",
        "<RetryOptions><RetryTimes>-1</RetryTimes></RetryOptions>",
        "RetryOptions/RetryTimes",
    ),
    (
        "retry-timeout-zero",
        "<RetryOptions><RetryTimeout>0</RetryTimeout></RetryOptions>",
        "RetryOptions/RetryTimeout",
    ),
    (
        "retry-timeout-over-a-week",
        "<RetryOptions><RetryTimeout>10081</RetryTimeout></RetryOptions>",
        "RetryOptions/RetryTimeout",
    ),
    (
        "daily-settings-without-type",
        '<OptionsDaily Enabled="false"><Time>01:00:00</Time></OptionsDaily>',
        "OptionsDaily",
    ),
    (
        "daily-settings-no-enabled",
        "<OptionsDaily><Kind>WeekDays</Kind></OptionsDaily>",
        "OptionsDaily",
    ),
    (
        "periodic-settings-without-type",
        '<OptionsPeriodically Enabled="false"><Kind>Hours</Kind><FullPeriod>2</FullPeriod>'
        "</OptionsPeriodically>",
        "OptionsPeriodically",
    ),
]


@pytest.mark.parametrize(("inner", "prop"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_what_the_domain_cannot_hold_is_refused(
    schema: etree.XMLSchema, inner: str, prop: str
) -> None:
    element = body(inner)
    assert_valid(schema, element)  # each refusal is something the schema itself allows
    with pytest.raises(InvalidInput) as raised:
        parse_schedule_options(element)
    assert raised.value.prop == P + prop


def test_refusals_name_the_path_in_the_message() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_schedule_options(body('<OptionsMonthly Enabled="true"/>'))
    assert raised.value.message.startswith("JobScheduleOptions/OptionsMonthly: ")


def test_a_foreign_element_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_schedule_options(etree.fromstring("<JobScheduleOptions/>"))
    assert raised.value.prop == "JobScheduleOptions"


def test_the_periodic_schedule_is_the_periodic_window() -> None:
    """``OptionsPeriodically/Schedule`` holds the hours a periodic job's slots may fall in: the
    JSON dialect's ``periodicallyWindowSettings``, enabled when it forbids some hour; rendered
    back as it was read, and all hours when the window is off."""
    friday_morning_off = "0," + ",".join(["1"] * 23)
    edit = parse_schedule_options(
        body(PERIODIC_ON.format(week({"Friday": friday_morning_off}, tag="Schedule")))
    )
    assert edit.periodic_window_enabled is True and edit.periodic_window is not None
    assert edit.periodic_window.count(False) == 1 and not edit.periodic_window[5 * 24]
    policy = edit.apply(SchedulePolicy())
    ns = {"v": NS}
    rendered = render_schedule_options(policy)
    rows = rendered.xpath("v:OptionsPeriodically/v:Schedule/v:Day", namespaces=ns)
    assert [(d.get("Name"), d.text) for d in rows] == [
        (d, friday_morning_off if d == "Friday" else ONES) for d in WEEK
    ]
    every_hour = parse_schedule_options(body(PERIODIC_ON.format(week({}, tag="Schedule"))))
    opened = every_hour.apply(policy)
    assert not opened.periodic_window_enabled
    rows = render_schedule_options(opened).xpath(
        "v:OptionsPeriodically/v:Schedule/v:Day", namespaces=ns
    )
    assert [d.text for d in rows] == [ONES] * 7
