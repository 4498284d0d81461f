"""The staff console driven in headless Chromium (Debian's, by Playwright),
one scenario per run, in a subprocess of its own like tests/support/browser.py
(Playwright's event loop and the test process's eventlet do not mix).

``play(scenario, **args)`` runs ``scenario`` below and returns what it saw
as a dict. Each scenario signs in at the tests' identity provider (its
sign-in page), then works the console as that member of staff would. What
another device does meanwhile (a check-in at the desk, a reading on another
clinician's tablet) is sent from here straight to the API with httpx, so the
page must pick it up live, without a reload."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.support.browser import chromium_path

TIMEOUT_MS = 20_000


def play(scenario: str, timeout: float = 150, **args) -> dict:
    finished = subprocess.run([sys.executable, "-m", "tests.support.console_browser", chromium_path() or "", scenario],
                              input=json.dumps(args), capture_output=True, text=True, timeout=timeout)
    if finished.returncode != 0:
        raise AssertionError(f"the browser run failed: {finished.stderr[-3000:]}")
    return json.loads(finished.stdout)


# -- helpers (in the browser process) -----------------------------------------

def sign_in(page, console_url: str, who: str) -> None:
    """Through the console's button and the provider's page, by mouse."""
    page.goto(console_url)
    page.get_by_role("button", name="Sign in with the clinic's account").click()
    page.get_by_role("button", name=f"Sign in as {who}").click()
    page.wait_for_selector("#nav:not([hidden])")


def tab_to(page, selector: str, most: int = 40) -> list[str]:
    """Press Tab until the focused element matches ``selector``; answers
    what got the focus on the way (name, id or text), in order."""
    path = []
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement;
            return e ? (e.getAttribute('name') || e.id || e.textContent.trim().slice(0, 40)) : ''; }""")
        path.append(focused)
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return path
    raise AssertionError(f"{selector} never got the focus; went through {path}")


def focus_is_visible(page) -> bool:
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; }""")


def no_reload_marker(page) -> None:
    page.evaluate("() => { window.__notReloaded = true; }")


def not_reloaded(page) -> bool:
    return page.evaluate("() => window.__notReloaded === true")


def api(args: dict, method: str, path: str, token: str, body=None) -> dict:
    import httpx

    answer = httpx.request(method, f"{args['gateway']}/api/v1{path}", json=body, timeout=15,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


# -- scenarios ----------------------------------------------------------------

def register_by_keyboard(page, args: dict) -> dict:
    """Sign-in and registration with the keyboard alone: Tab to move, Enter
    to press, typing into the focused field."""
    page.goto(args["console"])
    page.wait_for_selector("#sign-in")
    sign_in_path = tab_to(page, "#sign-in")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Clinic sign-in")
    tab_to(page, "button[value='frank.front']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")
    tab_to(page, "#nav a[href='#/desk']")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Register a patient")
    visible = []
    order = []
    for name, text in (("given_name", "Nora"), ("family_name", "Quinn"), ("date_of_birth", "04121979"),
                       ("sex", "f"), ("phone", "+14155550142"), ("email", "nora.quinn@example.org"),
                       ("time_zone", None), ("primary_condition", "t"), ("weight_kg", "64"),
                       ("diagnosis_codes", "F33.2")):
        order.append(tab_to(page, f"form [name='{name}']")[-1])
        visible.append(focus_is_visible(page))
        if text:
            page.keyboard.type(text)
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    done = page.wait_for_selector(".done [data-mrn]")
    return {"sign_in_path": sign_in_path, "order": order, "focus_visible": visible,
            "mrn": done.inner_text(), "message": page.inner_text(".done"),
            "focused_message": page.evaluate("() => document.activeElement.classList.contains('done')"),
            "announced": page.inner_text("#announcer")}


def book_course(page, args: dict) -> dict:
    sign_in(page, args["console"], "Frank Front, front desk")
    page.goto(f"{args['console']}#/desk")
    # The API's 422 is said beside the field it names.
    page.get_by_label("Given name").fill("Olga")
    page.get_by_label("Family name").fill("Berg")
    page.get_by_label("Date of birth").fill("1970-01-31")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Primary condition").select_option("ptsd")
    page.get_by_label("Mobile phone").fill("12345")
    page.get_by_role("button", name="Register patient").click()
    page.wait_for_selector("input[name=phone][aria-invalid=true]")
    refused = {"phone_error": page.inner_text("#" + page.get_attribute("input[name=phone]", "id") + "-error"),
               "summary": page.inner_text(".problem:not(:empty)")}
    page.get_by_label("Patient name or MRN").fill(args["name"])
    page.get_by_role("button", name="Find patient").click()
    page.get_by_role("button", name=args["name"], exact=False).first.click()
    page.get_by_label("Chair").select_option(label=args["chair"])
    page.get_by_label("Clinician").select_option(label=args["clinician"])
    page.get_by_label("First session on").fill(args["date"])
    page.get_by_role("button", name="Find start times").click()
    page.get_by_label("First session starts at").select_option(label=args["time"])
    page.get_by_role("button", name="Book course").click()
    page.wait_for_selector(".booked li")
    return {"booked": page.locator(".booked li").all_inner_texts(), "message": page.inner_text(".done:not(:empty)"),
            **refused}


def day_board_and_vitals(page, args: dict) -> dict:
    """The clinician's morning: the board, a check-in at the desk appearing
    on it live, a running session opened from it, a reading with an alert,
    another device's reading raising an alert here without a reload."""
    seen = {}
    sign_in(page, args["console"], "Dr Meredith Grey, clinician")
    page.wait_for_selector(".slot")
    page.wait_for_selector("#live[data-state='on']")
    no_reload_marker(page)
    seen["board"] = _board(page)
    # The front desk checks the booked patient in at their own desk.
    api(args, "POST", f"/appointments/{args['booked_appointment']}/check-in", args["desk_token"], args["checklist"])
    page.wait_for_selector(f"[data-appointment='{args['booked_appointment']}'] .open")
    seen["after_check_in"] = _board(page)
    page.get_by_role("link", name=f"Open session of {args['running_patient']}").click()
    page.wait_for_selector("text=Record vitals")
    page.wait_for_selector("h1:has-text('session in progress')")
    seen["session_heading"] = page.inner_text("h1")
    for label, value in (("Systolic (mmHg)", "186"), ("Diastolic (mmHg)", "112"), ("Heart rate (/min)", "88"),
                         ("SpO₂ (%)", "97"), ("Respiratory rate (/min)", "14")):
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Record vitals").click()
    page.wait_for_selector(".session-alerts .alert")
    seen["own_alerts"] = page.locator(".session-alerts .alert").all_inner_texts()
    # A reading from another clinician's device: only the stream brings it here.
    api(args, "POST", f"/sessions/{args['running_session']}/vitals", args["clinician_token"],
        {"systolic": 128, "diastolic": 80, "heart_rate": 76, "spo2": 89, "respiratory_rate": 12})
    page.wait_for_function("() => document.querySelectorAll('.session-alerts .alert').length >= 2")
    seen["alerts"] = page.locator(".session-alerts .alert").all_inner_texts()
    seen["alert_region"] = page.get_attribute(".session-alerts", "role")
    seen["vitals_rows"] = page.locator("table tbody tr").count()
    seen["not_reloaded"] = not_reloaded(page)
    page.get_by_role("link", name="Day board").click()
    page.wait_for_selector(".slot.alerting")
    seen["board_after"] = _board(page)
    if args.get("screenshot"):
        page.set_viewport_size({"width": 1280, "height": 400})
        page.wait_for_timeout(300)  # the layout settles
        page.screenshot(path=args["screenshot"], full_page=True)
    return seen


