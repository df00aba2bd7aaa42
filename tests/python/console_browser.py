"""Headless Chromium for the console: Debian's `chromium` driven through its `chromedriver` by
Selenium, offline (no driver download). Used by test_console.py,
test_console_traces.py and console_screenshot.py."""

import os
import shutil
import urllib.request
from urllib.parse import urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find(names, env):
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_available() -> bool:
    return bool(find(CHROMIUM_NAMES, "CHROMIUM_BIN") and find(("chromedriver",), "CHROMEDRIVER_BIN"))


def start_browser(width: int = 1440, height: int = 900) -> webdriver.Chrome:
    # Never let Selenium Manager reach for the network: both paths are given.
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = find(CHROMIUM_NAMES, "CHROMIUM_BIN")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find(("chromedriver",), "CHROMEDRIVER_BIN"))
    return webdriver.Chrome(options=options, service=service)


def post_chat(base: str, config: str, timeout: float = 30) -> int:
    req = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
        headers={"content-type": "application/json", "x-switchyard-config": config},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()
        return r.status


def foreign_requests(driver, origin_url: str) -> list:
    """Every resource the page loaded (itself included) from anywhere but `origin_url`."""
    origin = urlparse(origin_url)
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat(performance.getEntriesByType('navigation').map(e => e.name))"
    )
    assert names, "the page loaded its files"
    return [n for n in names if (urlparse(n).scheme, urlparse(n).netloc) != (origin.scheme, origin.netloc)]


def page_errors(driver) -> list:
    """The browser log's errors (reading the log empties it)."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
