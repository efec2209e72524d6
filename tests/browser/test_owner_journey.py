"""A real headless Chromium drives sign-up, two bindings, log-out and log-in, in both languages."""

from __future__ import annotations

import os

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import click, fill, wait_for_path, wait_until
from tests.support import last_code

pytestmark = pytest.mark.browser


def add_binding(driver, slug: str, types: list[str], disposition: str, hint: str) -> None:
    click(driver, "add-binding")
    wait_for_path(driver, "/bindings/new")
    select = Select(driver.find_element(By.ID, "platform_id"))
    value = driver.find_element(By.CSS_SELECTOR, f'#platform_id option[data-slug="{slug}"]').get_attribute("value")
    select.select_by_value(value)
    for t in types:
        click(driver, f"type-{t}")
    click(driver, f"disposition-{disposition}")
    fill(driver, "account_hint", hint)
    click(driver, "save-binding")
    wait_for_path(driver, "/inventory")


JOURNEYS = {
    "zh": {"phone": "138 0013 8000", "e164": "+8613800138000", "title": "我的账户清单",
           "dispositions": ("解绑", "设为纪念账户"), "signup": "注册"},
    "en": {"phone": "+1 415 555 2671", "e164": "+14155552671", "title": "My inventory",
           "dispositions": ("Unbind", "Memorialize"), "signup": "Sign up"},
}


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_sign_up_two_bindings_log_out_and_in(server, browser, lang):
    journey = JOURNEYS[lang]
    password = "a long walk by the river"

    browser.get(f"{server}/lang/{lang}?next=/signup")
    assert journey["signup"] in browser.find_element(By.TAG_NAME, "h1").text
    fill(browser, "phone_number", journey["phone"])
    click(browser, "send-code")
    wait_for_path(browser, "/signup/verify")
    fill(browser, "code", await last_code(journey["e164"]))
    fill(browser, "password", password)
    fill(browser, "email", f"{lang}.owner@example.com")
    click(browser, "create-account")
    wait_for_path(browser, "/inventory")
    assert browser.find_element(By.TAG_NAME, "h1").text == journey["title"]

    add_binding(browser, "wechat", ["login", "payment"], "unbind", "wxid_journey")
    add_binding(browser, "weibo", ["login"], "memorialize", "@journey")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.binding")
    assert [r.get_attribute("data-platform") for r in rows] == ["wechat", "weibo"]
    shown = [r.find_element(By.CSS_SELECTOR, ".disposition").text for r in rows]
    assert shown == list(journey["dispositions"])

    click(browser, "logout")
    wait_for_path(browser, "/")
    browser.get(f"{server}/inventory")
    wait_for_path(browser, "/login")

    fill(browser, "phone_number", journey["phone"])
    fill(browser, "password", password)
    click(browser, "login-next")
    wait_for_path(browser, "/login/verify")
    fill(browser, "code", await last_code(journey["e164"]))
    click(browser, "login-submit")
    wait_for_path(browser, "/inventory")
    wait_until(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "tr.binding")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.binding")) == 2
    assert browser.find_element(By.TAG_NAME, "h1").text == journey["title"]
    browser.save_screenshot(os.path.join(os.environ.get("HEIRLINE_SCREENSHOTS", "/tmp"), f"heirline-inventory-{lang}.png"))
