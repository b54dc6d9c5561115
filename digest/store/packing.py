"""How a digest is packed to be kept: its content parts as zstd frames, its items' reasons as one record.

Pure: bytes in, bytes out. ``digests`` stores what this packs.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Sequence
from itertools import accumulate, pairwise

import zstandard

from digest.models import Ranked, Reason, ReasonKind

_COUNT = struct.Struct(">I")  # a body: how many parts, each part's length, then the parts
_zstd = threading.local()  # a compressor and a decompressor per thread (reused: making one is not free)


def compress(parts: list[bytes]) -> bytes:
    """Parts of a digest's content as one zstd frame (level 1: an email digest's ~36 KB to ~6 KB).

    The parts are the UTF-8 text, HTML and Markdown, each empty where it is not
    kept (see the module's doc). Frames made before schema 9 have a fourth part,
    the MIME body. Uncompressed, 100,000 digests were 3.5 GB written to the
    write-ahead log and again to the database; kept once and packed, about 0.6 GB.
    """
    lengths = struct.pack(f">{len(parts) + 1}I", len(parts), *map(len, parts))
    return pack(lengths + b"".join(parts))


def pack(data: bytes) -> bytes:
    """Bytes as a zstd frame: one part alone (the MIME body, read without the rest), or ``compress``'s parts."""
    if not hasattr(_zstd, "compressor"):
        _zstd.compressor = zstandard.ZstdCompressor(level=1)
    return bytes(_zstd.compressor.compress(data))


def unpack(frame: bytes) -> bytes:
    if not hasattr(_zstd, "decompressor"):
        _zstd.decompressor = zstandard.ZstdDecompressor()
    return bytes(_zstd.decompressor.decompress(frame))


def decompress(body: bytes) -> list[bytes]:
    data = unpack(body)
    [count] = _COUNT.unpack_from(data)
    lengths = struct.unpack_from(f">{count}I", data, _COUNT.size)
    stops = list(accumulate(lengths, initial=_COUNT.size * (count + 1)))
    return [data[a:b] for a, b in pairwise(stops)]


def reasons_record(items: Sequence[Ranked]) -> bytes | None:
    """Every item's reasons in one packed record: per item its rank, then per reason [kind, label, score, where,
    detail]. A JSON object per reason and item was most of what a digest's items took (bench/scale.py)."""
    if not items:
        return None
    record = [[item.rank, [[r.kind, r.label, r.score, r.where, r.detail] for r in item.why]] for item in items]
    return pack(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())


class ReasonsRead:
    """Reasons read back, each digest's record unpacked once however many of its items are read."""

    def __init__(self) -> None:
        self._record: bytes | None = None
        self._by_rank: dict[int, tuple[Reason, ...]] = {}

    def of(self, why: str, record: bytes | None, rank: int) -> tuple[Reason, ...]:
        """One item's reasons: from its own ``why`` (frozen before schema 17), else its digest's ``record``."""
        if why or record is None:
            return reasons_json(why or "[]")
        record = bytes(record)
        if record != self._record:
            self._record = record
            self._by_rank = {
                place: tuple(
                    Reason(ReasonKind(k), label, score, tuple(where), detail)
                    for k, label, score, where, detail in reasons
                )
                for place, reasons in json.loads(unpack(record))
            }
        return self._by_rank.get(rank, ())


def reasons_json(stored: str) -> tuple[Reason, ...]:
    """An item's reasons as items frozen before schema 17 keep them: a JSON object per reason."""
    return tuple(
        Reason(ReasonKind(r["kind"]), r["label"], r["score"], tuple(r.get("where") or ()), r.get("detail"))
        for r in json.loads(stored)
    )
