"""Kafka's default partitioner for keyed records (murmur2, as the Java client and
aiokafka compute it), so an offline replay puts each user in the same partition,
and so with the same partition engine, as a live worker.

>>> partition_for(b"user-1", 4) == partition_for(b"user-1", 4)
True
>>> murmur2(b"21")   # value from the Java client's test suite
-973932308
"""

from __future__ import annotations

M = 0x5BD1E995
MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 with Kafka's seed, returned as a signed int like Java's."""
    length = len(data)
    h = (0x9747B28C ^ length) & MASK
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * M) & MASK
        k ^= k >> 24
        k = (k * M) & MASK
        h = (h * M) & MASK
        h ^= k
    tail = length & 3
    base = n4 * 4
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
