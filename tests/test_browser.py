"""End to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against
`paperboy serve` in a subprocess: sign up, search, open a paper, upvote, comment, submit, and a
hostile title shown as text. Screenshots of the main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from support import CHROMIUM, free_port, serving

ARTIFACTS = Path(os.environ.get("PAPERBOY_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(built, tmp_path_factory):
    """`paperboy serve` over a copy of the embedded test corpus plus a paper with a hostile title."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(built[0], home)
    hostile = home / "hostile.jsonl"
    hostile.write_text('{"id": "2401.99999", "title": "%s", "abstract": "An abstract.", "authors": "Eve", '
                       '"categories": "cs.CR", "versions": [{"version": "v1", "created": '
                       '"Tue, 2 Jan 2024 10:00:00 GMT"}]}\n' % HOSTILE)
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "paperboy.cli", "ingest", "kaggle", str(hostile), "-q"], env=env, check=True)
    port = free_port()
    with serving([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port)], port, env=env,
                 ready_path="/api/openapi.json") as url:
        yield url


def shot(page, name: str) -> None:
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}.png"), full_page=True)


def test_a_new_user_does_everything(site, browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(site + "/")
    assert page.locator("h1").inner_text().startswith("Daily papers")
    assert page.locator("article.entry").count() > 0
    shot(page, "daily")

    page.click("text=Sign up")
    page.fill("#name", "alice")
    page.fill("#password", "a long password")
    page.click("button:has-text('Create account')")
    assert page.locator(".account a").first.inner_text() == "alice"

    page.fill("input[name=q]", "universe without an external observer")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    assert page.locator("article.entry").count() > 0
    shot(page, "search")
    page.locator("article.entry h2 a").first.click()
    page.wait_for_url("**/papers/**")
    title = page.locator("h1").inner_text()
    assert title and page.locator(".similar li").count() > 0
    shot(page, "paper")

    count = page.locator(".paper .vote .count")
    before = int(count.inner_text())
    url_before = page.url
    page.click(".paper .vote button")
    # A locator assertion polls from Playwright's side: a string predicate (wait_for_function) is an
    # eval inside the page, which the site's CSP forbids once the first check has not matched yet.
    expect(count).to_have_text(str(before + 1))
    assert page.url == url_before  # no reload: the vote went through fetch
    assert page.get_attribute(".paper .vote button", "aria-pressed") == "true"
    page.reload()
    assert int(count.inner_text()) == before + 1
    page.click(".paper .vote button")  # take it back
    expect(count).to_have_text(str(before))

    page.fill("#body", "Compare with https://example.org/related " + HOSTILE)
    page.click("button:has-text('Comment')")
    comment = page.locator(".comment .text").last
    assert HOSTILE in comment.inner_text()  # shown as text, not run
    assert comment.locator("a").get_attribute("href") == "https://example.org/related"

    page.goto(site + "/submit")
    page.fill("#ref", "https://arxiv.org/abs/0704.0001v1")
    page.click("button:has-text('Submit')")
    page.wait_for_url("**/papers/0704.0001?submitted=*")
    page.goto(site + f"/?date={date.today().isoformat()}")
    assert page.locator("article.entry h2").filter(has_text="diphoton").count() == 1
    assert "submitted by alice" in page.locator("article.entry").first.inner_text()

    page.goto(site + "/papers/2401.99999")
    assert page.locator("h1").inner_text() == HOSTILE
    page.goto(site + "/?date=2024-01-02")
    assert page.locator("article.entry h2").first.inner_text() == HOSTILE
    page.goto(site + "/trending")
    shot(page, "trending")
    assert dialogs == []  # no script from data ever ran


def test_reading_works_without_javascript_and_by_keyboard(site, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site + "/")
    link = page.locator("article.entry h2 a").first
    link.click()
    assert page.locator("h2", has_text="Abstract").count() == 1
    page.goto(site + "/search?q=quantum")
    assert page.locator("article.entry").count() > 0
    page.goto(site + "/")
    page.keyboard.press("Tab")  # the first stop is the skip link, then the navigation
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "paperboy"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(site + "/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "daily-phone")
    context.close()


def test_a_reader_imports_zotero_and_steers_recommendations(site, browser):
    page = browser.new_page()
    page.goto(site + "/signup")
    page.fill("#name", "zoe")
    page.fill("#password", "a long password")
    page.click("button:has-text('Create account')")
    page.click("nav >> text=Library")
    page.set_input_files("#file", str(Path(__file__).parent / "data" / "library" / "zotero.bib"))
    page.click("button:has-text('Import')")
    page.wait_for_selector("text=newly saved", timeout=120_000)  # a background job; the page reloads itself
    assert "6 papers" in page.locator("main").inner_text()
    page.click("text=See your recommendations")
    recs = page.locator("article.rec h2")
    assert recs.count() > 0 and page.locator("article.rec .why").first.inner_text().startswith("Why: matches")
    shot(page, "recommendations")
    first = recs.first.inner_text()
    page.locator("article.rec").first.locator("button:has-text('Not interested')").click()
    page.wait_for_url("**/recommendations")
    assert first not in page.locator("article.rec h2").all_inner_texts()
    page.click("nav >> text=Interests")
    assert page.locator("section.interest").count() >= 1
    shot(page, "interests")
