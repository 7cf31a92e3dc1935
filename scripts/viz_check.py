"""Load a served Kedro-Viz site in headless Chromium, check the graph, save a screenshot.

Drives Chromium through the DevTools protocol (``websockets`` comes with kedro-viz, through
``uvicorn[standard]``), so the check waits for the real rendered graph instead of guessing a
time budget. It asserts that every expected node is drawn in the pipeline graph as an SVG node
with its name as a visible, non-empty label, prints the layers shown, and writes a PNG.

    python scripts/viz_check.py --url http://127.0.0.1:4141/ \
        --expect clean_table,convert_table --screenshot docs/viz_screenshot.png

Exit status: 0 when every expected node is drawn, 1 otherwise (or on a timeout).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
# No network beyond localhost here: these flags stop Chromium's own calls home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
# Kedro-Viz reads its settings from localStorage["KedroViz"]: no feature tour, raw node names,
# no sidebar or minimap, so the graph fills the screenshot.
VIZ_SETTINGS = {
    "showFeatureHints": False,
    "isPrettyName": False,
    "visible": {"sidebar": False, "miniMap": False},
}
PROBE = """(() => {
  const tasks = [...document.querySelectorAll('svg g.pipeline-node--task')].map(g => {
    const text = g.querySelector('text.pipeline-node__text');
    const box = g.getBBox();
    return {
      name: g.getAttribute('data-node-fullname'),
      label: text ? text.textContent.trim() : '',
      opacity: text ? Number(getComputedStyle(text).opacity) : 0,
      width: box.width, height: box.height,
    };
  });
  const layers = [...document.querySelectorAll('.pipeline-layer-name')].map(e => e.textContent);
  return {tasks, layers};
})()"""


def say(message: str) -> None:
    """One line of progress on stderr."""
    sys.stderr.write(f"viz_check: {message}\n")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict:
        """Send one command and return its result, skipping the events in between."""
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")


def start_chromium(profile: Path, width: int, height: int) -> tuple[subprocess.Popen, str]:
    """Start headless Chromium; return the process and the websocket URL of its first page."""
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Chromium did not start (exit status {process.poll()})")
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
        targets = json.load(response)
    page = next(t for t in targets if t["type"] == "page")
    return process, page["webSocketDebuggerUrl"]


def missing_nodes(state: dict, expected: list[str]) -> list[str]:
    """The expected names that are not drawn as a visible, labelled task node."""
    drawn = {
        t["name"]
        for t in state["tasks"]
        if t["label"] == t["name"] and t["opacity"] > 0.5 and t["width"] > 0 and t["height"] > 0
    }
    return [name for name in expected if name not in drawn]


def load_and_capture(
    page: DevTools,
    url: str,
    expected: list[str],
    screenshot: Path,
    timeout: float,
    width: int,
    height: int,
) -> dict:
    """Open ``url`` with the settings above, wait for the expected nodes, write the PNG."""
    page.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        source=f"localStorage.setItem('KedroViz', {json.dumps(json.dumps(VIZ_SETTINGS))});",
    )
    page.call("Page.enable")
    page.call("Page.navigate", url=url)
    deadline = time.monotonic() + timeout
    state: dict = {"tasks": [], "layers": []}
    while time.monotonic() < deadline:
        state = page.evaluate(PROBE) or state
        if state["tasks"] and not missing_nodes(state, expected):
            break
        time.sleep(0.5)
    time.sleep(2)  # let the graph's fade-in and zoom-to-fit transitions finish
    state = page.evaluate(PROBE) or state
    shot = page.call("Page.captureScreenshot", format="png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return state


def check(url: str, expected: list[str], screenshot: Path, timeout: float, size: str) -> int:
    """Load ``url``, wait until every expected node is drawn, save the screenshot."""
    width, height = (int(v) for v in size.split("x"))
    profile = Path(tempfile.mkdtemp(prefix="viz_check_chromium_"))
    process, ws_url = start_chromium(profile, width, height)
    try:
        with connect(ws_url, max_size=None, open_timeout=30) as ws:
            state = load_and_capture(
                DevTools(ws), url, expected, screenshot, timeout, width, height
            )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(profile, ignore_errors=True)

    say(f"task nodes drawn: {', '.join(sorted(t['name'] for t in state['tasks']))}")
    say(f"layers shown: {', '.join(state['layers']) or '(none)'}")
    say(f"screenshot: {screenshot}")
    missing = missing_nodes(state, expected)
    if missing:
        say(f"FAIL: not drawn in the pipeline graph: {', '.join(missing)}")
        return 1
    say(f"OK: all {len(expected)} expected nodes drawn")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the served Kedro-Viz site")
    parser.add_argument("--expect", required=True, help="comma-separated node names")
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG to write")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the graph")
    parser.add_argument("--size", default="1400x1600", help="viewport, WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    expected = [name for name in args.expect.split(",") if name]
    return check(args.url, expected, args.screenshot, args.timeout, args.size)


if __name__ == "__main__":
    sys.exit(main())
