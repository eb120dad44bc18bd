"""A real S3 server for tests: moto's (``moto_server``) on a free loopback port, once per worker.

moto keeps everything in memory and honours ``If-None-Match: *`` on PutObject and
CompleteMultipartUpload, multipart uploads and ListObjectsV2 paging (see
``shared/reference/imap-and-scale.md`` B3), so the engine's contract can be checked against it.
Each test takes its own bucket (``new_location``) so tests never see each other's objects.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keepstone.engine.s3location import S3Location, S3Tuning
from keepstone.engine.s3store import S3Store

ACCESS_KEY = "testaccesskey"
SECRET_KEY = "test-secret-key-not-real"
REGION = "us-east-1"
START_DEADLINE = 60.0
# Tests wait milliseconds, not seconds, between retries; the retry logic itself is unchanged.
FAST = S3Tuning(backoff_base=0.005, backoff_cap=0.05, read_timeout=5.0, connect_timeout=2.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> MotoServer:
        port = free_port()
        log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
        moto = Path(sys.executable).with_name("moto_server")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(process, port, log)
        server.wait_ready()
        return server

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/", timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.unlink(missing_ok=True)


def new_location(url: str, folder: str = "repo") -> S3Location:
    """A fresh bucket's location (the bucket itself is created by ``new_store``)."""
    bucket = f"ks-{secrets.token_hex(6)}"
    return S3Location(url, REGION, bucket, folder, ACCESS_KEY, SECRET_KEY)


def new_store(url: str, folder: str = "repo", tuning: S3Tuning = FAST) -> S3Store:
    store = S3Store(new_location(url, folder), tuning)
    store.ensure_bucket()
    return store


@dataclass
class RcloneServer:
    """``rclone serve s3`` over a directory: objects on disk, so it survives a restart (it does
    not honour conditional writes, which the tests using it do not rely on)."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        rclone = Path(sys.executable).with_name("rclone")
        log = (self.root.parent / "rclone.log").open("ab")
        self.process = subprocess.Popen(
            [str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{self.port}",
             "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", str(self.root)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rclone serve s3 exited")
            try:
                httpx.get(self.url + "/", timeout=2.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("rclone serve s3 did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@contextlib.contextmanager
def running_rclone(root: Path) -> Iterator[RcloneServer]:
    """``rclone serve s3`` over a new directory ``root`` on a free port, stopped on exit."""
    root.mkdir()
    server = RcloneServer(root, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store(moto: MotoServer) -> S3Store:
    return new_store(moto.url)


def make_bucket(url: str) -> str:
    """A new empty bucket on the server at ``url``; its name."""
    store = new_store(url)
    return store.location.bucket


def storage_body(url: str, bucket: str, account: str, folder: str = "keepstone") -> dict[str, Any]:
    """A v6/v7 ``objectstoragerepositories`` body (v8's inline ``objectStorage`` too)."""
    return {
        "name": f"{bucket}-{folder.replace('/', '-')}",
        "accountId": account,
        "amazonBucketS3Compatible": {"servicePoint": url, "customRegionId": REGION, "name": bucket},
        "s3Folder": folder,
    }


def account_body() -> dict[str, Any]:
    return {
        "accountType": "amazonS3CompatibleAccount",
        "userName": ACCESS_KEY,
        "password": SECRET_KEY,
        "description": "moto",
    }
