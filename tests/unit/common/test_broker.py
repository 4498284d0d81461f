"""What a service remembers of the RPC requests it answered, so a request
the broker hands back after a restart is answered again, not run again."""
import sys
from types import SimpleNamespace

from cli.console import redact as console_redact
from common.broker import Answers, Reply, redacted, request_key
from common.errors import NotFound


def message(content_type="application/json", reply_to="caller-1", correlation_id="c-1"):
    return SimpleNamespace(properties={"content_type": content_type, "reply_to": reply_to,
                                       "correlation_id": correlation_id})


def test_a_request_is_known_by_its_caller_and_correlation_id():
    assert request_key(message()) == ("caller-1", "c-1")
    assert request_key(message(correlation_id=None)) is None


def test_a_reply_is_what_nameko_would_send_and_a_foreign_content_type_is_answered_in_json():
    reply = Reply.of(message(content_type="text/x-unknown"), {"patient_id": "p-1"}, None)
    assert reply.serializer == "json"
    assert reply.payload == {"result": {"patient_id": "p-1"}, "error": None}
    assert (reply.routing_key, reply.correlation_id) == ("caller-1", "c-1")

    try:
        raise NotFound("no patient p-2")
    except NotFound:
        failed = Reply.of(message(), None, sys.exc_info())
    assert failed.payload["error"]["exc_type"] == "NotFound"


def test_answers_are_forgotten_by_age_and_number_but_never_while_running():
    answers = Answers(max_age=0, max_size=3)
    running = answers.begin(("c", "1"))
    for n in range(2, 4):
        answers.begin(("c", str(n))).done.send(True)
    answers.begin(("c", "4"))
    # Over the size bound the oldest goes, running or not; under it, age
    # alone never drops a request that is still running.
    assert answers.get(("c", "1")) is None and not running.done.ready()
    answers = Answers(max_age=0, max_size=100)
    answers.begin(("c", "1"))
    answers.begin(("c", "2"))
    assert answers.get(("c", "1")) is not None


def test_no_node_password_of_a_cluster_uri_reaches_a_log_line():
    uri = "amqp://clinic:secret-1@rabbit-1:5672/clinic;amqp://clinic:secret-2@rabbit-2:5672/clinic"
    assert "secret" not in redacted(uri)
    assert "rabbit-1:5672" in redacted(uri) and "rabbit-2:5672" in redacted(uri)
    assert "secret" not in console_redact(uri)  # what the clinic command prints
