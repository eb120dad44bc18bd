"""An S3 bucket (AWS or any S3-compatible server) as the engine's object store.

The engine's contract holds on S3 as on a disk: objects are never overwritten (every PUT and every
CompleteMultipartUpload carries ``If-None-Match: *``, so a second writer of a name gets
``ObjectExists``), an object appears whole or not at all (a large pack goes up as a multipart
upload that only exists once completed; a failed one is aborted), and listings are paged (1,000
keys a page). Transient failures (500/502/503/504, ``SlowDown``, 409
``ConditionalRequestConflict``, connection resets, timeouts) are retried with capped exponential
backoff and jitter by this module itself rather than botocore's retryer, so that a body read cut
mid-stream is retried too, every retry is logged, and a PUT whose answer was lost is recognised
when its retry meets its own object (412 on identical bytes is success, not ``ObjectExists``).

Addressing is path-style (``http://host/bucket/key``): S3-compatible servers rarely have
wildcard DNS. Plain ``http://`` is refused unless the service point is on loopback, since the
credentials' signatures and the repository's packs would otherwise cross a network in the clear.
"""

from __future__ import annotations

import builtins
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import structlog
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from keepstone.engine.errors import ObjectExists, ObjectNotFound, RepositoryCorrupt
from keepstone.engine.s3location import (
    MiB,
    S3Location,
    S3Refused,
    S3Tuning,
    S3Unavailable,
    check_service_point,
)
from keepstone.engine.store import check_name

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ListObjectsV2OutputTypeDef

log = structlog.get_logger(__name__)

