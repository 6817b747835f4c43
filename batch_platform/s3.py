"""Everything S3 in one place: `storage.s3` applied to every S3 client (SPEC.md, "Storage on S3").

This is the part of the S3 work (issue 14, which adds the S3A side) the delivery code needs:
boto3 for presigned urls, pyarrow for reading Parquet footers and rows. The functions are copied
from that branch (boto3_client: plus SigV4 for presigned urls) so the two merge into one module.
Credentials are written `${NAME}` in the config and read from the environment only here, where a
client is built.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from batch_platform.config import S3Config

S3_SCHEMES = ("s3a://", "s3://", "s3n://")


def is_s3(path: str) -> bool:
    return str(path).startswith(S3_SCHEMES)


def bucket_of(path: str) -> str:
    return urlparse(str(path)).netloc


def _env(reference: str | None) -> str | None:
    name = S3Config.env_name(reference)
    return os.environ.get(name) if name else None


def boto3_client(s3: S3Config | None):
    """A boto3 S3 client configured from `storage.s3` (credentials read from the environment now)."""
    import boto3
    from botocore.config import Config

    s3 = s3 or S3Config()
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=_env(s3.access_key_id),
        aws_secret_access_key=_env(s3.secret_access_key),
        # SigV4 (boto3 may presign with the deprecated SigV2 otherwise, which regions since 2014 refuse).
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if s3.path_style_access else "auto"},
        ),
    )


def pyarrow_filesystem(uri: str, s3: S3Config | None):
    """A pyarrow file system and the path inside it for a local path or an `s3a://` URI."""
    from pyarrow import fs

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    if not is_s3(uri):
        return fs.FileSystem.from_uri(uri)
    s3 = s3 or S3Config()
    options = {"region": s3.region} if s3.region else {}
    if s3.endpoint_url:
        parsed = urlparse(s3.endpoint_url)
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
    if s3.access_key_id:
        options.update(
            access_key=_env(s3.access_key_id), secret_key=_env(s3.secret_access_key)
        )
    parsed = urlparse(uri)
    return fs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
