"""Connection settings of the object store, from the ``S3_*`` variables."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, field_validator, model_validator

from contract.errors import ConfigError
from contract.settings import EnvSettings, env

__all__ = ["S3Config"]

_ENDPOINT = re.compile(r"[^\s:/]+(:\d{1,5})?")


class S3Config(EnvSettings):
    """Where the object store is and how to sign requests."""

    endpoint: str = Field(
        validation_alias="S3_ENDPOINT",
        description="object store address, `host:port` (no scheme); the other variables apply "
        "when it is set",
        json_schema_extra={"doc_default": "`unset`"},
    )
    access_key: str = env("S3_ACCESS_KEY", "", "access key (required with `S3_ENDPOINT`)")
    secret_key: str = env("S3_SECRET_KEY", "", "secret key", repr=False)
    secure: bool = env("S3_SECURE", False, "`true` for HTTPS to the store")
    region: str = env("S3_REGION", "us-east-1", "signing region")

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if "://" in value or not _ENDPOINT.fullmatch(value):
            raise ValueError("must be host:port (no scheme)")
        return value

    @model_validator(mode="after")
    def _signed(self) -> Self:
        if not self.access_key:
            raise ConfigError("S3_ACCESS_KEY", "required when S3_ENDPOINT is set")
        return self
