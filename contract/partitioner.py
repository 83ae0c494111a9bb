"""The partition that owns a series: Kafka's default partitioner for keyed records.

A producer that sends a record with a key and no explicit partition lets its default
partitioner choose: murmur2 of the key bytes, made positive (``& 0x7fffffff``), modulo the
topic's partition count. The Java client (``BuiltInPartitioner.partitionForKey``) and
kafka-python's ``DefaultPartitioner`` agree on it, so every record of a series lands in one
partition, and a shard that reads that partition holds the whole series.
:func:`partition_of` computes the same partition from the series id (the key's UTF-8 text,
see :mod:`contract.series`) with kafka-python's own ``murmur2``.

This module imports kafka-python (about 0.2 s and 6 MB on first import); the partition-set
parsing that probes and settings need is in :mod:`contract.partitions`, which does not.
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

__all__ = ["partition_of"]


def partition_of(series_id: str, partitions: int) -> int:
    """The partition (``0 <= p < partitions``) Kafka's default partitioner gives records
    keyed ``series_id.encode("utf-8")`` on a topic with ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    digest: int = murmur2(series_id.encode("utf-8"))
    return (digest & 0x7FFFFFFF) % partitions
