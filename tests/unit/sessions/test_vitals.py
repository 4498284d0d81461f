import pytest

from services.sessions.domain import DischargeRules, VitalsThresholds, discharge_problems, vitals_alerts

NORMAL = {"systolic": 120, "diastolic": 80, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}
LIMITS = VitalsThresholds()


@pytest.mark.parametrize("measure, value, code", [
    ("systolic", 179, None), ("systolic", 180, "systolic_high"),
    ("diastolic", 109, None), ("diastolic", 110, "diastolic_high"),
    ("heart_rate", 130, None), ("heart_rate", 131, "heart_rate_high"),
    ("heart_rate", 50, None), ("heart_rate", 49, "heart_rate_low"),
    ("spo2", 92, None), ("spo2", 91, "spo2_low"),
    ("respiratory_rate", 10, None), ("respiratory_rate", 9, "respiratory_rate_low"),
])
def test_default_thresholds_at_every_edge(measure, value, code):
    alerts = vitals_alerts({**NORMAL, measure: value}, LIMITS)
    if code is None:
        assert alerts == []
    else:
        threshold = {"systolic_high": 180, "diastolic_high": 110, "heart_rate_high": 130, "heart_rate_low": 50,
                     "spo2_low": 92, "respiratory_rate_low": 10}[code]
        assert alerts == [{"code": code, "measure": measure, "value": value, "threshold": threshold}]


def test_several_breaches_are_all_reported():
    alerts = vitals_alerts({**NORMAL, "systolic": 190, "diastolic": 115, "spo2": 88}, LIMITS)
    assert [a["code"] for a in alerts] == ["systolic_high", "diastolic_high", "spo2_low"]


def test_a_missing_measure_raises_nothing():
    assert vitals_alerts({"spo2": 97}, LIMITS) == []


def test_thresholds_are_configurable():
    assert vitals_alerts({**NORMAL, "systolic": 170}, VitalsThresholds(systolic_high=170))[0]["code"] == "systolic_high"


@pytest.mark.parametrize("latest, oriented, escort, problems", [
    (NORMAL, True, True, []),
    ({**NORMAL, "systolic": 140}, True, True, []),                      # exactly +20
    ({**NORMAL, "systolic": 141}, True, True, ["systolic_not_near_baseline"]),
    ({**NORMAL, "diastolic": 96}, True, True, ["diastolic_not_near_baseline"]),
    ({**NORMAL, "heart_rate": 93}, True, True, ["heart_rate_not_near_baseline"]),
    ({**NORMAL, "spo2": 93}, True, True, ["spo2_not_recovered"]),
    ({**NORMAL, "systolic": 185}, True, True, ["vitals_outside_alert_thresholds", "systolic_not_near_baseline"]),
    (None, True, True, ["no_vitals_since_dosing"]),
    (NORMAL, False, True, ["not_alert_and_oriented"]),
    (NORMAL, True, False, ["escort_not_present"]),
])
def test_discharge_criteria(latest, oriented, escort, problems):
    assert discharge_problems(NORMAL, latest, alert_and_oriented=oriented, escort_present=escort,
                              rules=DischargeRules(), limits=LIMITS) == problems
