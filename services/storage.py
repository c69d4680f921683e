"""Asset storage (local disk by default, S3-compatible when configured) and signed asset URLs.

Assets are never served by a guessable path: the UI hands out `/signed-assets/<signed>` links that
expire within minutes (`asset_link_sign`), and the backend route re-checks the viewer's
org/project access on every request (`asset_for_viewer`) before streaming the bytes or
redirecting to a short-lived presigned S3 URL.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlmodel import Session, select

from core import routes
from core.clock import utcnow
from core.crypto import SignatureInvalid, sign, unsign
from core.settings import get_settings
from models import Asset, User
from services import policy
from services.error_codes import Code
from services.errors import DomainError, NotFound, error_with_code

ASSET_LINK_PURPOSE = "asset"
# Not "/assets/": in production the frontend's own JS/CSS bundles are served under /assets/
# by the same server, and a catch-all route there would swallow them.
ASSET_ROUTE_PREFIX = routes.API_ASSET_PREFIX
ASSET_LINK_TTL_SECONDS = 10 * 60
# Hard ceiling checked by the signature itself, whatever the payload says.
_ASSET_LINK_MAX_AGE_SECONDS = 60 * 60
PRESIGNED_TTL_SECONDS = 60


class StorageBackend(Protocol):
    name: str  # "local" | "s3"

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def presigned_url(
        self, key: str, *, expires_seconds: int, filename: str = "", download: bool = False
    ) -> str | None: ...


def _safe_key(key: str) -> str:
    parts = [part for part in key.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    return "/".join(parts)


class LocalStorage:
    """Files under `root` (settings.storage_local_dir); writes are atomic (temp + rename)."""

    name = "local"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / _safe_key(key)).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"unsafe storage key {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("This file is no longer stored.") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_url(
        self, key: str, *, expires_seconds: int, filename: str = "", download: bool = False
    ) -> str | None:
        return None  # served by the backend route itself


class S3Storage:
    """Any S3-compatible service (AWS, MinIO, moto) through boto3."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        region: str = "us-east-1",
    ):
        import boto3

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region or "us-east-1",
        )

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=_safe_key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_safe_key(key))
        except ClientError:
            raise NotFound("This file is no longer stored.") from None
        return response["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_safe_key(key))

    def presigned_url(
        self, key: str, *, expires_seconds: int, filename: str = "", download: bool = False
    ) -> str | None:
        params = {"Bucket": self.bucket, "Key": _safe_key(key)}
        if filename:
            disposition = "attachment" if download else "inline"
            params["ResponseContentDisposition"] = f'{disposition}; filename="{filename}"'
        return self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_seconds
        )


def default_backend_name() -> str:
    """ "s3" when STORAGE_BUCKET is set, else "local"."""
    return "s3" if get_settings().storage_bucket else "local"


def storage_for(backend: str | None = None) -> StorageBackend:
    """The storage for an asset's `storage_backend` (or the configured default)."""
    settings = get_settings()
    backend = backend or default_backend_name()
    if backend == "local":
        return LocalStorage(settings.storage_local_dir)
    if backend == "s3":
        if not settings.storage_bucket:
            raise error_with_code(
                Code.storage_not_configured,
                "This file is stored in S3, but STORAGE_BUCKET is not set on this server.",
            )
        return S3Storage(
            bucket=settings.storage_bucket,
            endpoint_url=settings.storage_endpoint_url,
            access_key_id=settings.storage_access_key_id,
            secret_access_key=settings.storage_secret_access_key,
            region=settings.storage_region,
        )
    raise ValueError(f"unknown storage backend {backend!r}")


# --- signed links -----------------------------------------------------------------------------


class AssetLinkInvalid(DomainError):
    """A signed asset link that is expired (`reason="expired"`) or not ours (`"invalid"`)."""

    code = Code.asset_link_invalid.value
    http_status = 404

    def __init__(self, reason: str):
        message = (
            "This file link has expired. Reload the page to get a fresh one."
            if reason == "expired"
            else "This file link is not valid."
        )
        super().__init__(message, reason=reason)
        self.reason = reason
        if reason == "expired":
            self.code = Code.asset_link_expired.value
            self.http_status = 410


