"""Control characters in text are refused at validation, naming the field,
before any schema rule or database sees them."""
import pytest

from common.errors import ValidationFailed
from common.validation import Schema, parse


class Person(Schema):
    family_name: str
    note: str | None = None
    aliases: list[str] = []
    contact: dict[str, str] = {}


@pytest.mark.parametrize("payload, field", [
    ({"family_name": "A\u0000"}, "family_name"),
    ({"family_name": "A\u0007b"}, "family_name"),
    ({"family_name": "Lopez", "note": "\u001b[31m"}, "note"),
    ({"family_name": "Lopez", "note": "x\u007f"}, "note"),
    ({"family_name": "Lopez", "note": "x\u0085"}, "note"),
    ({"family_name": "Lopez", "note": "\ud800"}, "note"),
    ({"family_name": "Lopez", "aliases": ["ok", "b\u0000d"]}, "aliases.1"),
    ({"family_name": "Lopez", "contact": {"phone": "\u0000"}}, "contact.phone"),
    ({"family_name": "Lopez", "contact": {"ph\u0000one": "1"}}, "contact.ph?one"),
])
def test_a_control_character_is_refused_naming_the_field(payload, field):
    with pytest.raises(ValidationFailed) as caught:
        parse(Person, payload)
    assert [e["field"] for e in caught.value.details] == [field]
    assert "control characters" in caught.value.details[0]["message"]


def test_line_breaks_and_tabs_in_free_text_are_kept():
    given = parse(Person, {"family_name": "Lopez", "note": "first line\r\nsecond\tline"})
    assert given.note == "first line\r\nsecond\tline"


def test_ordinary_text_in_any_script_passes():
    assert parse(Person, {"family_name": "Nguyễn-Łukasz 李 ☕"}).family_name == "Nguyễn-Łukasz 李 ☕"
