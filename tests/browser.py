"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver (no browser
download); screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    # The server's certificate is from the data directory's own CA.
    "--ignore-certificate-errors",
)


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="occ-chromium-")
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def sign_in(driver: webdriver.Chrome, base: str, uin: str, password: str, then: str = "/") -> None:
    """Sign in with the console password form, landing on `then` (a path under /console)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/console{then}")
    assert "/console/login" in driver.current_url
    driver.find_element(By.ID, "uin").send_keys(uin)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 30).until(lambda d: "/console/login" not in d.current_url)
    loaded(driver)
    assert driver.current_url.endswith(f"/console{then}"), driver.current_url


def click_through(driver: webdriver.Chrome, by: str, value: str) -> None:
    """Click a link or submit button and wait until the next page replaced this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    for attempt in range(5):
        try:
            driver.find_element(by, value).click()
            break
        except WebDriverException:  # replaced by a live refresh between find and click
            if attempt == 4:
                raise

    def replaced(_: webdriver.Chrome) -> bool:
        # chromedriver answers a detached node with a stale-element error, or with an
        # inspector error when the whole document went: both mean the page was replaced.
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 60).until(replaced)
    loaded(driver)


def loaded(driver: webdriver.Chrome) -> None:
    """Wait until the current document has loaded (after a navigation a click started)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
