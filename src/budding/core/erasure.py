"""Finding and blanking copies of an erased member's name and e-mail in other rows.

A member's own rows are erased by each capability's ``privacy.erase``. Their name or
e-mail may also have been copied into rows that are not theirs: a reviewer's note copied
into the referrer's history, a friend's e-mail queued for them, a points reason, an event
of another member naming them. Each capability blanks such copies in its own tables with
``scrub_mentions`` (or ``scrub_column``): the words are replaced by ``ERASED``, the rest of the row (amounts,
statuses, counts) stays.

The e-mail is matched anywhere, in any case; the name only as whole words and as written
(its case), so that "Ann" does not change "Annual" nor "Will" the word "will" — except in
scripts written without spaces, where "김민수" is found in "김민수님이". A name of one
character is not looked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, bindparam, cast, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

ERASED = "(erased)"


@dataclass(frozen=True)
class Identity:
    """What identifies an erased person in free text: e-mail addresses and names."""

    emails: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, *, email: str | None = None, name: str | None = None) -> Identity:
        name = (name or "").strip()
        return cls(
            emails=(email.strip(),) if email and email.strip() else (),
            names=(name,) if len(name) > 1 else (),
        )

    @property
    def needles(self) -> list[str]:
        """Every string to look for, lower-cased (also as written inside JSON)."""
        out: list[str] = []
        for value in (*self.emails, *self.names):
            for form in (value, orjson.dumps(value).decode()[1:-1]):
                if form.lower() not in out:
                    out.append(form.lower())
        return out

    @property
    def pattern(self) -> re.Pattern[str] | None:
        parts = [f"(?i:{re.escape(e)})" for e in self.emails]
        parts += [_name_pattern(n) for n in self.names]
        return re.compile("|".join(parts)) if parts else None


# Scripts written without spaces between words, where particles and honorifics join the
# name ("김민수님이", "王小明的"): Hangul, kana, CJK ideographs.
_UNSPACED = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]"
)


def _name_pattern(name: str) -> str:
    """The name as a whole word, except at an edge in a script without spaces."""
    before = "" if _UNSPACED.match(name[0]) else r"(?<!\w)"
    after = "" if _UNSPACED.match(name[-1]) else r"(?!\w)"
    return before + re.escape(name) + after


def scrub(value: Any, identity: Identity) -> Any:
    """``value`` (text, or JSON: lists and objects, keys included) with every mention of
    ``identity`` replaced by ``ERASED``."""
    pattern = identity.pattern
    if pattern is None:
        return value
    return _scrub(value, pattern)


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    return value


def mentions(column: Any, identity: Identity) -> ColumnElement[bool] | None:
    """A SQL condition: the column's text (JSON as stored) may mention ``identity``. A
    coarse filter (substring, lower-cased); ``scrub`` decides."""
    needles = identity.needles
    if not needles:
        return None
    as_text = func.lower(cast(column, String))
    return or_(*(as_text.contains(n, autoescape=True) for n in needles))


def scrub_column(
    session: Session,
    column: InstrumentedAttribute[Any],
    identity: Identity,
    *where: ColumnElement[bool],
) -> int:
    """Replace mentions of ``identity`` in ``column`` of the rows matching ``where``.
    Returns how many rows changed."""
    condition = mentions(column, identity)
    if condition is None:
        return 0
    model = column.class_
    key = model.__mapper__.primary_key[0]
    changed = 0
    rows: Sequence[Any] = session.execute(select(key, column).where(condition, *where)).all()
    for row_id, value in rows:
        clean = scrub(value, identity)
        if clean != value:
            session.execute(
                update(model)
                .where(key == row_id)
                .values({column.key: clean})
                .execution_options(synchronize_session=False)
            )
            changed += 1
    return changed


def scrub_mentions(
    session: Session, program_id: int, identity: Identity, *columns: InstrumentedAttribute[Any]
) -> int:
    """``scrub_column`` over each of ``columns``, in the program's rows (each of their
    tables has a ``program_id``). Returns how many rows changed."""
    return sum(
        scrub_column(session, column, identity, column.class_.program_id == program_id)
        for column in columns
    )


# --- replaced ids ------------------------------------------------------------------------
# An erasure replaces the event ids that name the member with opaque ones
# (``members.service.event_id_replacements``: old id -> new id). Other capabilities keep
# copies of those ids, as keys that link their rows to the event; each gives its copies the
# same new id with these, so that the links hold.

_CHUNK = 500


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def write_back(
    session: Session, column: InstrumentedAttribute[Any], changes: list[tuple[Any, Any]]
) -> int:
    """Set ``column`` of each ``(primary key, value)``: one executemany."""
    if not changes:
        return 0
    table = column.class_.__table__
    key = column.class_.__mapper__.primary_key[0]
    session.execute(
        update(table)
        .where(table.c[key.key] == bindparam("row_key"))
        .values({column.key: bindparam("row_value", type_=table.c[column.key].type)}),
        [{"row_key": k, "row_value": v} for k, v in changes],
    )
    return len(changes)


def replace_exact(
    session: Session,
    column: InstrumentedAttribute[Any],
    replacements: Mapping[str, str],
    *where: ColumnElement[bool],
) -> int:
    """Give ``column`` its new value in the rows matching ``where`` whose value is one of
    the old ones (the keys of ``replacements``), looked up 500 at a time. Returns how many
    rows changed."""
    key = column.class_.__mapper__.primary_key[0]
    changes = [
        (row_key, replacements[value])
        for chunk in _chunks(sorted(replacements))
        for row_key, value in session.execute(select(key, column).where(column.in_(chunk), *where))
    ]
    return write_back(session, column, changes)


def replace_tail(
    session: Session,
    column: InstrumentedAttribute[Any],
    replacements: Mapping[str, str],
    *where: ColumnElement[bool],
    after: str = " ",
) -> int:
    """Replace an old value that ends ``column``'s text, after ``after`` (a note built as
    ``f"refund {event_id}"``), in the rows matching ``where``: only there, not wherever
    the old text happens to appear. Returns how many rows changed."""
    key = column.class_.__mapper__.primary_key[0]
    changes = []
    for chunk in _chunks(sorted(replacements)):
        tails = or_(*(column.endswith(after + old, autoescape=True) for old in chunk))
        for row_key, value in session.execute(select(key, column).where(tails, *where)):
            new = replaced_tail(value, replacements, after)
            if new != value:
                changes.append((row_key, new))
    return write_back(session, column, changes)


def replaced_tail(text: str, replacements: Mapping[str, str], after: str = " ") -> str:
    """``text`` with the old value that ends it (after ``after``) replaced, the longest
    such old value if several do."""
    for old in sorted(replacements, key=len, reverse=True):
        if text.endswith(after + old):
            return text[: len(text) - len(old)] + replacements[old]
    return text


def replaced_strings(
    value: Any, replacements: Mapping[str, str], *, tail_after: str | None = None
) -> Any:
    """JSON ``value`` with every string value that is an old value replaced, and, with
    ``tail_after``, the old value that ends a string after it (``replaced_tail``: a
    reason carried in a webhook). Keys, and strings that merely contain an old value
    elsewhere, are left alone."""
    if isinstance(value, str):
        if value in replacements:
            return replacements[value]
        return value if tail_after is None else replaced_tail(value, replacements, tail_after)
    if isinstance(value, list):
        return [replaced_strings(v, replacements, tail_after=tail_after) for v in value]
    if isinstance(value, dict):
        return {
            k: replaced_strings(v, replacements, tail_after=tail_after) for k, v in value.items()
        }
    return value
