"""docs/events.md and docs/events/*.md against the declared contracts: the
generated sections match the declarations (every declared event documented
with its fields and who consumes it), and every event type the docs name is
declared."""
import re

from services import events_catalogue
from services.events_catalogue import ROOT, all_contracts

DOCS = [ROOT / "docs" / "events.md", *sorted((ROOT / "docs" / "events").glob("*.md"))]


def test_the_generated_sections_match_the_declarations():
    stale = events_catalogue.stale()
    assert stale == [], (f"{', '.join(stale)} out of date with services/*/events.py: "
                         "run .venv/bin/python -m services.events_catalogue")


def test_every_event_type_the_docs_name_is_declared():
    declared = {contract.type for contract in all_contracts()}
    nouns = {event_type.split(".")[0] for event_type in declared}
    named = {name for path in DOCS for name in re.findall(r"`([a-z_]+\.[a-z_]+)", path.read_text())
             if name.split(".")[0] in nouns and not name.endswith(".events")}  # not an exchange
    assert named - declared == set()


def test_every_event_type_is_declared_once_per_version():
    seen = [(contract.producer, contract.type, contract.version) for contract in all_contracts()]
    assert len(seen) == len(set(seen))
    types = {contract.type: contract.producer for contract in all_contracts()}
    assert all(types[t] == p for p, t, _ in seen), "one event type has one producer"


def test_every_handler_reads_its_event_with_a_declared_contract():
    declared = {(contract.producer, contract.type) for contract in all_contracts()}
    consumed = set(events_catalogue.consumers())
    assert consumed - declared == set()