T = TypeVar("T")
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
_RETRYABLE_STATUS = frozenset({409, 500, 502, 503, 504})
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
     "ConditionalRequestConflict", "RequestTimeTooSkewed"}
)  # fmt: skip
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_EXISTS_CODES = frozenset({"412", "PreconditionFailed"})
_TRANSPORT_ERRORS = (
    BotoConnectionError,  # connection refused (a server restarting), connect timeouts
    HTTPClientError,  # connections reset or closed, read timeouts
    IncompleteReadError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


class S3Store:
    """Objects as keys ``<folder>/<name>`` of one bucket."""

    def __init__(self, location: S3Location, tuning: S3Tuning | None = None) -> None:
        self.location = location
        self.tuning = tuning or S3Tuning()
        if self.tuning.part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
        self._prefix = f"{location.folder}/" if location.folder else ""
        self.retries = 0  # transient failures retried since this store was made (tests, logs)
        # Imported here: boto3 costs about 9 MB of memory, which a run into a local
        # repository (and every server without S3) does without.
        import boto3

        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=check_service_point(location.service_point),
            region_name=location.region or "us-east-1",
            aws_access_key_id=location.access_key,
            aws_secret_access_key=location.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},  # ours: see the module docstring
                connect_timeout=self.tuning.connect_timeout,
                read_timeout=self.tuning.read_timeout,
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def __repr__(self) -> str:
        loc = self.location
        return f"S3Store({loc.service_point}/{loc.bucket}/{loc.folder})"

    def _key(self, name: str) -> str:
        return self._prefix + check_name(name)

    # ---- the ObjectStore interface -------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        self.put_parts(name, (data,))

    def put_parts(self, name: str, parts: Sequence[bytes]) -> None:
        key = self._key(name)
        total = sum(len(p) for p in parts)
        if total <= self.tuning.multipart_threshold:
            self._put_single(name, key, b"".join(parts))
        else:
            whole = partial(b"".join, parts)
            self._put_multipart(name, key, partial(_slices, parts, self.tuning.part_size), whole)

    def open_spool(self) -> S3Spool:
        return S3Spool(self)

    def put_file(self, name: str, file: BinaryIO, size: int) -> None:
        """Store the ``size`` bytes of ``file`` from its start under ``name``: read whole for
        one PUT when small, else one part at a time for a multipart upload."""
        key = self._key(name)
        if size <= self.tuning.multipart_threshold:
            self._put_single(name, key, _read_all(file))
        else:
            pieces = partial(_file_slices, file, self.tuning.part_size)
            self._put_multipart(name, key, pieces, partial(_read_all, file))

    def get(self, name: str) -> bytes:
        key = self._key(name)

        def once() -> bytes:
            answer = self._client.get_object(Bucket=self.location.bucket, Key=key)
            return answer["Body"].read()

        return self._call(f"GET {name}", once, name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        key = self._key(name)
        wanted = f"bytes={offset}-{offset + length - 1}"

        def once() -> bytes:
            answer = self._client.get_object(Bucket=self.location.bucket, Key=key, Range=wanted)
            return answer["Body"].read()

        try:
            data = self._call(f"GET {name} {wanted}", once, name)
        except ClientError as e:
            if _status(e) == 416:
                short = f"object {name} is shorter than {offset + length} bytes"
                raise RepositoryCorrupt(short) from None
            raise
        if len(data) != length:
            raise RepositoryCorrupt(f"object {name} is shorter than {offset + length} bytes")
        return data

    def exists(self, name: str) -> bool:
        try:
            self.size(name)
        except ObjectNotFound:
            return False
        return True

    def size(self, name: str) -> int:
        key = self._key(name)

        def once() -> int:
            return self._client.head_object(Bucket=self.location.bucket, Key=key)["ContentLength"]

        return self._call(f"HEAD {name}", once, name)

    def list(self, prefix: str) -> list[str]:
        """Every name starting with ``prefix``, sorted, one ListObjectsV2 page at a time."""
        names: list[str] = []
        for page in self._pages(self._prefix + prefix):
            names.extend(key.removeprefix(self._prefix) for key, _ in page)
        return sorted(names)

    def used_bytes(self) -> int:
        """What the repository's objects take in the bucket: the sizes its listing carries (one
        ListObjectsV2 request per 1,000 objects, never one per object)."""
        return sum(size for page in self._pages(self._prefix) for _, size in page)

    def delete(self, name: str) -> None:
        key = self._key(name)
        self.size(name)  # DeleteObject succeeds on a missing key: the contract says otherwise

        def once() -> None:
            self._client.delete_object(Bucket=self.location.bucket, Key=key)

        self._call(f"DELETE {name}", once, name)

    # ---- bucket ----------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (a bucket already ours is fine)."""
        bucket = self.location.bucket

        def once() -> None:
            try:
                self._client.head_bucket(Bucket=bucket)
            except ClientError as e:
                if _code(e) not in _MISSING_CODES and _code(e) != "NoSuchBucket":
                    raise
                self._client.create_bucket(Bucket=bucket)

        self._call(f"bucket {bucket}", once, bucket)

    # ---- internals -------------------------------------------------------------------------------

    def _pages(self, key_prefix: str) -> Iterator[builtins.list[tuple[str, int]]]:
        """(key, size) of every object under ``key_prefix``, a ListObjectsV2 page at a time."""
        token: str | None = None
        while True:
            args: dict[str, Any] = {
                "Bucket": self.location.bucket,
                "Prefix": key_prefix,
                "MaxKeys": self.tuning.list_page_size,
            }
            if token:
                args["ContinuationToken"] = token
            page = self._call(f"LIST {key_prefix}", partial(self._list_page, args), key_prefix)
            yield [(entry["Key"], entry["Size"]) for entry in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _list_page(self, args: dict[str, Any]) -> ListObjectsV2OutputTypeDef:
        return self._client.list_objects_v2(**args)

    def _put_single(self, name: str, key: str, data: bytes) -> None:
        attempts = {"n": 0}

        def once() -> None:
            attempts["n"] += 1
            self._client.put_object(
                Bucket=self.location.bucket, Key=key, Body=data, IfNoneMatch="*"
            )

        try:
            self._call(f"PUT {name}", once, name)
        except ObjectExists:
            if attempts["n"] > 1 and self._holds(name, data):
                return  # our own earlier attempt landed; its answer was lost
            raise

    def _put_multipart(
        self,
        name: str,
        key: str,
        pieces: Callable[[], Iterator[bytes]],
        whole: Callable[[], bytes],
    ) -> None:
        """``pieces()``: the object in parts of ``part_size``; ``whole()``: all of it, read only
        when a retried completion must tell our own object from another writer's."""
        if self.exists(name):  # cheap early refusal; the completion's condition is the real one
            raise ObjectExists(f"object {name} already exists")
        bucket = self.location.bucket
        upload_id = self._call(
            f"MPU {name}",
            lambda: self._client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"],
            name,
        )
        try:
            done = [
                self._upload_part(name, key, upload_id, number, chunk)
                for number, chunk in enumerate(pieces(), start=1)
            ]
            self._complete(name, key, upload_id, done, whole)
        except BaseException:
            self._abort(name, key, upload_id)
            raise

    def _upload_part(
        self, name: str, key: str, upload_id: str, number: int, chunk: bytes
    ) -> CompletedPartTypeDef:
        def once() -> str:
            return self._client.upload_part(
                Bucket=self.location.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
            )["ETag"]

        return {"PartNumber": number, "ETag": self._call(f"PART {name} #{number}", once, name)}

    def _complete(
        self,
        name: str,
        key: str,
        upload_id: str,
        done: builtins.list[CompletedPartTypeDef],
        whole: Callable[[], bytes],
    ) -> None:
        attempts = {"n": 0}

        def once() -> None:
            attempts["n"] += 1
            self._client.complete_multipart_upload(
                Bucket=self.location.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                IfNoneMatch="*",
            )

        try:
            self._call(f"COMPLETE {name}", once, name)
        except ObjectExists:
            if attempts["n"] > 1 and self._holds(name, whole()):
                return
            raise
        except ObjectNotFound:
            # A retried completion after a lost answer finds the upload gone (NoSuchUpload).
            if attempts["n"] > 1 and self._holds(name, whole()):
                return
            raise

    def _abort(self, name: str, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=key, UploadId=upload_id
            )
        except (BotoCoreError, ClientError, *_TRANSPORT_ERRORS) as e:
            # The bucket's lifecycle rule (or a later prune of uploads) reclaims it; the object
            # itself never existed, so nothing refers to the parts.
            log.warning("s3.abort_failed", object=name, error=type(e).__name__)

    def _holds(self, name: str, data: bytes) -> bool:
        try:
            return self.get(name) == data
        except ObjectNotFound:
            return False

    def _call(self, what: str, once: Callable[[], T], name: str) -> T:
        """``once()`` with S3's answers mapped to the engine's errors and transient failures
        retried with capped exponential backoff and full jitter."""
        tuning = self.tuning
        for attempt in range(1, tuning.attempts + 1):
            try:
                return once()
            except ClientError as e:
                code = _code(e)
                if code in _MISSING_CODES or code == "NoSuchUpload":
                    raise ObjectNotFound(f"object {name} does not exist") from None
                if code in _EXISTS_CODES:
                    raise ObjectExists(f"object {name} already exists") from None
                if _status(e) == 416:
                    raise  # get_range: the object is shorter than the range
                if _status(e) not in _RETRYABLE_STATUS and code not in _RETRYABLE_CODES:
                    raise S3Refused(f"{what}: refused ({_status(e)} {code})", code) from None
                failure = f"{_status(e)} {code}"
            except _TRANSPORT_ERRORS as e:
                failure = type(e).__name__
            if attempt == tuning.attempts:
                raise S3Unavailable(f"{what}: still failing after {attempt} attempts ({failure})")
            self.retries += 1
            delay = random.uniform(0, min(tuning.backoff_cap, tuning.backoff_base * 2**attempt))
            log.info("s3.retry", request=what, attempt=attempt, failure=failure, delay=delay)
            tuning.sleep(delay)
        raise AssertionError("unreachable")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Spool:
    """A pack on its way to S3, in an unnamed temporary file (the system's temporary directory,
    ``TMPDIR``: mode 0600, gone when closed or when the process ends) until ``commit`` uploads
    it from there, as restic spools its packs. A pack being filled holds no memory, and a small
    one is read back whole only while its PUT runs (``MemorySpool`` held every piece, and a
    joined copy during the PUT)."""

    def __init__(self, store: S3Store) -> None:
        self._store = store
        # Owned until commit or discard, not a block's: hence no context manager.
        self._file: BinaryIO | None = tempfile.TemporaryFile()  # noqa: SIM115

    def write(self, parts: Sequence[bytes]) -> None:
        if self._file is None:
            raise ValueError("this spool is already committed or discarded")
        for part in parts:
            self._file.write(part)

    def commit(self, name: str) -> None:
        if self._file is None:
            raise ValueError("this spool is already committed or discarded")
        try:
            self._file.flush()
            self._store.put_file(name, self._file, self._file.tell())
        finally:
            self.discard()

    def discard(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()


def _read_all(file: BinaryIO) -> bytes:
    file.seek(0)
    return file.read()


def _file_slices(file: BinaryIO, size: int) -> Iterator[bytes]:
    file.seek(0)
    while piece := file.read(size):
        yield piece


def _slices(parts: Sequence[bytes], size: int) -> Iterator[bytes]:
    """The concatenation of ``parts`` cut into ``size``-byte pieces (the last may be shorter)."""
    buffer = bytearray()
    for part in parts:
        view = memoryview(part)
        while view:
            take = min(size - len(buffer), len(view))
            buffer += view[:take]
            view = view[take:]
            if len(buffer) == size:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)