def asset_link_sign(asset_public_id: str, *, ttl_seconds: int = ASSET_LINK_TTL_SECONDS) -> str:
    """A signed token naming the asset and its expiry (a Unix time).

    The same asset gets the same token for a minute (valid for at least `ttl_seconds` minus
    that minute): a page that re-reads its list while a run is in progress shows unchanged
    addresses, so the browser keeps the images it has instead of fetching them again, and
    nothing is signed twice.
    """
    now = int(utcnow().timestamp())
    if ttl_seconds < 2 * _ASSET_LINK_STEP_SECONDS:  # too short to give a minute away
        return sign(
            {"asset": asset_public_id, "exp": now + int(ttl_seconds)}, purpose=ASSET_LINK_PURPOSE
        )
    expires_at = now - now % _ASSET_LINK_STEP_SECONDS + int(ttl_seconds)
    return _signed_asset_link(asset_public_id, expires_at, get_settings().secret_key)


_ASSET_LINK_STEP_SECONDS = 60


@functools.lru_cache(maxsize=4096)
def _signed_asset_link(asset_public_id: str, expires_at: int, _secret_key: str) -> str:
    # Keyed by the current SECRET_KEY too: after a rotation, links are signed with the new one.
    return sign({"asset": asset_public_id, "exp": expires_at}, purpose=ASSET_LINK_PURPOSE)


def asset_link_verify(signed: str) -> str:
    """The asset public id inside a signed link.

    Raises:
        AssetLinkInvalid: tampered, signed for another purpose, or past its expiry.
    """
    try:
        payload = unsign(
            signed, purpose=ASSET_LINK_PURPOSE, max_age_seconds=_ASSET_LINK_MAX_AGE_SECONDS
        )
    except SignatureInvalid as exc:
        raise AssetLinkInvalid(exc.reason) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("asset"), str):
        raise AssetLinkInvalid("invalid")
    expires_at = payload.get("exp")
    if not isinstance(expires_at, int) or utcnow().timestamp() > expires_at:
        raise AssetLinkInvalid("expired")
    return payload["asset"]


def asset_path(signed: str, *, download: bool = False) -> str:
    """The backend path of a signed link (the API route is `/signed-assets/<signed>`)."""
    return f"{ASSET_ROUTE_PREFIX}{signed}" + ("?download=1" if download else "")


@dataclass(frozen=True)
class AssetDelivery:
    asset: Asset
    redirect_url: str | None  # S3: a presigned URL valid for a minute
    data: bytes | None  # local disk: the bytes


def asset_for_viewer(*, session: Session, user: User, asset_public_id: str) -> Asset:
    """The asset if `user` may view it now (org membership, project scope).

    Raises:
        NotFound: unknown asset, another org's asset, or a project outside the viewer's scope
            (one answer for all, so existence does not leak).
    """
    asset = session.exec(select(Asset).where(Asset.public_id == asset_public_id)).first()
    not_found = NotFound("This file does not exist or you do not have access to it.")
    if asset is None:
        raise not_found
    try:
        actor = policy.actor_for(session=session, user=user, org_id=asset.org_id)
        target = policy.target_for(
            session=session, org_id=asset.org_id, project_id=asset.project_id
        )
        policy.require(actor, policy.Action.asset_view, target)
    except DomainError:
        raise not_found from None
    return asset


def asset_deliver(
    *, session: Session, user: User, signed: str, download: bool = False
) -> AssetDelivery:
    """Check a signed link and the viewer's access; return how to send the file.

    Raises:
        AssetLinkInvalid: expired or tampered link.
        NotFound: no access (see `asset_for_viewer`).
    """
    public_id = asset_link_verify(signed)
    asset = asset_for_viewer(session=session, user=user, asset_public_id=public_id)
    backend = storage_for(asset.storage_backend)
    url = backend.presigned_url(
        asset.storage_key,
        expires_seconds=PRESIGNED_TTL_SECONDS,
        filename=asset.filename,
        download=download,
    )
    if url is not None:
        return AssetDelivery(asset=asset, redirect_url=url, data=None)
    return AssetDelivery(asset=asset, redirect_url=None, data=backend.get(asset.storage_key))
