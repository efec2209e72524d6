"""A real headless Chromium, in Chinese: the new holder of a recycled number proves it, sees counts,
asks the remaining apps to unbind, and watches the progress."""

from __future__ import annotations

import json
import os

import pytest
from selenium.webdriver.common.by import By

from app.storage.tables import Notice
from tests.browser.conftest import click, fill, wait_for_path, wait_until
from tests.support import last_code
from tests.web.test_recycling import PHONE, auth, recycled  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


async def test_new_holder_checks_the_number_and_asks_for_unbinding(server, browser, client, recycled):  # noqa: F811
    driver = browser
    driver.get(f"{server}/lang/zh?next=/")
    click(driver, "new-holder-start")
    wait_for_path(driver, "/new-holder")
    fill(driver, "phone_number", "138 0013 8000")
    click(driver, "new-holder-send-code")
    wait_for_path(driver, "/new-holder/verify")
    fill(driver, "code", await last_code(PHONE))
    click(driver, "new-holder-verify")
    wait_for_path(driver, "/new-holder/status")
    assert "二次放号" in driver.find_element(By.ID, "recycled-answer").text
    assert driver.find_element(By.ID, "platforms-finished").text == "1"
    assert driver.find_element(By.ID, "platforms-pending").text == "2"
    assert "WeChat" not in driver.page_source and "微信" not in driver.page_source

    click(driver, "request-unbinding")
    wait_until(driver, lambda d: d.find_elements(By.ID, "unbind-progress"))
    assert "2 个应用中已有 0 个完成" in driver.find_element(By.ID, "unbind-progress").text

    # WeChat unbinds, as the RISC event asked
    notice = await Notice.select(Notice.claims).where(
        Notice.stream.platform.name == "WeChat").order_by(Notice.created_at, ascending=False).first()
    case_id = json.loads(notice["claims"])["txn"]
    response = await client.post(f"/v1/cases/{case_id}/outcomes", json={"result": "unbound"},
                                 headers=auth(recycled["platforms"]["WeChat"].api_token))
    assert response.status_code == 201
    driver.refresh()
    assert "2 个应用中已有 1 个完成" in driver.find_element(By.ID, "unbind-progress").text
    driver.save_screenshot(os.path.join(os.environ.get("HEIRLINE_SCREENSHOTS", "/tmp"), "heirline-new-holder.png"))
