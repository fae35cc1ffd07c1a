"""Driving Debian's Chromium from a test: a headless browser through chromedriver
(`scripts/ensure-chromium` installs both), with helpers that wait as the house asks."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

WAIT_SECONDS = 120.0
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@contextmanager
def chromium() -> Iterator[WebDriver]:
    driver_path = shutil.which("chromedriver")
    browser_path = shutil.which("chromium")
    assert driver_path, "no chromedriver: run scripts/ensure-chromium"
    assert browser_path, "no chromium: run scripts/ensure-chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def until(what: str, found: Callable[[], object], seconds: float = WAIT_SECONDS) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = found()
        except WebDriverException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {seconds:.0f} s for {what}")


def reload_until(driver: WebDriver, url: str, what: str, css: str) -> WebElement:
    """Open `url` again and again until an element matches `css`; that element."""

    def present() -> WebElement | None:
        driver.get(url)
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    element = until(what, present)
    assert isinstance(element, WebElement)
    return element


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
