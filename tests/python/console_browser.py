"""Headless Chromium for the console: Debian's `chromium` driven through its `chromedriver` by
Selenium, offline (no driver download). Used by test_console.py and console_screenshot.py."""

import os
import shutil
import urllib.request

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
