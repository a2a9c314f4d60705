"""Typed domain errors, mapped to HTTP responses in one place (``core.web``).

Services raise these; routes never build ``HTTPException`` themselves. The
JSON shape is ``{"error": {"code", "message", "fields"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from budding.core.i18n import N_, gettext


class Reason:
    """A field's reason in words a page can translate: an English msgid (marked with
    ``N_``) and the values its ``%(name)s`` placeholders take. ``str()`` is the English,
    filled in, as the API answers it; ``translated()`` is the current language's, filled
    in. The values are data (names, limits, ids) and are filled in as given, never
    translated; a value that is itself a ``Reason`` (a part of the sentence) is
    translated with it."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, **params: object) -> None:
        self.msgid = msgid
        self.params = params

    def __str__(self) -> str:
        return self.msgid % self.params if self.params else self.msgid

    def __repr__(self) -> str:
        return f"Reason({self.msgid!r}, **{self.params!r})"

    def translated(self) -> str:
        params = {k: v.translated() if isinstance(v, Reason) else v for k, v in self.params.items()}
        return gettext(self.msgid, **params)


class ReasonError(ValueError):
    """A pydantic validator's refusal in words a page can translate:
    ``raise ReasonError(N_("use %(n)s digits"), n=4)`` where it would raise
    ``ValueError("use 4 digits")``. It is a ``ValueError`` whose text is the English,
    filled in, so pydantic, the API and any ``except ValueError`` see what they saw
    before; ``from_pydantic`` keeps its ``reason`` (``BuddingError.reasons``) for
    ``field_messages``."""

    def __init__(self, reason: str | Reason, /, **params: object) -> None:
        self.reason = reason if isinstance(reason, Reason) else Reason(reason, **params)
        super().__init__(str(self.reason))


class BuddingError(Exception):
    status: int = 400
    code: str = "bad_request"
    # A refusal that is itself a fact to keep (a blocked signup's fraud log): the unit of
    # work and ``core.db.savepoint`` commit what was written before it was raised, where
    # any other error undoes it. Raise such an error before writing anything else.
    keeps_writes: bool = False

    def __init__(
        self,
        message: str,
        *,
        fields: Mapping[str, str | Reason] | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # The English words (the API's); a ``Reason`` given is kept in ``reasons`` too, for
        # a page to show in the reader's language (``field_messages``).
        self.fields: dict[str, str] = {k: str(v) for k, v in (fields or {}).items()}
        self.reasons: dict[str, Reason] = {
            k: v for k, v in (fields or {}).items() if isinstance(v, Reason)
        }
        if code:
            self.code = code
        self.extra = extra or {}

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if tried again unchanged: a conflict, a
        rate limit or a failure on the server's side (a mail server, say). A background
        job retries these; any other domain error fails it at once."""
        return self.status >= 500 or self.status in (409, 429)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "fields": self.fields}
        body.update(self.extra)
        return {"error": body}


class BadRequest(BuddingError):
    status, code = 400, "bad_request"


class MalformedJson(BadRequest):
    """The request body is not JSON; ``detail`` is the parser's reason."""

    code = "malformed_json"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "the request body is not valid JSON", fields={"body": f"is not valid JSON: {detail}"}
        )


class MalformedMultipart(BadRequest):
    """The request body, sent as ``multipart/form-data``, cannot be parsed as such (no
    boundary, broken parts); ``detail`` is the parser's reason."""

    code = "malformed_multipart"

    def __init__(self, detail: str) -> None:
        super().__init__(
            "the request body is not valid multipart/form-data",
            fields={"body": f"is not valid multipart/form-data: {detail}"},
        )


class Unauthorized(BuddingError):
    status, code = 401, "unauthorized"


class PermissionDenied(BuddingError):
    status, code = 403, "forbidden"


class NotFound(BuddingError):
    status, code = 404, "not_found"


class Conflict(BuddingError):
    status, code = 409, "conflict"


class Gone(BuddingError):
    status, code = 410, "gone"


class PayloadTooLarge(BuddingError):
    status, code = 413, "payload_too_large"


