"""Intake's configurable rules are one object read from the INTAKE section:
the contraindication thresholds and the PCL-5 cut-off."""
from services.intake.domain import DEFAULT_PCL5_CUTOFF, ScreeningRules, score_questionnaire


def test_the_pcl5_cutoff_comes_from_the_intake_section():
    assert ScreeningRules.from_config({}).pcl5_cutoff == DEFAULT_PCL5_CUTOFF == 33
    rules = ScreeningRules.from_config({"PCL5_PROBABLE_PTSD_CUTOFF": "38"})
    answers = [2] * 17 + [1] * 3  # a total of 37
    assert score_questionnaire("pcl5", answers, pcl5_cutoff=rules.pcl5_cutoff).band == "below_cutoff"
    assert score_questionnaire("pcl5", answers).band == "probable_ptsd"
