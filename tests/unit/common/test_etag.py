"""Entity tags: the same answer gives the same tag, and If-Match is parsed
strictly."""
import pytest

from common.errors import PreconditionFailed, ValidationFailed
from common.etag import check_if_match, etag, parse_if_match

ANSWER = {"patient_id": "p1", "given_name": "Ana", "weight_kg": 70.5, "consents": {"sms": True}}


def test_the_tag_depends_on_the_answer_not_on_key_order():
    assert etag(ANSWER) == etag(dict(reversed(list(ANSWER.items()))))
    assert etag(ANSWER) != etag({**ANSWER, "given_name": "Anna"})
    assert etag(ANSWER).startswith('"') and etag(ANSWER).endswith('"')


@pytest.mark.parametrize("header, tags", [
    (None, None), ("*", ["*"]), ('"abc"', ['"abc"']), (' "a" , "b" ', ['"a"', '"b"']), ('W/"a"', ['W/"a"']),
])
def test_if_match_headers_that_are_well_formed(header, tags):
    assert parse_if_match(header) == tags


@pytest.mark.parametrize("header", ["abc", '"a" "b"', '"a', "", '"a",,', "W/abc", '"a\x01"'])
def test_a_malformed_if_match_is_refused_naming_it(header):
    with pytest.raises(ValidationFailed) as caught:
        parse_if_match(header)
    assert caught.value.details[0]["field"] == "If-Match"


def test_a_change_goes_ahead_only_on_the_current_tag():
    check_if_match(None, ANSWER)
    check_if_match([etag(ANSWER)], ANSWER)
    check_if_match(['"old"', etag(ANSWER)], ANSWER)
    check_if_match(etag(ANSWER), ANSWER)  # an RPC caller may send one tag
    check_if_match(["*"], ANSWER)
    for stale in (['"old"'], ["W/" + etag(ANSWER)]):
        with pytest.raises(PreconditionFailed):
            check_if_match(stale, ANSWER)
    with pytest.raises(PreconditionFailed):
        check_if_match(["*"], None)  # nothing there yet
    with pytest.raises(ValidationFailed):
        check_if_match([1], ANSWER)
