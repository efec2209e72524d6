"""A real headless Chromium: an owner invites an heir, the heir accepts and claims, the owner vetoes from
the alert; a second claim is approved by a reviewer and the heir sees exactly their accounts."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from app.services import accounts, legacy
from app.storage.tables import LegacyCase
from tests.browser.conftest import click, fill, wait_for_path, wait_until
from tests.support import PNG, last_code, last_link, messages_to

pytestmark = pytest.mark.browser

OWNER_PHONE, OWNER_E164 = "+1 415 555 2671", "+14155552671"
OWNER_EMAIL, OWNER_PASSWORD = "owner.journey@example.com", "a long walk by the river"
HEIR_EMAIL, HEIR_PASSWORD = "daughter.journey@example.com", "quiet harbor lantern 77"
SECRET = "The photo library goes to my daughter; the shop account is closed."


def log_out(driver) -> None:
    click(driver, "logout")
    wait_for_path(driver, "/")


async def owner_log_in(driver, server) -> None:
    driver.get(f"{server}/login")
    fill(driver, "phone_number", OWNER_PHONE)
    fill(driver, "password", OWNER_PASSWORD)
    click(driver, "login-next")
    wait_for_path(driver, "/login/verify")
    fill(driver, "code", await last_code(OWNER_E164))
    click(driver, "login-submit")
    wait_for_path(driver, "/inventory")


async def account_log_in(driver, server, email: str, password: str, lands_on: str) -> None:
    driver.get(f"{server}/accounts/login")
    fill(driver, "email", email)
    fill(driver, "password", password)
    click(driver, "account-login-next")
    wait_for_path(driver, "/accounts/login/verify")
    fill(driver, "code", await last_code(email))
    click(driver, "account-login-submit")
    wait_for_path(driver, lands_on)


async def test_invite_accept_claim_veto_then_approved_handover(server, browser, tmp_path):
    driver = browser
    driver.get(f"{server}/lang/en?next=/signup")
    fill(driver, "phone_number", OWNER_PHONE)
    click(driver, "send-code")
    wait_for_path(driver, "/signup/verify")
    fill(driver, "code", await last_code(OWNER_E164))
    fill(driver, "password", OWNER_PASSWORD)
    fill(driver, "email", OWNER_EMAIL)
    click(driver, "create-account")
    wait_for_path(driver, "/inventory")

    # the owner invites the heir
    fill(driver, "heir-name", "Mei")
    fill(driver, "heir-email", HEIR_EMAIL)
    fill(driver, "heir-relationship", "daughter")
    click(driver, "add-heir")
    wait_until(driver,  # posted from /inventory back to /inventory: wait for the new page's content
               lambda d: d.find_element(By.CSS_SELECTOR, "li.heir").get_attribute("data-status") == "invited")
    log_out(driver)

    # the heir accepts from the e-mailed link and chooses a password
    driver.get(f"{server}/invitations/{await last_link(HEIR_EMAIL, '/invitations/')}")
    assert "Mei" in driver.find_element(By.ID, "invitation-text").text
    fill(driver, "password", HEIR_PASSWORD)
    click(driver, "accept-invitation")
    wait_for_path(driver, "/heir")
    assert driver.find_element(By.CSS_SELECTOR, ".designation").get_attribute("data-status") == "accepted"
    log_out(driver)

    # the owner confirms her and leaves her one account with instructions, and unbinds another
    await owner_log_in(driver, server)
    click(driver, "confirm-heir-1")
    wait_until(driver,  # the same path: wait for the new page, not the old one
               lambda d: d.find_element(By.CSS_SELECTOR, "li.heir").get_attribute("data-status") == "confirmed")
    for slug, disposition, instructions in (("wechat", "handover", SECRET), ("alipay", "unbind", "")):
        click(driver, "add-binding")
        wait_for_path(driver, "/bindings/new")
        value = driver.find_element(By.CSS_SELECTOR, f'#platform_id option[data-slug="{slug}"]').get_attribute("value")
        Select(driver.find_element(By.ID, "platform_id")).select_by_value(value)
        click(driver, "type-login")
        click(driver, f"disposition-{disposition}")
        if disposition == "handover":
            Select(driver.find_element(By.ID, "heir_id")).select_by_visible_text("Mei")
            fill(driver, "instructions", instructions)
        click(driver, "save-binding")
        wait_for_path(driver, "/inventory")
        wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'tr.binding[data-platform="{slug}"]'))
    log_out(driver)

    # the heir reports the death
    await account_log_in(driver, server, HEIR_EMAIL, HEIR_PASSWORD, "/heir")
    click(driver, "open-claim")
    wait_until(driver, lambda d: "Veto window open" in d.find_element(By.ID, "case-status").text)  # /heir to /heir
    assert SECRET not in driver.page_source
    log_out(driver)

    # the alert is in the outbox (e-mail, not the number); the owner vetoes with one click
    alerts = [m for m in await messages_to(OWNER_EMAIL) if "/veto/" in m["body"]]
    assert len(alerts) == 1 and not [m for m in await messages_to(OWNER_E164) if "/veto/" in m["body"]]
    driver.get(f"{server}/veto/{await last_link(OWNER_EMAIL, '/veto/')}")
    click(driver, "veto-confirm")
    wait_until(driver, lambda d: d.find_elements(By.ID, "veto-done"))
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "vetoed"

    # a second claim, with evidence, is approved after the window
    await account_log_in(driver, server, HEIR_EMAIL, HEIR_PASSWORD, "/heir")
    click(driver, "open-claim")
    wait_until(driver, lambda d: d.find_elements(By.ID, "evidence-file"))  # /heir to /heir: the claim's form
    scan = tmp_path / "certificate.png"
    scan.write_bytes(PNG)
    driver.find_element(By.ID, "evidence-file").send_keys(str(scan))
    click(driver, "upload-evidence")
    wait_until(driver, lambda d: "Death certificate" in d.find_element(By.CSS_SELECTOR, "ul.evidence").text)
    log_out(driver)
    case = await LegacyCase.select(LegacyCase.id, LegacyCase.veto_ends_at).where(
        LegacyCase.status == "challenge").first()
    await legacy.run_timers(case["veto_ends_at"] + dt.timedelta(seconds=1))  # the worker's timer

    _, password = await accounts.add_reviewer("reviewer.journey@heirline.example")
    await account_log_in(driver, server, "reviewer.journey@heirline.example", password, "/review")
    click(driver, f"open-{case['id']}")
    wait_for_path(driver, f"/review/{case['id']}")
    assert SECRET not in driver.page_source
    click(driver, "decision-approve")
    click(driver, "evidence-verified")
    fill(driver, "decision-reason", "certificate checked with the registry office")
    click(driver, "decide")
    wait_until(driver, lambda d: d.find_element(By.ID, "review-status").text == "Approved, in progress")
    log_out(driver)

    await account_log_in(driver, server, HEIR_EMAIL, HEIR_PASSWORD, "/heir")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.handover")
    assert [r.get_attribute("data-platform") for r in rows] == ["wechat"]
    assert rows[0].find_element(By.CSS_SELECTOR, ".instructions").text == SECRET
    click(driver, "done-wechat")
    wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.handover .done"))
    driver.save_screenshot(os.path.join(os.environ.get("HEIRLINE_SCREENSHOTS", "/tmp"), "heirline-handover.png"))
    assert (await LegacyCase.select(LegacyCase.status).where(LegacyCase.id == case["id"]).first())["status"] == "completed"
