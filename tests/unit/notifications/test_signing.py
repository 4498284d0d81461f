"""Webhook signatures, as a receiver checks them."""
from services.notifications.channels import ChannelSettings, sign, verify

BODY = b'{"event_id": "e-1", "type": "appointment.scheduled"}'


def test_a_receiver_accepts_a_fresh_correct_signature():
    signature = sign("s3cret", "1767225600", BODY)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("s3cret", "1767225600", signature, BODY, now=1767225600 + 10)


def test_a_receiver_refuses_tampering_a_wrong_secret_or_a_replay():
    signature = sign("s3cret", "1767225600", BODY)
    assert not verify("s3cret", "1767225600", signature, BODY + b" ", now=1767225600)
    assert not verify("other", "1767225600", signature, BODY, now=1767225600)
    assert not verify("s3cret", "1767225601", signature, BODY, now=1767225600)  # timestamp is signed
    assert not verify("s3cret", "1767225600", signature, BODY, now=1767225600 + 301)
    assert not verify("s3cret", None, signature, BODY)
    assert not verify("s3cret", "soon", signature, BODY)


def test_channel_settings_from_configuration():
    settings = ChannelSettings.from_config({
        "SMTP_PORT": "2525", "SMTP_TLS": "STARTTLS", "STAFF_ALERT_EMAILS": "a@x.org, b@x.org",
        "WEBHOOKS": [{"name": "ehr", "url": "http://ehr/hook", "secret": "k", "events": "appointment.scheduled"}],
        "STAFF_WEBHOOK": {"url": "http://pager/hook", "secret": "p"},
    })
    assert (settings.smtp_port, settings.smtp_tls, settings.staff_emails) == (2525, "starttls", ("a@x.org", "b@x.org"))
    assert settings.webhooks[0].wants("appointment.scheduled") and not settings.webhooks[0].wants("invoice.issued")
    assert settings.subscriber("staff").url == "http://pager/hook"
    assert ChannelSettings.from_config({}).sms_url is None
    # Events carry patient details: a subscriber gets only what it names.
    quiet = ChannelSettings.from_config({"WEBHOOKS": [{"name": "x", "url": "http://x", "secret": "k"}]})
    assert not quiet.webhooks[0].wants("patient.registered")
