"""Field errors as a screen reader meets them: each form control marked
``aria-invalid="true"``, read with the text of the element its ``aria-describedby`` names."""

from __future__ import annotations

from html.parser import HTMLParser

CONTROLS = {"input", "select", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}  # fmt: skip


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[dict[str, str]] = []
        self.text: dict[str, str] = {}  # id -> the element's text
        self.classes: dict[str, list[str]] = {}  # id -> the element's classes
        self.ids: list[str] = []
        self.field_errors: list[str] = []  # the id of each field-error ("" for none)
        self.in_labels: list[str] = []  # field-errors inside a <label> (part of its name)
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag in CONTROLS:
            self.controls.append(found)
        if ident := found.get("id"):
            self.ids.append(ident)
            self.text.setdefault(ident, "")
            self.classes[ident] = found.get("class", "").split()
        if "field-error" in found.get("class", "").split():
            self.field_errors.append(found.get("id", ""))
            if any(t == "label" for t, _ in self._open):
                self.in_labels.append(found.get("id", "") or "(no id)")
        if tag not in VOID:
            self._open.append((tag, found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if any(t == tag for t, _ in self._open):
            while self._open and self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.text[ident] += data


def field_errors(html: str) -> dict[str, str]:
    """{control name: its error message} for every control marked invalid on the page.

    Fails when an invalid control names no description, or one that is not on the page,
    when a description is no ``field-error``, when ids repeat, or when a ``field-error``
    message is not the description of some invalid control (a screen reader would not
    reach it from the input), or when one sits inside a ``<label>`` (it would be read as
    part of the input's name as well: said twice).
    """
    page = _Page()
    page.feed(html)
    page.close()
    repeated = sorted({i for i in page.ids if page.ids.count(i) > 1})
    assert not repeated, f"ids used more than once: {repeated}"
    errors: dict[str, str] = {}
    described: set[str] = set()
    for control in page.controls:
        if control.get("aria-invalid") != "true":
            continue
        name = control.get("name", "?")
        ids = control.get("aria-describedby", "").split()
        assert ids, f"{name} is invalid but has no aria-describedby"
        messages = []
        for ident in ids:
            assert ident in page.text, f"{name} is described by #{ident}, which is not there"
            assert "field-error" in page.classes[ident], f"#{ident} is no field-error"
            messages.append(" ".join(page.text[ident].split()))
            described.add(ident)
        errors.setdefault(name, " ".join(messages))
    loose = [i or "(no id)" for i in page.field_errors if i not in described]
    assert not loose, f"field errors no input points at: {loose}"
    assert not page.in_labels, f"field errors inside a <label>: {page.in_labels}"
    return errors
