"""The account lifecycle and moderation end to end: `paperboy serve` in a subprocess mailing through a
real SMTP server (aiosmtpd), driven in headless Chromium. A reader signs up, confirms the address
from the mailed link, comments, resets the password from a mailed link; a moderator (made with
`paperboy user add`) hides the comment and suspends the reader; the reader, let back in, deletes
the account."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support import CHROMIUM, Inbox, free_port, serving, smtp_server
from test_browser import shot

READER, MOD, PASSWORD = "rdr_e2e", "mod_e2e", "plum violin kettle"


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    with smtp_server(box) as controller:
        yield box, controller.port


@pytest.fixture(scope="module")
def site(built, tmp_path_factory, inbox):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    home = tmp_path_factory.mktemp("browser-accounts") / "home"
    shutil.copytree(built[0], home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PAPERBOY_HOME=str(home), HF_HUB_OFFLINE="1", PAPERBOY_SMTP_HOST="127.0.0.1",
               PAPERBOY_SMTP_PORT=str(inbox[1]), PAPERBOY_BASE_URL=url)
    subprocess.run([sys.executable, "-m", "paperboy.cli", "user", "add", MOD, "--role", "moderator",
                    "--password-stdin"], input=PASSWORD + "\n", text=True, env=env, check=True)
    with serving([sys.executable, "-m", "paperboy.cli", "serve", "--port", str(port)], port, env=env,
                 ready_path="/api/openapi.json") as site_url:
        yield site_url


def mailed_link(box: Inbox, n: int, kind: str) -> str:
    return re.search(rf"(http://127\.0\.0\.1:\d+/{kind}/[\w.-]+)", box.wait(n)[n - 1].get_content()).group(1)


def log_in(page, site: str, name: str, password: str = PASSWORD) -> None:
    page.goto(site + "/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit] >> text=Log in")


def test_account_lifecycle_and_moderation(site, browser, inbox):
    box = inbox[0]
    reader = browser.new_context().new_page()
    reader.goto(site + "/signup")
    reader.fill("#name", READER)
    reader.fill("#email", "rdr@example.org")
    reader.fill("#password", "password")  # too common: refused with a clear message
    reader.click("text=Create account")
    assert "stronger password" in reader.content()
    reader.goto(site + "/signup")
    reader.fill("#name", READER)
    reader.fill("#email", "rdr@example.org")
    reader.fill("#password", PASSWORD)
    reader.click("text=Create account")
    assert reader.locator(f"a:has-text('{READER}')").count() == 1

    # The verification mail: open its link, confirm.
    reader.goto(mailed_link(box, 1, "verify"))
    reader.click("#confirm")
    assert "is confirmed" in reader.inner_text("#message")
    reader.goto(site + "/settings/account")
    assert "confirmed" in reader.inner_text("#email-status") and "not confirmed" not in reader.inner_text("#email-status")
    shot(reader, "account-settings")

    # A comment, then a forgotten password: reset from the mailed link.
    reader.goto(site + "/papers/0704.0001")
    reader.fill("#body", "Spam spam spam, buy now")
    reader.click("button:has-text('Comment')")
    assert "buy now" in reader.content()
    reader.click("button:has-text('Log out')")
    reader.goto(site + "/login")
    reader.click("text=Reset it")
    reader.fill("#email", "rdr@example.org")
    reader.click("text=Mail me a reset link")
    assert "If an account has that address" in reader.inner_text("#message")
    link = mailed_link(box, 2, "reset")
    reader.goto(link)
    reader.fill("#password", "new tulip harbor")
    reader.click("text=Set the new password")
    assert "new password is set" in reader.inner_text("#notice")
    reader.goto(link)
    assert "not valid" in reader.content()  # the link worked once

    # The moderator hides the comment from the paper page and suspends the reader from /moderation.
    mod = browser.new_context().new_page()
    log_in(mod, site, MOD)
    mod.goto(site + "/papers/0704.0001")
    mod.locator(".comment", has_text="buy now").locator("button[value=hide]").click()
    assert "buy now" not in requests.get(site + "/papers/0704.0001").text
    mod.goto(site + "/moderation")
    assert "buy now" in mod.inner_text("#comments + table")  # moderators still see it, marked hidden
    mod.locator("#users + table tr", has_text=READER).locator("button[value=suspend]").click()
    assert "suspended" in mod.locator("#users + table tr", has_text=READER).inner_text()
    assert "hide" in mod.inner_text("#audit + table") and "suspend" in mod.inner_text("#audit + table")
    shot(mod, "moderation")

    reader.goto(site + "/")
    assert reader.locator(f"a:has-text('{READER}')").count() == 0  # the session ended
    log_in(reader, site, READER, "new tulip harbor")
    assert "suspended" in reader.content()

    # Let back in, the reader deletes the account.
    mod.goto(site + "/moderation")
    mod.locator("#users + table tr", has_text=READER).locator("button[value=unsuspend]").click()
    log_in(reader, site, READER, "new tulip harbor")
    reader.goto(site + "/settings/account")
    reader.fill("#delete-password", "new tulip harbor")
    reader.click("#delete")
    assert "Account deleted" in reader.content()
    log_in(reader, site, READER, "new tulip harbor")
    assert "wrong user name or password" in reader.content()
