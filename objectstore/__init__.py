"""The object store (S3-compatible) as the daemon, the training command and the seed script
use it: :class:`S3Config` from the ``S3_*`` variables, and :class:`ObjectStore`, a bounded
client whose every failure is a :class:`StoreError`. :mod:`objectstore.s3` is the only module
of the project's programs that imports minio."""

from objectstore.config import S3Config
from objectstore.errors import StoreError
from objectstore.s3 import ObjectData, ObjectStat, ObjectStore, split_url

__all__ = ["ObjectData", "ObjectStat", "ObjectStore", "S3Config", "StoreError", "split_url"]
