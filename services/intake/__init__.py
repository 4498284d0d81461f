"""Intake: patients, consents, medical history, screening questionnaires,
contraindication screening and the clinician's decision."""
