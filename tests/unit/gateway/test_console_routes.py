"""The staff console's settings and policy, as the gateway hands them out."""
from gateway.console_routes import FILES, console_settings, content_security_policy


def test_the_console_signs_in_at_the_configured_provider_as_its_own_client():
    settings = console_settings({"OIDC_ISSUER": "https://id.clinic.example/realms/staff/",
                                 "CONSOLE_OIDC_CLIENT_ID": "console", "SESSIONS": {"time_zone": "Europe/Dublin"}})
    assert settings["oidc"] == {"issuer": "https://id.clinic.example/realms/staff", "client_id": "console",
                                "scopes": "openid profile"}
    assert settings["clinic_time_zone"] == "Europe/Dublin" and settings["development_tokens"] is False
    # The browser may reach the provider by another name than the gateway does.
    assert console_settings({"OIDC_ISSUER": "http://keycloak:8080", "CONSOLE_OIDC_ISSUER": "https://id.example",
                             "CONSOLE_OIDC_CLIENT_ID": "c"})["oidc"]["issuer"] == "https://id.example"


def test_without_a_console_client_only_development_tokens_can_sign_in():
    settings = console_settings({"OIDC_ISSUER": "https://id.example", "GATEWAY_TOKENS": "dev-desk:front_desk:ann"})
    assert settings["oidc"] is None and settings["development_tokens"] is True
    assert console_settings({})["development_tokens"] is False


def test_the_policy_allows_the_gateway_and_the_provider_and_no_inline_script():
    policy = content_security_policy({"OIDC_ISSUER": "https://id.example:8443/realms/x",
                                      "CONSOLE_OIDC_CLIENT_ID": "c"})
    assert "script-src 'self';" in policy and "unsafe" not in policy
    assert "connect-src 'self' https://id.example:8443;" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self';" in content_security_policy({})


def test_only_the_shipped_files_are_served_and_no_page_has_inline_script():
    assert {"index.html", "app.js", "console.css"} <= set(FILES)
    for path in FILES.values():
        text = path.read_text()
        assert "<script>" not in text and "innerHTML" not in text and "http://" not in text.replace(
            "http://www.w3.org", ""), path.name
