"""Reading edge lists fast: SNAP-style text, CSV, gzip'd or not.

The numeric fast path parses the raw bytes with a numba kernel in 32 MiB
chunks (no Python object per edge); node ids that are not integers switch the
reader to a string path that maps ids through a dict.  See
:meth:`budding.influence.Graph.from_edgelist` for the conventions.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numba import njit

__all__ = ["EdgeListError", "RawEdges", "dense_ids", "read_edgelist"]

CHUNK_BYTES = 32 << 20
HEADER_NAMES = frozenset(
    {
        "src", "source", "from", "u", "dst", "target", "to", "v", "weight", "w", "p",
        "prob", "probability", "count", "node1", "node2", "from_id", "to_id", "source_id",
        "target_id", "follower", "followee", "id1", "id2",
    }
)  # fmt: skip


class EdgeListError(ValueError):
    """A malformed edge list: the message names the file, the line and the reason."""


@dataclass
class RawEdges:
    """Edges with dense int32 endpoints, before the CSR is built."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None
    ids: np.ndarray


_OK, _NON_NUMERIC, _MISSING, _BAD_WEIGHT = 0, 1, 2, 3


@njit(cache=True, inline="always")
def _is_sep(c: int) -> bool:
    return c == 32 or c == 9 or c == 44 or c == 59 or c == 13


@njit(cache=True, inline="always")
def _is_end(c: int) -> bool:
    return c == 32 or c == 9 or c == 44 or c == 59 or c == 13 or c == 10


@njit(cache=True)
def _parse_int(buf: np.ndarray, i: int, n: int) -> tuple[bool, int, int]:
    neg = False
    if i < n and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    val = 0
    digits = 0
    while i < n:
        c = buf[i]
        if 48 <= c <= 57:
            val = val * 10 + (c - 48)
            digits += 1
            i += 1
        else:
            break
    if digits == 0 or digits > 18 or (i < n and not _is_end(buf[i])):
        return False, 0, i
    return True, (-val if neg else val), i


@njit(cache=True)
def _parse_float(buf: np.ndarray, i: int, n: int) -> tuple[bool, float, int]:
    neg = False
    if i < n and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    mant = 0.0
    digits = 0
    while i < n and 48 <= buf[i] <= 57:
        mant = mant * 10.0 + (buf[i] - 48)
        digits += 1
        i += 1
    exp = 0
    if i < n and buf[i] == 46:
        i += 1
        while i < n and 48 <= buf[i] <= 57:
            mant = mant * 10.0 + (buf[i] - 48)
            exp -= 1
            digits += 1
            i += 1
    if digits == 0:
        return False, 0.0, i
    if i < n and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = False
        if i < n and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        e = 0
        ed = 0
        while i < n and 48 <= buf[i] <= 57:
            e = e * 10 + (buf[i] - 48)
            ed += 1
            i += 1
        if ed == 0:
            return False, 0.0, i
        exp += -e if eneg else e
    if i < n and not _is_end(buf[i]):
        return False, 0.0, i
    val = mant * 10.0**exp
    return True, (-val if neg else val), i


@njit(cache=True)
def _parse_numeric(
    buf: np.ndarray, want_weight: bool, src: np.ndarray, dst: np.ndarray, w: np.ndarray
) -> tuple[int, int, int]:
    """Parse ``u v [w]`` lines; returns (edges, status, line index of a failure)."""
    n = buf.shape[0]
    i = 0
    cnt = 0
    line = 0
    while i < n:
        while i < n and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
            i += 1
        if i >= n:
            break
        c = buf[i]
        if c == 10:
            i += 1
            line += 1
            continue
        if c == 35 or c == 37:
            while i < n and buf[i] != 10:
                i += 1
            i += 1
            line += 1
            continue
        ok, a, i = _parse_int(buf, i, n)
        if not ok:
            return cnt, _NON_NUMERIC, line
        while i < n and _is_sep(buf[i]):
            i += 1
        if i >= n or buf[i] == 10:
            return cnt, _MISSING, line
        ok, b, i = _parse_int(buf, i, n)
        if not ok:
            return cnt, _NON_NUMERIC, line
        if want_weight:
            while i < n and _is_sep(buf[i]):
                i += 1
            if i >= n or buf[i] == 10:
                return cnt, _MISSING, line
            ok, x, i = _parse_float(buf, i, n)
            if not ok:
                return cnt, _BAD_WEIGHT, line
            w[cnt] = x
        while i < n and buf[i] != 10:
            i += 1
        i += 1
        line += 1
        src[cnt] = a
        dst[cnt] = b
        cnt += 1
    return cnt, _OK, line


