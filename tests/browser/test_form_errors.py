"""A dashboard field error as Chromium computes it for a screen reader: the message is the
input's description only, not part of its name (it shares the field's grid cell with the
label, outside it), and it is drawn under its input, in the same cell, on a desk and a phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.fixtures import PHONE, staff_signs_in
from tests.factories import make_program, make_staff

pytestmark = pytest.mark.browser

SLUG = "Slug (in addresses: lowercase letters, digits and dashes)"


@pytest.mark.parametrize("device", ["desk", "phone"])
def test_dashboard_field_error_is_the_inputs_description_not_its_name(
    browser, base_url, screenshots: Path, device: str
) -> None:
    from playwright.sync_api import expect

    make_program("acme", name="Acme Coffee")
    make_staff("owner@example.com", role="owner")
    screen = PHONE if device == "phone" else {"viewport": {"width": 1280, "height": 900}}
    context = browser.new_context(**screen, locale="en-US")
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin")
        staff_signs_in(page, f"{base_url}/admin/acme")
        page.goto(f"{base_url}/admin?all=1")
        slug = page.get_by_label(SLUG, exact=True)
        expect(slug).not_to_have_attribute("aria-invalid", "true")
        expect(slug).to_have_accessible_name(SLUG)
        page.get_by_label("Name", exact=True).fill("Bean Club")
        slug.fill("Not A Slug!")
        page.get_by_role("button", name="Create program").click()
        message = page.locator(".field-error")
        expect(message).to_have_count(1)
        expect(message).to_be_visible()
        slug = page.locator("input[name=slug]")
        expect(slug).to_have_attribute("aria-invalid", "true")
        expect(slug).to_have_value("Not A Slug!")
        # the label's text alone is the name; the message is the description, said once
        expect(slug).to_have_accessible_name(SLUG)
        text = message.inner_text().strip()
        assert "lowercase letters, digits and dashes" in text
        expect(slug).to_have_accessible_description(text)
        # the field without an error: its name, no description
        name = page.locator("input[name=name]")
        expect(name).to_have_accessible_name("Name")
        expect(name).to_have_accessible_description("")
        # under its input, in the same cell
        box, under = slug.bounding_box(), message.bounding_box()
        assert box and under
        assert under["y"] >= box["y"] + box["height"] - 1
        assert abs(under["x"] - box["x"]) < 2
        page.screenshot(path=str(screenshots / f"field-error-{device}.png"), full_page=True)
    finally:
        context.close()
