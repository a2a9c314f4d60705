"""QR codes of referral links (segno): PNG for chat apps and printing, SVG for pages."""

from __future__ import annotations

import io

import segno

from budding.core.errors import field

# Error correction M (15 %) survives a phone screen photographed at an angle; a 4-module
# quiet zone is what the standard asks for.
ERROR = "m"
BORDER = 4
MAX_SCALE = 40


def make(link: str) -> segno.QRCode:
    return segno.make(link, error=ERROR, micro=False, boost_error=False)


def png(link: str, scale: int = 8) -> bytes:
    if not 1 <= scale <= MAX_SCALE:
        raise field("scale", f"must be between 1 and {MAX_SCALE}")
    out = io.BytesIO()
    make(link).save(out, kind="png", scale=scale, border=BORDER)
    return out.getvalue()


def svg(link: str, scale: int = 8, title: str | None = None, responsive: bool = False) -> bytes:
    """The SVG; ``responsive`` leaves out width and height (a viewBox only) so CSS sizes it."""
    if not 1 <= scale <= MAX_SCALE:
        raise field("scale", f"must be between 1 and {MAX_SCALE}")
    out = io.BytesIO()
    make(link).save(
        out,
        kind="svg",
        scale=scale,
        border=BORDER,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="qr",
        lineclass=None,
        unit=None,
        omitsize=responsive,
    )
    return out.getvalue()