@njit(cache=True)
def _remap_table(src: np.ndarray, dst: np.ndarray, lo: int, span: int) -> np.ndarray:
    """Map ids in [lo, lo+span) to dense 0..n-1 (in id order), in place; returns ids."""
    table = np.zeros(span, dtype=np.int64)
    for i in range(src.shape[0]):
        table[src[i] - lo] = 1
        table[dst[i] - lo] = 1
    n = 0
    for j in range(span):
        if table[j]:
            table[j] = n
            n += 1
        else:
            table[j] = -1
    ids = np.empty(n, dtype=np.int64)
    for j in range(span):
        if table[j] >= 0:
            ids[table[j]] = j + lo
    for i in range(src.shape[0]):
        src[i] = table[src[i] - lo]
        dst[i] = table[dst[i] - lo]
    return ids


def dense_ids(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map integer node ids to dense indices 0..n-1 in increasing id order.

    Linear time through a lookup table when the id range is at most about twice
    the number of edges (the usual case); a sort (``np.unique``) otherwise.
    Returns ``(src, dst, ids)`` where ``ids[i]`` is the original id of node ``i``
    and the index arrays are int32 where they fit (updated in place if possible).
    """
    if src.shape[0] == 0:
        return src.astype(np.int32), dst.astype(np.int32), np.empty(0, dtype=np.int64)
    lo = int(min(src.min(), dst.min()))
    hi = int(max(src.max(), dst.max()))
    span = hi - lo + 1
    if span <= 2 * src.shape[0] + 1024:
        ids = _remap_table(src, dst, lo, span)
    else:
        ids, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
        m = src.shape[0]
        src, dst = inverse[:m], inverse[m:]
    idx_type = np.int32 if ids.shape[0] < 2**31 else np.int64
    return src.astype(idx_type, copy=False), dst.astype(idx_type, copy=False), ids


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _data_lines(head: bytes, limit: int = 3) -> list[tuple[int, int, str]]:
    """The first data lines (not comments or blank) of ``head``: (start, end, text)."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    while pos < len(head) and len(out) < limit:
        nl = head.find(b"\n", pos)
        if nl < 0:
            nl = len(head)
        text = head[pos:nl].decode("utf-8", "replace").strip()
        if text and not text.startswith(("#", "%")):
            out.append((pos, nl + 1, text))
        pos = nl + 1
    return out


def _fields(text: str, comma: bool) -> list[str]:
    if comma:
        return [f.strip() for f in next(csv.reader([text]))]
    return text.replace(";", " ").split()


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_edgelist(
    path: str | Path,
    *,
    header: bool | None = None,
    weights: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RawEdges:
    """Read an edge list file into dense int32 endpoint arrays.

    Format: one edge per line, ``u v`` or ``u v w``, fields separated by
    whitespace, commas or semicolons; lines starting with ``#`` or ``%`` and
    blank lines are skipped; gzip is detected from the file's magic bytes.
    Fields past the third are ignored.  ``header=None`` detects a header: a
    first line whose fields are column names (``src,dst,weight`` …), or a first
    line ``n m`` followed by three-column lines (NetHEPT).  ``weights=None``
    reads a third column when the first data line has one.

    Complexity: O(bytes) for integer ids (numba), plus O(m) to map ids to
    dense indices; string ids go through a Python dict (about 1 µs per edge).
    Peak memory is about 16 bytes per edge on the numeric path.
    """
    path = Path(path)
    if not path.exists():
        raise EdgeListError(f"{path}: no such file")
    total = path.stat().st_size
    with _open(path) as f:
        head = f.read(1 << 16)
    lines = _data_lines(head)
    if not lines:
        raise EdgeListError(f"{path}: no edges found (only comments or blank lines)")
    comma = "," in lines[0][2]
    first = _fields(lines[0][2], comma)
    skip = 0
    if header is None:
        named = len(first) >= 2 and all(x.lower() in HEADER_NAMES for x in first[:2])
        nm = (
            len(first) == 2
            and all(_is_int(x) for x in first)
            and len(lines) > 1
            and len(_fields(lines[1][2], comma)) >= 3
        )
        header = named or nm
    if header:
        skip = lines[0][1]
        lines = lines[1:]
        if not lines:
            raise EdgeListError(f"{path}: a header but no edges")
    ncols = len(_fields(lines[0][2], comma))
    if ncols < 2:
        raise EdgeListError(f"{path}: line '{lines[0][2]}' has one field; need 'src dst [weight]'")
    if weights is None:
        weights = ncols >= 3 and _is_float(_fields(lines[0][2], comma)[2])
    skip_lines = head[:skip].count(b"\n")
    numeric = _read_numeric(path, skip, skip_lines, bool(weights), total, progress)
    if numeric is not None:
        return numeric
    return _read_strings(path, skip, skip_lines, bool(weights), comma, total, progress)


def _chunks(f: IO[bytes], skip: int, line_no: int) -> Iterable[tuple[np.ndarray, int, int]]:
    """Yield (complete-lines buffer, 0-based line number of its first line, bytes)."""
    if skip:
        f.read(skip)
    carry = b""
    while True:
        block = f.read(CHUNK_BYTES)
        data = carry + block
        if not block:
            if data:
                yield np.frombuffer(data, dtype=np.uint8), line_no, len(data)
            return
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        buf = np.frombuffer(data, dtype=np.uint8, count=cut)
        yield buf, line_no, cut
        line_no += int(np.count_nonzero(buf == 10))


def _compressed_pos(f: IO[bytes]) -> int:
    raw = getattr(f, "fileobj", None)
    return raw.tell() if raw is not None else f.tell()


def _read_numeric(
    path: Path,
    skip: int,
    skip_lines: int,
    want_weight: bool,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> RawEdges | None:
    srcs: list[np.ndarray] = []
    dsts: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    wide = False
    with _open(path) as f:
        for buf, line_no, _ in _chunks(f, skip, skip_lines):
            cap = int(np.count_nonzero(buf == 10)) + 1
            s = np.empty(cap, dtype=np.int64)
            d = np.empty(cap, dtype=np.int64)
            w = np.empty(cap if want_weight else 0, dtype=np.float64)
            cnt, status, bad = _parse_numeric(buf, want_weight, s, d, w)
            if status == _NON_NUMERIC:
                return None
            if status != _OK:
                text = _line_text(buf, bad)
                reason = (
                    "is missing a field (expected 'src dst weight')"
                    if status == _MISSING
                    else "has a weight that is not a number"
                )
                if not want_weight and status == _MISSING:
                    reason = "has fewer than two fields (expected 'src dst')"
                raise EdgeListError(f"{path}: line {line_no + bad + 1} '{text}' {reason}")
            s, d = s[:cnt], d[:cnt]
            if cnt and (min(s.min(), d.min()) < -(2**31) or max(s.max(), d.max()) >= 2**31):
                wide = True
            if not wide:
                s, d = s.astype(np.int32), d.astype(np.int32)
            srcs.append(s)
            dsts.append(d)
            if want_weight:
                ws.append(w[:cnt].astype(np.float32))
            if progress is not None:
                progress(min(_compressed_pos(f), total), total)
    dtype = np.int64 if wide else np.int32
    src = np.concatenate(srcs).astype(dtype, copy=False) if srcs else np.empty(0, dtype)
    del srcs
    dst = np.concatenate(dsts).astype(dtype, copy=False) if dsts else np.empty(0, dtype)
    del dsts
    weight = np.concatenate(ws) if want_weight and ws else None
    src, dst, ids = dense_ids(src, dst)
    return RawEdges(src, dst, weight, ids)


def _line_text(buf: np.ndarray, line: int) -> str:
    text = bytes(buf).split(b"\n")[line].decode("utf-8", "replace").strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _read_strings(
    path: Path,
    skip: int,
    skip_lines: int,
    want_weight: bool,
    comma: bool,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> RawEdges:
    index: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    wts: list[float] = []
    with _open(path) as fb:
        if skip:
            fb.read(skip)
        text = io.TextIOWrapper(fb, encoding="utf-8", errors="replace", newline="")
        rows: Iterable[Any] = csv.reader(text) if comma else (_fields(ln, False) for ln in text)
        for line_no, fields in enumerate(rows, start=skip_lines + 1):
            if not fields or not fields[0].strip() or fields[0].lstrip().startswith(("#", "%")):
                continue
            if len(fields) < (3 if want_weight else 2):
                raise EdgeListError(
                    f"{path}: line {line_no} {fields!r} is missing a field "
                    f"(expected 'src dst{' weight' if want_weight else ''}')"
                )
            a, b = fields[0].strip(), fields[1].strip()
            src.append(index.setdefault(a, len(index)))
            dst.append(index.setdefault(b, len(index)))
            if want_weight:
                try:
                    wts.append(float(fields[2]))
                except ValueError:
                    raise EdgeListError(
                        f"{path}: line {line_no}: weight {fields[2]!r} is not a number"
                    ) from None
            if progress is not None and line_no % 1_000_000 == 0:
                progress(min(_compressed_pos(fb), total), total)
    ids = np.empty(len(index), dtype=object)
    ids[:] = list(index)
    idx = np.int32 if len(index) < 2**31 else np.int64
    return RawEdges(
        np.asarray(src, dtype=idx),
        np.asarray(dst, dtype=idx),
        np.asarray(wts, dtype=np.float32) if want_weight else None,
        ids,
    )
