"""The report in headless Chromium: every figure draws, no JavaScript error, the tables sort.

Needs a Chromium (Debian package ``chromium``); skipped, with the reason, without one.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import plotly.graph_objects as go
import pytest
from _report_helpers import chromium

_COLLECTOR = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push("error: " + (e.message || String(e)));
});
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + String(e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = document.createElement("pre");
    out.id = "js-errors";
    out.textContent = JSON.stringify(window.__errors);
    document.body.appendChild(out);
    var n = document.createElement("pre");
    n.id = "plots-rendered";
    var plots = Array.prototype.slice.call(document.querySelectorAll(".js-plotly-plot"));
    n.textContent = String(plots.filter(function (d) {
      return d.querySelector(".main-svg") !== null;
    }).length);
    document.body.appendChild(n);
  }, 1000);
});
</script>"""


def _dump_dom(page: Path, profile: Path) -> str:
    browser = chromium()
    assert browser
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
        "--window-size=1300,2000", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _collected(dom: str) -> tuple[list[str], int]:
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', dom, re.S)
    rendered = re.search(r'<pre id="plots-rendered">(\d+)</pre>', dom)
    assert errors and rendered, "the error collector did not run"
    import html as html_mod

    return json.loads(html_mod.unescape(errors.group(1))), int(rendered.group(1))


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_collector_catches_errors(tmp_path: Path) -> None:
    """Negative control: the harness below does see a JavaScript error."""
    page = tmp_path / "bad.html"
    page.write_text(f"<html><head>{_COLLECTOR}</head><body><script>undefinedFunction();"
                    "</script></body></html>")  # fmt: skip
    errors, _ = _collected(_dump_dom(page, tmp_path / "profile"))
    assert errors and "undefinedFunction" in errors[0]


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_report_renders_without_javascript_errors(
    page: str, figures: dict[str, go.Figure], tmp_path: Path
) -> None:
    instrumented = tmp_path / "report.html"
    # after load, sort the front table by accuracy (4th column) by clicking its header twice
    sort_check = """<script>window.addEventListener("load", function () {
      var th = document.querySelector("#front-table thead th:nth-child(4)");
      th.click(); th.click();
      var out = document.createElement("pre");
      out.id = "sorted";
      out.textContent = JSON.stringify(Array.prototype.map.call(
        document.querySelectorAll("#front-table tbody tr td:nth-child(4)"),
        function (td) { return parseFloat(td.getAttribute("data-value")); }));
      document.body.appendChild(out);
    });</script>"""
    text = page.replace("<head>", "<head>" + _COLLECTOR, 1).replace(
        "</body>", sort_check + "</body>"
    )
    instrumented.write_text(text, encoding="utf-8")
    dom = _dump_dom(instrumented, tmp_path / "profile")
    errors, rendered = _collected(dom)
    assert errors == []
    assert rendered == len(figures)  # every figure drew its SVG
    assert dom.count('class="main-svg"') >= len(figures)
    # the front's error bars and the seeds' attainment band were drawn as SVG
    assert dom.count('class="yerror"') > 0
    assert 'class="js-fill"' in dom
    sorted_acc = re.search(r'<pre id="sorted">(.*?)</pre>', dom)
    assert sorted_acc is not None
    values = json.loads(sorted_acc.group(1))
    assert values and values == sorted(values, reverse=True)  # second click: descending
