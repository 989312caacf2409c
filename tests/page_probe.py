"""Open a page in a fresh interpreter (AppTest) and report its render time and what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPOSITORY_ROOT / "app.py")


def probe_page(home: Path, page: str, then: str = "") -> dict:
    """{"seconds", "exception", "tensorflow", "buttons", "images"} for one run of `page` with CATSEG_HOME=home.

    `then`: Python run after the page opened, with the AppTest as `app` (a click, a choice), before
    the report ("images": how many pictures the page then shows).
    """
    script = textwrap.dedent(f"""
        import json, sys, time
        from streamlit.testing.v1 import AppTest
        app = AppTest.from_file({APP!r}, default_timeout=60)
        app.run()
        app.switch_page({page!r})
        start = time.perf_counter()
        app.run()
        seconds = time.perf_counter() - start
    """) + textwrap.dedent(then) + textwrap.dedent("""
        print(json.dumps({"seconds": seconds, "exception": [str(e.value) for e in app.exception],
                          "tensorflow": "tensorflow" in sys.modules or "keras" in sys.modules,
                          "buttons": [b.key for b in app.button], "images": len(app.image)}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=REPOSITORY_ROOT, env={**os.environ, "CATSEG_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
