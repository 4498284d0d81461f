"""Headless Chromium (Debian's, driven by Playwright) for the patient pages'
end-to-end tests. It runs in a subprocess of its own: Playwright's event
loop and eventlet's monkey patching of the test process do not mix.

``browse(steps)`` plays steps in one browser page with JavaScript off (the
pages must work without it) and returns what each step saw:
``{"goto": url}``, ``{"choose": [answer, ...]}`` (the n-th radio group gets
its answer) and ``{"submit": True}``; a goto and a submit record the HTTP
status, the page's title and its visible text."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def browse(steps: list[dict], timeout: float = 90) -> list[dict]:
    finished = subprocess.run([sys.executable, "-m", "tests.support.browser", chromium_path() or ""],
                              input=json.dumps(steps), capture_output=True, text=True, timeout=timeout)
    if finished.returncode != 0:
        raise AssertionError(f"the browser run failed: {finished.stderr[-2000:]}")
    return json.loads(finished.stdout)


def _play(executable: str, steps: list[dict]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    seen = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844}).new_page()
            page.set_default_timeout(20_000)
            for step in steps:
                if "goto" in step:
                    response = page.goto(step["goto"])
                    seen.append(_saw(page, response))
                elif "choose" in step:
                    for number, answer in enumerate(step["choose"], start=1):
                        page.check(f"input[name=q{number}][value='{answer}']")
                    seen.append({"chose": len(step["choose"])})
                elif "submit" in step:
                    with page.expect_navigation() as navigation:
                        page.click("button[type=submit]")
                    seen.append(_saw(page, navigation.value))
        finally:
            browser.close()
    return seen


def _saw(page, response) -> dict:
    return {"status": response.status if response else None, "title": page.title(),
            "text": page.inner_text("body"), "url": page.url,
            "radios": page.locator("input[type=radio]").count(),
            "labelled": page.locator("fieldset legend").count()}


if __name__ == "__main__":
    print(json.dumps(_play(sys.argv[1], json.loads(sys.stdin.read()))))
