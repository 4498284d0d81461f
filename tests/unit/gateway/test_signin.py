"""Access tokens from the clinic's identity provider, checked against its
JWKS served by a stand-in on a loopback port."""
import time

import pytest

from common.errors import Forbidden, ServiceUnavailable
from gateway.signin import OidcSettings, OidcVerifier, SignIn, Unauthorized, parse_role_map, parse_tokens
from tests.support.identity_provider import IdentityProvider, SigningKey


class Request:
    def __init__(self, token=None):
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
def idp():
    with IdentityProvider() as provider:
        yield provider


def verifier(idp, **config):
    return OidcVerifier(OidcSettings.from_config({**idp.config(), "OIDC_JWKS_REFRESH_SECONDS": 0, **config}))


@pytest.mark.parametrize("idp_role, role", [("desk", "front_desk"), ("doctor", "clinician"),
                                            ("accounts", "billing"), ("it", "admin")])
@pytest.mark.parametrize("kind", [0, 1], ids=["RS256", "ES256"])
def test_a_valid_token_signs_in_with_the_mapped_role(idp, idp_role, role, kind):
    user = verifier(idp).user(idp.token([idp_role], key=idp.keys[kind]))
    assert (user.user, user.role) == ("dr.grey", role)


def test_the_user_is_the_subject_when_the_user_claim_is_absent(idp):
    token = idp.token(["doctor"], preferred_username=None)
    assert verifier(idp).user(token).user != "None"


@pytest.mark.parametrize("change, message", [
    ({"iss": "https://elsewhere.example"}, "not issued by"),
    ({"aud": "another-api"}, "not meant for this API"),
    ({"exp": int(time.time()) - 3600}, "expired"),
])
def test_a_token_from_elsewhere_for_another_api_or_expired_is_refused(idp, change, message):
    with pytest.raises(Unauthorized, match=message):
        verifier(idp).user(idp.token(["doctor"], **change))


def test_a_token_with_a_bad_signature_is_refused(idp):
    forger = SigningKey("RS256")
    forger.kid = idp.keys[0].kid  # claims the provider's key id
    with pytest.raises(Unauthorized, match="not valid"):
        verifier(idp).user(idp.token(["doctor"], key=forger))


def test_an_unsigned_token_is_refused(idp):
    import jwt
    token = jwt.encode({"iss": idp.issuer, "aud": "clinic-api", "sub": "x", "exp": int(time.time()) + 60,
                        "realm_access": {"roles": ["it"]}}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        verifier(idp).user(token)


def test_a_rotated_key_is_fetched_when_a_token_names_an_unknown_key_id(idp):
    check = verifier(idp)
    assert check.user(idp.token(["doctor"])).role == "clinician"
    assert idp.jwks_requests == 1
    assert check.user(idp.token(["desk"])).role == "front_desk"
    assert idp.jwks_requests == 1  # cached
    new_key = idp.rotate()
    assert check.user(idp.token(["doctor"], key=new_key)).role == "clinician"
    assert idp.jwks_requests == 2


def test_unknown_key_ids_refresh_the_keys_at_most_once_per_interval(idp):
    check = verifier(idp, OIDC_JWKS_REFRESH_SECONDS=600)
    check.user(idp.token(["doctor"]))
    for _ in range(3):
        with pytest.raises(Unauthorized, match="does not publish"):
            check.user(idp.token(["doctor"], key=SigningKey("RS256")))
    assert idp.jwks_requests == 1


def test_the_keys_are_found_through_the_issuers_discovery_document(idp):
    check = OidcVerifier(OidcSettings.from_config({**idp.config(discover=True)}))
    assert check.user(idp.token(["accounts"])).role == "billing"


@pytest.mark.parametrize("claims", [{"realm_access": {}}, {"realm_access": {"roles": ["visitor"]}},
                                    {"realm_access": "desk"}])
def test_a_token_without_a_clinic_role_is_forbidden(idp, claims):
    with pytest.raises(Forbidden):
        verifier(idp).user(idp.token(claims=claims))


def test_without_a_role_map_the_provider_uses_the_clinics_role_names(idp):
    check = verifier(idp, OIDC_ROLE_MAP="", OIDC_ROLES_CLAIM="roles")
    assert check.user(idp.token(claims={"roles": ["billing"]})).role == "billing"


def test_static_tokens_are_off_unless_configured(idp):
    sign_in = SignIn.from_config({**idp.config(), "GATEWAY_TOKENS": ""})
    assert sign_in.tokens == {}
    with pytest.raises(Unauthorized):
        sign_in.authenticate(Request("dev-admin"))
    assert sign_in.authenticate(Request(idp.token(["it"]))).role == "admin"
    development = SignIn.from_config({"GATEWAY_TOKENS": "t:admin:root"})
    assert development.authenticate(Request("t")).actor == "root (admin)"
    with pytest.raises(Unauthorized):
        development.authenticate(Request(idp.token(["it"])))


def test_configuration_errors_are_named():
    with pytest.raises(ValueError, match="OIDC_ROLE_MAP"):
        parse_role_map("desk:receptionist")
    with pytest.raises(ValueError, match="OIDC_AUDIENCE"):
        OidcSettings.from_config({"OIDC_ISSUER": "https://idp.example"})
    assert parse_tokens("") == {}


def test_an_unreachable_provider_is_a_503_not_a_sign_out(idp):
    check = verifier(idp)
    token = idp.token(["doctor"])
    idp.__exit__()
    with pytest.raises(ServiceUnavailable):
        check.user(token)


def test_keys_already_fetched_outlive_a_provider_outage(idp):
    check = verifier(idp)
    assert check.user(idp.token(["doctor"])).role == "clinician"
    idp.__exit__()
    assert check.user(idp.token(["desk"])).role == "front_desk"
    with pytest.raises(ServiceUnavailable):
        check.user(idp.token(["desk"], key=SigningKey("RS256")))


def test_requests_arriving_while_the_keys_are_first_fetched_wait_for_them(idp, monkeypatch):
    """A browser's first burst: several calls at once, before the gateway
    holds the provider's keys. None of them is refused meanwhile."""
    import eventlet
    import httpx

    fetching = httpx.get

    def slow_get(url, **kwargs):
        eventlet.sleep(0.2)
        return fetching(url, **kwargs)

    monkeypatch.setattr(httpx, "get", slow_get)
    checker = OidcVerifier(OidcSettings.from_config(idp.config()))
    token = idp.token(["doctor"])
    pool = eventlet.GreenPool()
    users = list(pool.imap(lambda _: checker.user(token).role, range(3)))
    assert users == ["clinician"] * 3 and idp.jwks_requests == 1
