"""E-mail notifications against a real SMTP server started here: aiosmtpd on a loopback port,
STARTTLS with a certificate of a CA made by the test, and AUTH. The settings go through the API
(``/vN/VboEmailSettings``); runs end through the services the proxies use; the mails are sent by
the sender the scheduler starts, and read back as the SMTP server received them."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession

from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.scheduler import Scheduler
from keepstone.services import catalog, notifications, runs
from keepstone.services.context import Context
from tests.conftest import Api, catalog_text
from tests.work import assert_linear, catalog_work

SMTP_USER = "keepstone-mailer"
SMTP_PASSWORD = "smtp secret 7f3a"
PUBLIC = "https://backup.example.test"


@dataclass
class Mailbox:
    """What the SMTP server received, and how the client talked to it."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], bool, bool]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        tls = session.ssl is not None
        self.envelopes.append(
            (envelope.mail_from or "", list(envelope.rcpt_tos), tls, bool(session.authenticated))
        )
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    ca_file: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("smtp")
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    mailbox = Mailbox()

    def authenticate(
        server: Any, session: SmtpSession, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            mailbox.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer(port, mailbox, ca_file)
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    """The server's mailbox, emptied; the client trusts the test's CA as an operator's
    ``SSL_CERT_FILE`` would make it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.ca_file))
    smtp.mailbox.messages.clear()
    smtp.mailbox.envelopes.clear()
    smtp.mailbox.logins.clear()
    return smtp.mailbox


def _settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "enableNotification": True,
        "smtpServer": "127.0.0.1",
        "port": port,
        "useSSL": True,
        "useAuthentication": True,
        "username": SMTP_USER,
        "userPassword": SMTP_PASSWORD,
        "from": "keepstone@example.test",
        "to": "ops@example.test; oncall@example.test",
        "notifyOnSuccess": True,
        "notifyOnWarning": True,
        "notifyOnFailure": True,
        **extra,
    }


def _finish(ctx: Context, job_id: str, status: SessionStatus, users: int = 0) -> str:
    """A run of ``job_id`` claimed by the built-in proxy, with a warning about each of
    ``users`` users, ended with ``status``; returns its session id."""
    assert runs.start_job(ctx, job_id, "a notification test") is not None
    proxy = next(p.id for p in catalog.list_proxies(ctx) if p.is_local)
    run = runs.claim_next(ctx, proxy)
    assert run is not None
    for n in range(users):
        runs.add_log(
            ctx,
            run.session_id,
            SessionStatus.WARNING,
            f"item {n} unreadable",
            subject=(f"u{n}", f"user{n}@example.test"),
        )
    statistics: runs.Statistics = {"read_bytes": 5000, "read_items": 12, "written_bytes": 3000}
    ctx.clock.advance(timedelta(minutes=2, seconds=5))  # type: ignore[attr-defined]
    ended = runs.end_attempt(ctx, run, proxy, status, "done", statistics, 100, retryable=False)
    assert ended is not None and ended.status == status.value
    return run.session_id


def test_settings_round_trip_without_the_password(
    api: Api, ctx: Context, data_dir: Path, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    defaults = api.get("/v8/VboEmailSettings").json()
    assert defaults["enableNotification"] is False
    assert defaults["authenticationType"] == "CustomSmtp"
    assert api.put("/v8/VboEmailSettings", _settings(smtp.port)).status_code == 204
    assert api.put("/v6/VboEmailSettings", {"subject": "%JobResult%: %JobName%"}).status_code == 200
    for version in (6, 8):
        body = api.get(f"/v{version}/VboEmailSettings").json()
        assert body["smtpServer"] == "127.0.0.1" and body["port"] == smtp.port
        assert body["useSSL"] is True and body["from"] == "keepstone@example.test"
        assert body["subject"] == "%JobResult%: %JobName%"  # a PUT keeps what it does not send
        assert "userPassword" not in body and SMTP_PASSWORD not in str(body)
        assert (body["dailyDigest"], body["dailyDigestTime"]) == (False, "08:00")  # Keepstone's
    assert SMTP_PASSWORD not in catalog_text(ctx, data_dir)


@pytest.mark.sqlite_catalog  # input checks: the catalog's kind plays no part
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"smtpServer": ""}, "smtpServer"),
        ({"smtpServer": "x" * 64 + ".example.test"}, "smtpServer"),  # idna: label too long
        ({"smtpServer": "m\u00fcller.example.test"}, "smtpServer"),
        ({"smtpServer": "smtp://mail.example.test"}, "smtpServer"),
        ({"port": 0}, "port"),
        ({"from": "not an address"}, "from"),
        ({"to": "ops@example.test; nobody"}, "to"),
        ({"subject": "Backup\r\nBcc: everyone@example.test"}, "subject"),
        ({"authenticationType": "Microsoft365"}, "authenticationType"),
        ({"userPassword": None, "username": ""}, "username"),
        ({"dailyDigest": True, "dailyDigestTime": "24:00"}, "dailyDigestTime"),
        ({"dailyDigestTime": "8:00"}, "dailyDigestTime"),
        ({"dailyDigestTime": "08:00:00"}, "dailyDigestTime"),
        ({"dailyDigestTime": 800}, "dailyDigestTime"),
        ({"dailyDigest": "yes"}, "dailyDigest"),
    ],
)
def test_settings_that_cannot_send_are_refused(
    api: Api, change: dict[str, Any], named: str
) -> None:
    before = api.get("/v8/VboEmailSettings").json()
    answer = api.put("/v8/VboEmailSettings", {**_settings(2525), **change})
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"]
    assert api.get("/v8/VboEmailSettings").json() == before  # nothing changed


def test_a_host_saved_before_hosts_were_checked_fails_as_a_connection_error() -> None:
    # the resolver raises UnicodeError (not OSError) on such a name: the outbox and SendTestEmail
    # catch OSError, so the mail fails with a message instead of an unhandled error
    settings = notifications.EmailSettings(smtpServer="x" * 64 + ".example.test")
    with pytest.raises(OSError, match="not a host name"):
        notifications.send(settings, None, EmailMessage())


def test_a_reader_cannot_change_the_settings(reader: Api, smtp: SmtpServer) -> None:
    assert reader.get("/v8/VboEmailSettings").status_code == 200
    assert reader.put("/v8/VboEmailSettings", _settings(smtp.port)).status_code == 403
    assert reader.post("/v8/VboEmailSettings/SendTestEmail").status_code == 403


def test_test_email_goes_through_starttls_and_auth(
    api: Api, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    assert api.put("/v8/VboEmailSettings", _settings(smtp.port)).status_code == 204
    assert api.post("/v8/VboEmailSettings/SendTestEmail").status_code == 204
    assert api.post("/v6/VboEmailSettings/SendTest").status_code == 200
    assert len(mailbox.messages) == 2
    sender, recipients, tls, authenticated = mailbox.envelopes[0]
    assert (sender, recipients) == (
        "keepstone@example.test",
        ["ops@example.test", "oncall@example.test"],
    )
    assert tls and authenticated and mailbox.logins
    message = mailbox.messages[0]
    assert message["Subject"] == "Keepstone test e-mail"
    assert message["To"] == "ops@example.test, oncall@example.test"
    assert message["Auto-Submitted"] == "auto-generated"


def test_a_test_email_that_cannot_be_sent_is_a_400_naming_the_cause(
    api: Api, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    wrong = _settings(smtp.port, userPassword="wrong password")
    assert api.put("/v8/VboEmailSettings", wrong).status_code == 204
    answer = api.post("/v8/VboEmailSettings/SendTestEmail")
    assert answer.status_code == 400
    assert "SMTPAuthenticationError" in answer.json()["message"]
    assert not mailbox.messages


def test_a_finished_run_is_mailed_once_with_its_facts(
    api: Api, ctx: Context, job: dict[str, Any], mailbox: Mailbox, smtp: SmtpServer
) -> None:
    settings = _settings(
        smtp.port,
        subject="[%JobResult%] %OrgName% - %JobName% %Issues% issues",
        attachDetailedReport=True,
    )
    assert api.put("/v8/VboEmailSettings", settings).status_code == 204
    session_id = _finish(ctx, job["id"], SessionStatus.WARNING, users=3)
    ctx.public_url = PUBLIC
    scheduler = Scheduler(ctx)
    scheduler.tick()  # the sender runs beside the scheduler
    scheduler.wait_for_mail()
    scheduler.tick()
    scheduler.wait_for_mail()
    assert len(mailbox.messages) == 1  # sent once: the outbox row is done
    message = mailbox.messages[0]
    assert message["Subject"] == "[Warning] example.test - test_job 3 issues"
    assert message["From"] == "keepstone@example.test"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    body = plain.get_content()
    for expected in (
        "Job:           test_job",
        "Organization:  example.test",
        "Result:        Warning",
        "Duration:      0:02:05",
        "Objects:       3 processed, 3 with warnings or errors",
        "Items read:    12",
        "Bytes read:    5000",
        "Bytes stored:  3000",
        f"Session:       {PUBLIC}/sessions/{session_id}",
        "Warning  user1@example.test: item 1 unreadable",
    ):
        assert expected in body, (expected, body)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    report = str(attachment.get_content()).splitlines()
    assert report[0] == "User,Status,Time,Message"
    assert len(report) == 4 and report[2].startswith("user1@example.test,Warning,")
    [row] = notifications.pending(ctx)
    assert row.sent_at is not None and row.next_attempt_at is None and row.attempts == 1


def test_results_not_asked_for_are_not_mailed(
    api: Api, ctx: Context, job: dict[str, Any], smtp: SmtpServer
) -> None:
    assert api.put("/v8/VboEmailSettings", _settings(smtp.port, notifyOnSuccess=False)).status_code
    _finish(ctx, job["id"], SessionStatus.SUCCESS)
    assert not list(notifications.pending(ctx))
    _finish(ctx, job["id"], SessionStatus.FAILED)
    assert [row.result for row in notifications.pending(ctx)] == ["Failed"]


def test_an_unreachable_server_is_retried_with_backoff_and_the_run_still_succeeds(
    api: Api,
    ctx: Context,
    clock: ManualClock,
    job: dict[str, Any],
    mailbox: Mailbox,
    smtp: SmtpServer,
) -> None:
    closed = _free_port()  # nothing listens there
    assert api.put("/v8/VboEmailSettings", _settings(closed)).status_code == 204
    session_id = _finish(ctx, job["id"], SessionStatus.SUCCESS)
    assert runs.get_session(ctx, session_id).status == "Success"
    first = notifications.deliver_due(ctx, PUBLIC)
    assert (first.sent, first.failed) == (0, 1)
    [row] = notifications.pending(ctx)
    assert row.attempts == 1 and "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at == clock.now() + notifications.RETRY_FIRST
    assert notifications.deliver_due(ctx, PUBLIC).failed == 0  # not due before its backoff
    clock.advance(notifications.RETRY_FIRST)
    assert notifications.deliver_due(ctx, PUBLIC).failed == 1
    [row] = notifications.pending(ctx)
    assert row.next_attempt_at == clock.now() + 2 * notifications.RETRY_FIRST  # doubled
    # the operator fixes the port: the next attempt delivers the mail
    assert api.put("/v8/VboEmailSettings", {"port": smtp.port}).status_code == 204
    clock.advance(2 * notifications.RETRY_FIRST)
    assert notifications.deliver_due(ctx, PUBLIC).sent == 1
    assert len(mailbox.messages) == 1 and "Result:        Success" in str(
        mailbox.messages[0].get_content()
    )
    assert runs.get_session(ctx, session_id).status == "Success"


def test_a_mail_is_given_up_after_its_last_attempt(
    api: Api, ctx: Context, clock: ManualClock, job: dict[str, Any]
) -> None:
    assert api.put("/v8/VboEmailSettings", _settings(_free_port())).status_code == 204
    _finish(ctx, job["id"], SessionStatus.FAILED)
    for _ in range(notifications.MAX_ATTEMPTS):
        assert notifications.deliver_due(ctx, PUBLIC).failed == 1
        clock.advance(notifications.RETRY_MOST)
    assert notifications.deliver_due(ctx, PUBLIC).failed == 0
    [row] = notifications.pending(ctx)
    assert row.attempts == notifications.MAX_ATTEMPTS and row.next_attempt_at is None
    assert notifications.backoff(notifications.MAX_ATTEMPTS) == notifications.RETRY_MOST


def test_sending_n_and_4n_mails_grows_catalog_work_linearly(
    api: Api, ctx: Context, job: dict[str, Any], mailbox: Mailbox, smtp: SmtpServer
) -> None:
    assert api.put("/v8/VboEmailSettings", _settings(smtp.port)).status_code == 204

    def work(count: int) -> int:
        for _ in range(count):
            _finish(ctx, job["id"], SessionStatus.WARNING, users=2)
        with catalog_work(ctx) as counted:
            assert notifications.deliver_due(ctx, PUBLIC).sent == count
        return counted.count

    assert_linear(work(2), work(8))
    assert len(mailbox.messages) == 10


# ---- the daily digest (Keepstone's extension) -----------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")  # the server's time zone: UTC+2 in June


def _body_of(message: EmailMessage) -> str:
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    return str(plain.get_content()).replace("\r\n", "\n")  # as sent over SMTP: CRLF


def test_the_daily_digest_is_sent_once_at_its_time_and_lists_the_days_runs(
    api: Api,
    ctx: Context,
    clock: ManualClock,
    job: dict[str, Any],
    mailbox: Mailbox,
    smtp: SmtpServer,
) -> None:
    ctx.tz, ctx.public_url = BERLIN, PUBLIC
    assert clock.now() == datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
    settings = _settings(
        smtp.port, notifyOnSuccess=False, dailyDigest=True, dailyDigestTime="13:30"
    )
    assert api.put("/v8/VboEmailSettings", settings).status_code == 204
    quiet = _finish(ctx, job["id"], SessionStatus.SUCCESS)  # not mailed by itself
    loud = _finish(ctx, job["id"], SessionStatus.WARNING, users=2)  # mailed by itself too

    def tick(scheduler: Scheduler) -> list[str]:
        before = len(mailbox.messages)
        scheduler.tick()
        scheduler.wait_for_mail()
        return [str(m["Subject"]) for m in mailbox.messages[before:]]

    scheduler = Scheduler(ctx)
    assert tick(scheduler) == ["[Warning] example.test - test_job (2 objects) 2 issues"]
    clock.set(datetime(2026, 6, 10, 11, 29, 59, tzinfo=UTC))  # 13:29:59 in Berlin
    assert tick(scheduler) == []  # not before its time
    clock.set(datetime(2026, 6, 10, 11, 30, tzinfo=UTC))
    assert tick(scheduler) == ["Keepstone daily digest 2026-06-10: 2 runs: 1 Success, 1 Warning"]
    body = _body_of(mailbox.messages[-1])
    for expected in (
        "Runs that ended from 2026-06-09 13:30:00 CEST to 2026-06-10 13:30:00 CEST.",
        "2 runs: 1 Success, 1 Warning",
        "\ntest_job (example.test)\n",
        "  Success  started 2026-06-10 12:00:00 CEST, duration 0:02:05\n"
        "           0 objects, 0 with warnings or errors, 12 items read, 5000 bytes read, "
        f"3000 bytes stored\n           {PUBLIC}/sessions/{quiet}\n",
        "  Warning  started 2026-06-10 12:02:05 CEST, duration 0:02:05\n"
        "           2 objects, 2 with warnings or errors, 12 items read, 5000 bytes read, "
        f"3000 bytes stored\n           {PUBLIC}/sessions/{loud}\n",
    ):
        assert expected in body, (expected, body)
    assert body.count("/sessions/") == 2
    # a run that ends after the digest is in the next day's; a restarted scheduler (or another
    # leader: the day is in the catalog) sends no second digest for the day
    later = _finish(ctx, job["id"], SessionStatus.FAILED)
    assert tick(Scheduler(ctx)) == ["[Failed] example.test - test_job (0 objects) 0 issues"]
    clock.set(datetime(2026, 6, 11, 11, 29, tzinfo=UTC))
    assert tick(Scheduler(ctx)) == []
    assert not notifications.queue_digest(ctx)
    clock.set(datetime(2026, 6, 11, 11, 45, tzinfo=UTC))  # it was down at 13:30: sent late
    assert tick(Scheduler(ctx)) == ["Keepstone daily digest 2026-06-11: 1 run: 1 Failed"]
    body = _body_of(mailbox.messages[-1])
    assert f"{PUBLIC}/sessions/{later}" in body and body.count("/sessions/") == 1
    assert "from 2026-06-10 13:30:00 CEST to 2026-06-11 13:30:00 CEST" in body
    assert tick(Scheduler(ctx)) == [] and not notifications.queue_digest(ctx)
    digests = [row for row in notifications.pending(ctx) if row.result == notifications.DIGEST]
    assert [row.digest_day for row in digests] == ["2026-06-10", "2026-06-11"]
    assert all(row.sent_at is not None for row in digests)


def test_an_empty_day_gets_a_short_no_runs_digest_starting_the_day_after_it_is_enabled(
    api: Api, ctx: Context, clock: ManualClock, mailbox: Mailbox, smtp: SmtpServer
) -> None:
    # enabled at 10:00 with a digest at 09:00: today's time has passed, the first is tomorrow's
    digest = _settings(smtp.port, dailyDigest=True, dailyDigestTime="09:00")
    assert api.put("/v8/VboEmailSettings", digest).status_code == 204
    assert not notifications.queue_digest(ctx)
    clock.set(datetime(2026, 6, 11, 8, 59, tzinfo=UTC))
    assert not notifications.queue_digest(ctx)
    clock.set(datetime(2026, 6, 11, 9, 0, tzinfo=UTC))
    assert notifications.queue_digest(ctx) and not notifications.queue_digest(ctx)
    assert notifications.deliver_due(ctx, PUBLIC).sent == 1
    [message] = mailbox.messages
    assert message["Subject"] == "Keepstone daily digest 2026-06-11: no runs"
    assert _body_of(message) == (
        "Runs that ended from 2026-06-10 09:00:00 UTC to 2026-06-11 09:00:00 UTC.\n"
        "\n"
        "No job ran in these 24 hours.\n"
    )
    # notifications off: no digest, and the digest's settings are kept as they are
    notifications.put_settings(ctx, {"enableNotification": False}, None)  # (the token expired)
    clock.set(datetime(2026, 6, 12, 9, 0, tzinfo=UTC))
    assert not notifications.queue_digest(ctx)
    kept, _ = notifications.get_settings(ctx)
    assert (kept.dailyDigest, kept.dailyDigestTime) == (True, "09:00")


def test_composing_a_digest_of_n_and_4n_runs_takes_the_same_statements(
    ctx: Context, clock: ManualClock, job: dict[str, Any]
) -> None:
    settings = notifications.EmailSettings(
        enableNotification=True, sender="k@example.test", to="ops@example.test"
    )

    def work(count: int) -> int:
        for _ in range(count):
            _finish(ctx, job["id"], SessionStatus.WARNING, users=2)
        end = clock.now() + timedelta(seconds=1)
        mail = notifications.MailOutbox(created_at=end, digest_day=None)
        with catalog_work(ctx) as counted:
            body = _body_of(notifications.compose_digest(ctx, mail, settings, PUBLIC))
        assert body.count("/sessions/") == count
        clock.advance(timedelta(days=1))  # the next measure's runs are in another day
        return counted.count

    small, large = work(3), work(12)
    assert small == large  # the runs, their number, their users' counts: whatever their number