def _board(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.chair')].map((chair) =>
        [chair.querySelector('h2').textContent, [...chair.querySelectorAll('.slot')].map((slot) =>
            slot.querySelector('.who').textContent.trim() + ' | ' + slot.querySelector('.state').textContent)]))""")


def billing(page, args: dict) -> dict:
    seen = {}
    sign_in(page, args["console"], "Bea Biller, billing")
    page.goto(f"{args['console']}#/billing")
    row = page.locator(f"tr[data-invoice='{args['number']}']")
    row.wait_for()
    seen["row"] = row.inner_text()
    row.get_by_role("button", name="Record payment").click()
    page.get_by_label("Amount").fill(args["part"])
    page.get_by_label("Method").select_option("card")
    page.get_by_label("Reference").fill("ch_console_1")
    page.get_by_role("button", name="Record payment", exact=True).last.click()
    page.wait_for_selector(".done:not(:empty)")
    seen["message"] = page.inner_text(".done:not(:empty)")
    page.wait_for_function("(n) => (document.querySelector(`tr[data-invoice='${n}']`) || {}).innerText"
                           "?.includes('partially paid')", arg=args["number"])
    seen["row_after"] = row.inner_text()
    # Bad input is said beside the field, nothing is sent.
    row.get_by_role("button", name="Record payment").click()
    page.get_by_label("Amount").fill("twelve")
    page.get_by_role("button", name="Record payment", exact=True).last.click()
    seen["bad_amount"] = page.inner_text(".field .error:not([hidden])")
    seen["invalid"] = page.get_attribute("input[name=amount]", "aria-invalid")
    return seen


def development_token(page, args: dict) -> dict:
    """bin/run-clinic's way in: no identity provider, a static token."""
    page.goto(args["console"])
    page.get_by_label("Development bearer token").fill(args["token"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")
    page.get_by_role("link", name="Front desk").click()
    page.wait_for_selector("text=Register a patient")
    return {"heading": page.inner_text("h1"), "who": page.inner_text("#who"),
            "focused": page.evaluate("() => document.activeElement.tagName")}


SCENARIOS = {f.__name__: f for f in (register_by_keyboard, book_course, day_board_and_vitals, billing,
                                     development_token)}


def _play(executable: str, scenario: str, args: dict) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            errors = []
            # Script failures only: a refused request is the page's to explain.
            page.on("pageerror", lambda error: errors.append(str(error)))
            refused = []
            page.on("response", lambda r: refused.append(f"{r.request.method} {r.url} {r.status}") if r.status >= 400
                    else None)
            try:
                seen = SCENARIOS[scenario](page, args)
            except Exception:
                # What the page showed, for the failure's report.
                print(f"page at {page.url}, script errors {errors}, refused {refused}:\n"
                      f"{page.inner_text('body')[:3000]}",
                      file=sys.stderr)
                raise
            seen["page_errors"] = errors
            return seen
        finally:
            browser.close()


if __name__ == "__main__":
    print(json.dumps(_play(sys.argv[1], sys.argv[2], json.loads(sys.stdin.read()))))
