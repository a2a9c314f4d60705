"""Field errors on every dashboard form: the message under its input in the dashboard's
``field-error`` style, and the input marked ``aria-invalid`` and described by it (one
macro, core/forms.html, draws both)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import budding
from budding.fraud.checks import CHECKS
from tests.accounts.helpers import staff_client
from tests.forms import field_errors
from tests.referrals.conftest import settings_form

LABEL = re.compile(r"<label\b.*?</label>", re.S)


@pytest.fixture
def staff(anon_client: Any, program: Any) -> tuple[Any, str]:
    return anon_client, staff_client(anon_client, "owner")


def test_templates_draw_field_errors_with_the_shared_macro() -> None:
    """No template writes a field error by hand (it would miss the id the input needs)."""
    root = Path(budding.__path__[0])
    by_hand = [
        str(path.relative_to(root))
        for path in root.glob("*/templates/**/*.html")
        if path.name != "forms.html"
        and ('class="field-error"' in (text := path.read_text()) or '<small class="error"' in text)
    ]
    assert by_hand == []


def test_templates_keep_field_errors_out_of_labels() -> None:
    """Inside a ``<label>`` the message would be part of the input's name as well as its
    description (a screen reader says it twice): it follows the label, or shares a
    ``div.field`` cell with it."""
    root = Path(budding.__path__[0])
    inside = [
        str(path.relative_to(root))
        for path in root.glob("*/templates/**/*.html")
        if any("forms.error(" in label for label in LABEL.findall(path.read_text()))
    ]
    assert inside == []


def test_a_field_error_inside_a_label_is_refused() -> None:
    html = (
        '<label><span>Slug</span><input name="slug" aria-invalid="true" aria-describedby="e">'
        '<small class="field-error" id="e">Bad</small></label>'
    )
    with pytest.raises(AssertionError, match="inside a <label>"):
        field_errors(html)
    cell = html.replace("<label><span>Slug</span>", '<div class="field"><label>Slug</label>')
    assert field_errors(cell.replace("</small></label>", "</small></div>")) == {"slug": "Bad"}


@pytest.mark.parametrize(
    ("path", "data", "fields"),
    [
        ("/admin", {"name": "New", "slug": "Not A Slug!"}, {"slug"}),
        ("/admin/users", {"email": "nope", "name": "Zoe", "role": "analyst"}, {"email"}),
        ("/admin/acme/api-keys", {"name": "ci", "role": "nobody"}, {"role"}),
        (
            "/admin/acme/rewards/rules",
            {"name": "Coupon", "side": "referee", "trigger": "conversion", "kind": "coupon"},
            {"pool"},
        ),
        ("/admin/acme/rewards/coupons", {"pool": "launch"}, {"file"}),
        ("/admin/acme/fraud/settings", {"ring_min_size": "1"}, {"check_self_email"}),
        (
            "/admin/acme/fraud/settings",
            {**{f"check_{c}": "flag" for c in CHECKS}, "ring_window_hours": "soon"},
            {"ring_window_hours"},
        ),
        (
            "/admin/acme/influence/planner",
            {"k": "0", "strategies": "imm", "launch_costs": "1", "runs": "10"},
            {"k"},
        ),
        ("/admin/acme/webhooks", {"url": "not a url"}, {"url", "event_types"}),
    ],
)
def test_dashboard_forms_tie_each_error_to_its_input(
    staff: tuple[Any, str], path: str, data: dict[str, str], fields: set[str]
) -> None:
    browser, csrf = staff
    r = browser.post(path, data={"csrf_token": csrf, **data})
    assert r.status_code == 422, r.text[:500]
    assert fields <= set(field_errors(r.text)), field_errors(r.text)


def test_webhook_edit_forms_keep_their_error_ids_apart(
    staff: tuple[Any, str], program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budding.core.db import unit_of_work
    from budding.programs.service import get_program
    from budding.webhooks import service

    monkeypatch.setattr(service, "check_target", lambda url: None)
    with unit_of_work() as session:
        endpoint, _ = service.create_endpoint(
            session, get_program(session, "acme"), url="https://hooks.example/a", event_types=["*"]
        )
    browser, csrf = staff
    r = browser.post(
        f"/admin/acme/webhooks/{endpoint.id}/edit",
        data={"csrf_token": csrf, "url": "gopher://x", "event_types": ["nope.x"]},
    )
    assert r.status_code == 422
    errors = field_errors(r.text)
    assert "must be an http" in errors["url"] and "unknown: nope.x" in errors["event_types"]
    assert f'id="webhook-{endpoint.id}-url-error"' in r.text


@pytest.mark.parametrize(
    ("locale", "quota", "expected"),
    [
        ("ko", "-1", "0 이상이어야 합니다."),
        ("zh-CN", "20000", "必须小于或等于 10000。"),
        ("es", "lots", "Introduce un número entero."),
        ("en", "-1", "Must be 0 or more."),
    ],
)
def test_a_bound_is_named_in_the_staffs_language(
    staff: tuple[Any, str], locale: str, quota: str, expected: str
) -> None:
    """Under its input, a setting out of its bounds is said in the dashboard's language:
    it showed pydantic's English ("Input should be greater than or equal to 0")."""
    client, csrf = staff
    r = client.post(
        "/admin/acme/referrals/settings",
        data=settings_form(csrf, invite_quota=quota),
        headers={"accept-language": locale},
    )
    assert r.status_code == 422
    assert field_errors(r.text) == {"invite_quota": expected}


