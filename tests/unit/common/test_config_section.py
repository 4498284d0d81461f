"""A service's configuration section is read once, at container setup, into
its rules object (ConfigSection), and a timer may take its interval from the
service's section (ConfiguredTimer)."""
from dataclasses import dataclass

import pytest

from common.service import ConfigSection, ConfiguredTimer


@dataclass(frozen=True)
class Rules:
    late_hours: int = 24

    @classmethod
    def from_config(cls, section: dict) -> "Rules":
        return cls(late_hours=int(section.get("LATE_HOURS", cls.late_hours)))


class Container:
    """Just what the extensions read of a nameko container."""

    service_name = "clinic"

    def __init__(self, config: dict):
        self.config = config


@pytest.fixture
def set_up():
    """Bind an extension to a container holding ``config`` and set it up;
    the containers live as long as the test (extensions hold weak references)."""
    containers = []

    def set_up(extension, config: dict, name="rules"):
        containers.append(Container(config))
        extension = extension.bind(containers[-1], name)
        extension.setup()
        return extension

    return set_up


def test_the_section_is_built_into_the_rules_object_once(set_up):
    built = []

    def build(section):
        built.append(section)
        return Rules.from_config(section)

    provider = set_up(ConfigSection("SESSIONS", build), {"SESSIONS": {"LATE_HOURS": 12}, "BILLING": {"X": 1}})
    first, second = provider.get_dependency(object()), provider.get_dependency(object())
    assert first == Rules(late_hours=12) and second is first
    assert built == [{"LATE_HOURS": 12}]


@pytest.mark.parametrize("config", [{}, {"SESSIONS": None}, {"SESSIONS": {}}])
def test_a_missing_or_empty_section_gives_the_defaults(set_up, config):
    assert set_up(ConfigSection("SESSIONS", Rules.from_config), config).get_dependency(None) == Rules()


def test_without_a_builder_the_section_is_a_plain_dict_of_its_own(set_up):
    config = {"INTAKE": {"PCL5_PROBABLE_PTSD_CUTOFF": 33}}
    section = set_up(ConfigSection("INTAKE"), config).get_dependency(None)
    assert section == {"PCL5_PROBABLE_PTSD_CUTOFF": 33}
    section["PCL5_PROBABLE_PTSD_CUTOFF"] = 0
    assert config["INTAKE"]["PCL5_PROBABLE_PTSD_CUTOFF"] == 33


def test_a_bad_value_stops_the_service_at_setup_naming_the_section(set_up):
    with pytest.raises(ValueError, match="the SESSIONS section of the configuration cannot be used"):
        set_up(ConfigSection("SESSIONS", Rules.from_config), {"SESSIONS": {"LATE_HOURS": "soon"}})
    with pytest.raises(ValueError, match="SESSIONS"):
        set_up(ConfigSection("SESSIONS", Rules.from_config), {"SESSIONS": {"LATE_HOURS": ["12"]}})


@pytest.mark.parametrize("config, interval", [
    ({"BILLING": {"OVERDUE_SCAN_SECONDS": "60"}}, 60.0),
    ({"BILLING": {}}, 300),
    ({}, 300),
    ({"OVERDUE_SCAN_SECONDS": 5}, 300),  # a top-level key is not the section's
])
def test_a_timer_interval_from_the_service_section(set_up, config, interval):
    timer = set_up(ConfiguredTimer(300, config_key="OVERDUE_SCAN_SECONDS", section="BILLING"), config, "scan")
    assert timer.interval == interval


def test_a_timer_interval_from_a_top_level_key(set_up):
    timer = set_up(ConfiguredTimer(1, config_key="OUTBOX_RELAY_INTERVAL"), {"OUTBOX_RELAY_INTERVAL": 0.2}, "relay")
    assert timer.interval == 0.2
