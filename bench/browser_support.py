"""A real Streamlit server and a real Chromium (Playwright) for what only a browser shows.

Debian's Chromium (/usr/bin/chromium) is used where it exists; set CATSEG_CHROMIUM to
another executable, or leave both unset to fall back to Playwright's own browser.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGUMENTS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_executable() -> str | None:
    return os.environ.get("CATSEG_CHROMIUM") or shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll a starting Streamlit server's health check; False if the process ended or time ran out first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.3)


@contextmanager
def streamlit_server(home: Path, extra_environment: dict[str, str] | None = None) -> Iterator[str]:
    """Start `streamlit run app.py` on a free loopback port with CATSEG_HOME=home; yield its URL."""
    port = free_port()
    environment = {**os.environ, "CATSEG_HOME": str(home), **(extra_environment or {})}
    environment.pop("DATABASE_URL", None)
    log = open(home.parent / f"streamlit-{port}.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPOSITORY_ROOT / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPOSITORY_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_healthy(url, process):
            raise RuntimeError(f"streamlit did not start; see {log.name}")
        yield url
    except BaseException:
        # A failing browser test is usually explained by the server's own log: show its end.
        log.flush()
        tail = Path(log.name).read_bytes()[-6000:].decode("utf-8", "replace")
        print(f"--- end of {log.name} ---\n{tail}", file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium (system Chromium first)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        executable = chromium_executable()
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGUMENTS, headless=True
            ) if executable else playwright.chromium.launch(args=CHROMIUM_ARGUMENTS, headless=True)
        except Exception as error:  # no browser at all on this machine
            pytest.skip(f"no Chromium available: {error}")
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        try:
            yield page
        except BaseException:
            # What the user would have seen when the test gave up (an error, a spinner, nothing).
            try:
                print(f"--- page text ---\n{page.inner_text('body', timeout=5_000)[:4000]}", file=sys.stderr)
            except Exception as error:
                print(f"--- page text unavailable: {error}", file=sys.stderr)
            raise
        finally:
            context.close()
            browser.close()


def wait_for_app(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms,
    )


def open_from_menu(page, title: str, timeout_ms: int = 60_000) -> None:
    """Click the router's sidebar link titled `title` (as a user does), then wait for the page's run.

    Until the router's first run reaches the browser, Streamlit's sidebar lists the files in
    pages/ instead ("try photos"): clicking one of those would run that file without the router.
    """
    page.wait_for_function(
        f"() => {{ const menu = document.querySelector(\"[data-testid='stSidebarNav']\");"
        f" return menu && menu.innerText.includes({title!r}) && !menu.innerText.includes('photo gallery'); }}",
        timeout=timeout_ms,
    )
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=re.compile(rf"^\W*{re.escape(title)}$")).click()
    wait_for_app(page, timeout_ms)


def upload_file(page, path: Path, uploader_label: str, timeout_ms: int = 60_000) -> None:
    """Give `path` to the file uploader labelled `uploader_label` once the page is idle, and
    wait until the uploader lists it (the upload reached the server and the page reran)."""
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text=uploader_label)
    uploader.wait_for(timeout=timeout_ms)
    # Let the page's own run finish first, so the only rerun left is the one the upload causes.
    wait_for_app(page, timeout_ms)
    uploader.locator("input[type=file]").set_input_files(str(path))
    uploader.get_by_text(path.name).wait_for(timeout=timeout_ms)
