"""Screenshot a report's first screen the way a reader meets it: report.html in headless Chromium at 1400x900.

    python examples/report_screenshot.py artifacts/report.html first-screen.png

Needs a Chromium binary (Debian: ``apt-get install chromium``); exportkit itself does not. The report is opened
from disk with no network: its plots are embedded and it loads nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(html: Path, png: Path, size: tuple[int, int] = (1400, 900)) -> None:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        sys.exit(f"error: no Chromium found (looked for {', '.join(BROWSERS)}); apt-get install chromium")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size[0]},{size[1]}", f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
