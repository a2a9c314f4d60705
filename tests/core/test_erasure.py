"""``core.erasure``: what counts as a mention of an erased person in free text."""

from __future__ import annotations

from budding.core.erasure import ERASED, Identity, scrub


def test_the_email_in_any_case_and_the_name_as_written_and_whole() -> None:
    who = Identity.of(email="zed@example.org", name="Will")
    assert scrub("Will said he will write to ZED@Example.org", who) == (
        f"{ERASED} said he will write to {ERASED}"
    )
    assert scrub("Willow, Will.", who) == f"Willow, {ERASED}."
    # JSON: values, nested, and keys.
    assert scrub({"to": ["zed@example.org"], "Will": 3, "n": 1}, who) == {
        "to": [ERASED],
        ERASED: 3,
        "n": 1,
    }


def test_nothing_to_look_for() -> None:
    assert Identity.of(email=None, name="A").pattern is None  # one letter: not a name
    assert scrub("A note", Identity.of(name=" ")) == "A note"


def test_a_name_in_a_script_without_spaces_is_found_inside_words() -> None:
    """Korean and Chinese write particles and honorifics onto a name ("김민수님이",
    "王小明的"): whole-word matching missed every such mention."""
    assert (
        scrub("김민수님이 초대했습니다", Identity.of(name="김민수")) == f"{ERASED}님이 초대했습니다"
    )
    assert scrub("王小明的邀请", Identity.of(name="王小明")) == f"{ERASED}的邀请"
    assert scrub("みさきさんへ", Identity.of(name="みさき")) == f"{ERASED}さんへ"
    # a Latin name keeps whole words
    assert scrub("Annual note for Ann", Identity.of(name="Ann")) == f"Annual note for {ERASED}"
