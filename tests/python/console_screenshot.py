"""Takes docs/console.png: `switchyard demo` (its fixed ports 8080, 9090, 9901, 9902 must be
free), the console open in headless Chromium, then the demo's gray failure — the primary answers
after 45 s, each request costs one 1 s timeout before the secondary answers, and after five the
circuit opens. Not a test (pytest does not collect it); run it by hand:

    SWITCHYARD_BIN=target/debug/switchyard .venv/bin/python tests/python/console_screenshot.py
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from conftest import BINARY, ROOT, wait_http  # noqa: E402
from console_browser import start_browser  # noqa: E402

GATEWAY, ADMIN, PRIMARY = "http://127.0.0.1:8080", "http://127.0.0.1:9090", "http://127.0.0.1:9901"


def chat(stream: bool = False) -> None:
    body = {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    req = urllib.request.Request(
        f"{GATEWAY}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer vk-primary"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def fault(spec: str) -> None:
    req = urllib.request.Request(f"{PRIMARY}/_mock/fault", data=spec.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


def main() -> None:
    out = Path(os.environ.get("SWITCHYARD_CONSOLE_PNG", ROOT / "docs" / "console.png"))
    demo = subprocess.Popen([str(BINARY), "demo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        wait_http(f"{ADMIN}/readyz")
        browser = start_browser(1500, 1000)
        browser.get(f"{ADMIN}/")
        WebDriverWait(browser, 20).until(
            lambda d: d.find_element(By.ID, "conn").get_attribute("data-state") == "live"
        )
        for i in range(12):
            chat(stream=i % 3 == 0)
            time.sleep(0.3)
        fault("headers_delay_ms=45000")
        for i in range(14):
            chat(stream=i % 4 == 0)
            time.sleep(0.3)
        time.sleep(2.5)
        rows = browser.find_elements(By.CSS_SELECTOR, '#requests-body tr[data-outcome="fallback_ok"]')
        # The last request that waited out the primary's timeout: its timeline shows both attempts.
        slow = [r for r in rows if "timeout" in r.text]
        (slow or rows)[0].click()
        time.sleep(1.2)
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(out))
        print(f"wrote {out}")
    finally:
        try:
            fault("")
        except OSError:
            pass
        if browser is not None:
            browser.quit()
        demo.terminate()
        demo.wait(timeout=15)


if __name__ == "__main__":
    main()
