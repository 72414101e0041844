"""Open a search's ``report.html`` in headless Chromium with the network cut (a fresh network
namespace: no request can leave the machine) and save a screenshot, to see that the page renders
from the file alone.

    python benchmarks/report_screenshot.py OUT_DIR [--png benchmarks/results/report.png]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--png", default=str(ROOT / "benchmarks/results/report.png"))
    args = p.parse_args()
    page = Path(args.out_dir).resolve() / "report.html"
    html = page.read_text(encoding="utf-8")
    fetched = [u for u in re.findall(r"""(?:src|href|url)\s*[=(]\s*['"]?([^'")\s>]+)""", html)]
    print(f"{page}: {len(html):,} bytes; resources it would fetch: {fetched or 'none'}")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    done = subprocess.run(["unshare", "--net", browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={args.png}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    print(f"chromium exit {done.returncode}; screenshot {args.png} ({Path(args.png).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