class ValidationFailed(BuddingError):
    status, code = 422, "validation_failed"

    def __init__(
        self,
        message: str,
        *,
        kinds: dict[str, tuple[str, dict[str, Any]]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        # Per field, what kind of error it is where pydantic found it: its error type
        # and context (``("string_too_long", {"max_length": 200})``). ``fields`` holds the
        # system's English words; a member-facing page picks its own, translated, words by
        # kind (``members.portal``). Never part of the JSON body.
        self.kinds = kinds or {}


class RateLimited(BuddingError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 60, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ErrorDetail(BaseModel):
    # An error may carry more (``remaining`` with ``quota_exceeded``, ``job_id`` with
    # ``ranking_failed``): stated per operation, allowed here.
    model_config = ConfigDict(extra="allow")

    code: str = Field(
        description="Stable, for programs: `missing_api_key` or `bad_api_key` (401), "
        "`read_only_key` (403), `not_found` (404), `validation_failed` (422), "
        "`malformed_json` or `malformed_multipart` (400), `payload_too_large` (413), "
        "`conflict` (409), `gone` (410), `rate_limited` (429), `internal_error` (500), or a "
        "more precise code an operation names (`quota_exceeded`, `invite_expired`, ...)"
    )
    message: str = Field(description="What went wrong, for people")
    fields: dict[str, str] = Field(
        description="Each bad input field (a dotted path: `events.0.type`) with its reason"
    )


class ErrorOut(BaseModel):
    """Every error the API answers: ``BuddingError.to_dict``, and the web app's own
    refusals (``core.web``)."""

    error: ErrorDetail


# What each error status means on any operation; an operation's description says more.
ERROR_STATUSES: dict[int, str] = {
    400: "The request body cannot be read (`malformed_json`: not valid JSON; "
    "`malformed_multipart`: a form upload that is not valid multipart/form-data)",
    401: "No API key, or an unknown or revoked one (`missing_api_key`, `bad_api_key`)",
    403: "Refused: a read-only API key (`read_only_key`), or a refusal the operation names",
    404: "What the request names does not exist (in this program)",
    409: "Conflicts with the current state (`fields` or the operation say which)",
    410: "No longer usable (used up, expired, revoked or removed)",
    413: "The request's `Content-Length` is over the server's limit (`payload_too_large`): "
    "any request, refused before it is read",
    422: "Invalid input: `fields` names each bad field with its reason (`validation_failed`); "
    "on any request, an input holding the NUL character (U+0000)",
    429: "Rate limited (`rate_limited`); `Retry-After` says when to try again",
    500: "An unexpected error on the server's side (`internal_error`); `message` is in the "
    "request's language, nothing of the error itself is shown",
    503: "Temporarily unavailable; `Retry-After` says when to try again",
}


def errors_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error answers (``@router.get(..., responses=errors_doc(404))``):
    each with the API's error body, ``ErrorOut``."""
    return {s: {"model": ErrorOut, "description": ERROR_STATUSES[s]} for s in statuses}


def field(
    name: str,
    reason: str | Reason,
    error: type[BuddingError] = ValidationFailed,
    /,
    **params: object,
) -> BuddingError:
    """Shorthand for an error about one input field. ``reason`` is a msgid: mark it with
    ``N_`` and pass the values of its ``%(name)s`` placeholders as keywords
    (``field("top", N_("must be between %(low)s and %(high)s"), low=1, high=1000)``);
    the API answers it in English, filled in, and a page in the reader's language."""
    if not isinstance(reason, Reason):
        reason = Reason(reason, **params)
    return error(f"{name}: {reason}", fields={name: reason})


def pydantic_reason(error: Any) -> str:
    """One pydantic error's reason: a validator's own words as written (pydantic prefixes
    them with "Value error, "), else pydantic's message."""
    raised = (error.get("ctx") or {}).get("error")
    if error.get("type") == "value_error" and isinstance(raised, Exception) and str(raised):
        return str(raised)
    return str(error.get("msg", "invalid"))


def from_pydantic(exc: Any) -> ValidationFailed:
    """A ``ValidationFailed`` naming every bad field of a pydantic ``ValidationError``; a
    validator's ``ReasonError`` keeps its ``Reason`` (its English in ``fields``)."""
    fields: dict[str, str | Reason] = {}
    kinds: dict[str, tuple[str, dict[str, Any]]] = {}
    for e in exc.errors():
        name = ".".join(str(p) for p in e["loc"]) or "body"
        raised = (e.get("ctx") or {}).get("error")
        if e.get("type") == "value_error" and isinstance(raised, ReasonError):
            fields.setdefault(name, raised.reason)
        else:
            fields.setdefault(name, pydantic_reason(e))
        kinds.setdefault(name, (e["type"], dict(e.get("ctx") or {})))
    name, reason = next(iter(fields.items()))
    return ValidationFailed(f"{name}: {reason}", fields=fields, kinds=kinds)


# A form field's error in the reader's language, by the kind of error pydantic found
# (``ValidationFailed.kinds``), its context filling the limit. pydantic's own words are
# English; a service's own check (any other kind) is shown in the current language where
# it gave a ``Reason`` (``field`` does, and a validator's ``ReasonError``), else in its
# words.
FIELD_MESSAGES: dict[str, str] = {
    "greater_than_equal": N_("Must be %(ge)s or more."),
    "greater_than": N_("Must be more than %(gt)s."),
    "less_than_equal": N_("Must be %(le)s or less."),
    "less_than": N_("Must be less than %(lt)s."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "string_too_short": N_("At least %(min_length)s characters."),
    "too_long": N_("At most %(max_length)s items."),
    "too_short": N_("At least %(min_length)s items."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "float_type": N_("Enter a number."),
    "bool_parsing": N_("Choose yes or no."),
    "literal_error": N_("Choose one of the offered values."),
    "enum": N_("Choose one of the offered values."),
    "missing": N_("This field is required."),
}


def field_messages(exc: BuddingError) -> dict[str, str]:
    """``exc``'s field errors for a page, in the current language where pydantic found
    them (see ``FIELD_MESSAGES``) or the service gave a ``Reason``, else in the
    service's words."""
    kinds = exc.kinds if isinstance(exc, ValidationFailed) else {}
    out: dict[str, str] = {}
    for name, reason in exc.fields.items():
        kind, context = kinds.get(name, ("", {}))
        msgid = FIELD_MESSAGES.get(kind)
        if not msgid and name in exc.reasons:
            try:
                out[name] = exc.reasons[name].translated()
            except (KeyError, ValueError, TypeError):  # a translation naming another value
                out[name] = reason
            continue
        limits = {k: v for k, v in context.items() if isinstance(v, int | float | str)}
        try:
            out[name] = gettext(msgid, **limits) if msgid else reason
        except (KeyError, ValueError):  # a context without the limit the message names
            out[name] = reason
    return out


def refusal_banner(errors: Mapping[str, str], inputs: tuple[str, ...], check_below: str) -> str:
    """A refused dashboard form's banner in the reader's language, beside ``errors`` (its
    ``field_messages``), never the API's English ``message``: ``check_below`` (a msgid,
    "… Check the fields below.") where a reason is shown under one of the form's
    ``inputs``, else the reasons themselves (fields the form has no input for), else a
    general refusal."""
    if any(name in errors for name in inputs):
        return gettext(check_below)
    if errors:
        return "; ".join(errors.values())
    return gettext(N_("This was refused. Nothing was changed."))
