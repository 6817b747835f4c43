"""The S3 test server itself: SigV4 credentials enforced, buckets created on demand."""

import pytest

pytestmark = pytest.mark.s3


def test_s3_server_enforces_credentials_and_creates_buckets(s3_server):
    import boto3
    from botocore.exceptions import ClientError

    assert s3_server.bucket("fixture-check") == "s3a://fixture-check"
    assert s3_server.bucket("fixture-check") == "s3a://fixture-check"
    client = s3_server.client()
    client.put_object(Bucket="fixture-check", Key="a/b.txt", Body=b"x")
    assert [o["Key"] for o in client.list_objects_v2(Bucket="fixture-check")["Contents"]] == ["a/b.txt"]
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    wrong = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        wrong.list_objects_v2(Bucket="fixture-check")