def test_a_services_own_reason_keeps_its_words() -> None:
    """A service's reason that no catalog translates (a ``Reason`` or plain words) is shown
    as written."""
    from budding.core import i18n
    from budding.core.errors import ValidationFailed, field, field_messages

    with i18n.use_locale("ko"):
        assert field_messages(field("pool", "holds no quokkas")) == {"pool": "holds no quokkas"}
        plain = ValidationFailed("pool: odd", fields={"pool": "odd"})
        assert field_messages(plain) == {"pool": "odd"}


def test_a_translatable_reason_answers_the_api_in_english_and_pages_in_the_staffs() -> None:
    """``field(name, N_(msgid), **params)``: the API's body is the English words with the
    values filled in, as before; a page shows the msgid's translation, the values (data)
    filled in as given."""
    from budding.core import i18n
    from budding.core.errors import Conflict, Reason, ValidationFailed, field, field_messages

    error = field("name", "must be at most %(limit)s characters", limit=200)
    assert error.to_dict() == {
        "error": {
            "code": "validation_failed",
            "message": "name: must be at most 200 characters",
            "fields": {"name": "must be at most 200 characters"},
        }
    }
    assert error.fields == {"name": "must be at most 200 characters"}
    with i18n.use_locale("ko"):
        assert field_messages(error) == {"name": "최대 200자까지 입력할 수 있습니다"}
    with i18n.use_locale("en"):
        assert field_messages(error) == {"name": "must be at most 200 characters"}

    # A value that is data is never translated, and a Reason can be given in ``fields``.
    taken = Conflict("taken", fields={"slug": Reason("already taken")})
    assert taken.to_dict()["error"]["fields"] == {"slug": "already taken"}
    many = ValidationFailed(
        "a: x",
        fields={"a": Reason("must be one of %(choices)s", choices="owner, admin"), "b": "odd"},
    )
    assert many.fields == {"a": "must be one of owner, admin", "b": "odd"}
    with i18n.use_locale("es"):
        assert field_messages(taken) == {"slug": "ya está en uso"}
        assert field_messages(many) == {"a": "debe ser uno de: owner, admin", "b": "odd"}


def test_a_validators_reason_answers_the_api_in_english_and_pages_in_the_staffs(
    client: Any,
) -> None:
    """A pydantic validator that raises ``ReasonError(N_(msgid), **values)``: the API's
    body holds the same English words as a plain ``ValueError`` would (pydantic's
    "Value error, " prefix dropped), ``from_pydantic`` keeps the ``Reason`` and a page
    shows its translation; a plain ``ValueError`` keeps its words."""
    from pydantic import BaseModel, ValidationError, field_validator

    from budding.core import i18n
    from budding.core.errors import ReasonError, field_messages, from_pydantic

    class Shape(BaseModel):
        slug: str = ""
        name: str = ""

        @field_validator("slug")
        @classmethod
        def _slug(cls, v: str) -> str:
            raise ReasonError("must be at most %(limit)s characters", limit=200)

        @field_validator("name")
        @classmethod
        def _name(cls, v: str) -> str:
            raise ValueError("holds no quokkas")

    with pytest.raises(ValidationError) as caught:
        Shape(slug="x", name="y")
    error = from_pydantic(caught.value)
    assert error.to_dict() == {
        "error": {
            "code": "validation_failed",
            "message": "slug: must be at most 200 characters",
            "fields": {"slug": "must be at most 200 characters", "name": "holds no quokkas"},
        }
    }
    assert isinstance(caught.value.errors()[0]["ctx"]["error"], ValueError)
    with i18n.use_locale("ko"):
        assert field_messages(error) == {
            "slug": "최대 200자까지 입력할 수 있습니다",
            "name": "holds no quokkas",
        }

    # A converted validator, through the API: the same English words as before.
    r = client.patch(
        "/api/v1/sharing/settings",
        json={"widget_origins": ["nope"]},
        headers={"accept-language": "ko"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"] == {
        "widget_origins": "'nope' is not an origin such as https://shop.example.com"
    }
    assert r.json()["error"]["message"] == (
        "widget_origins: 'nope' is not an origin such as https://shop.example.com"
    )
