"""report.html in a real browser: headless Chromium, no network, one screenshot.

The report must draw (not a blank page) and shade the fault windows where a person would see
them: the shading colour, blended over white, has to be on the screen. Needs no stack; needs
chromium (fixtures/setup.sh installs it; CI runs that first, so a missing browser fails).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from chaos import report
from chaos.report import charts
from tests.unit.test_report import canary_journal

pytestmark = [pytest.mark.local, pytest.mark.timeout(120)]

WIDTH, HEIGHT = 1280, 2400


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: run fixtures/setup.sh (it installs the Debian package "
                "`chromium`), then run this test again")


def _shade_over_white() -> tuple[int, ...]:
    """The fault window's colour as a browser composites it over the white plot area."""
    rgb = [int(charts.FAULT_FILL[i:i + 2], 16) for i in (1, 3, 5)]
    return tuple(round(255 - charts.FAULT_OPACITY * (255 - c)) for c in rgb)


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory):
    from PIL import Image

    tmp = tmp_path_factory.mktemp("report-browser")
    journal = canary_journal()
    html = report.render(journal, tmp / "run")["html"]
    png = tmp / "report.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--hide-scrollbars", "--proxy-server=127.0.0.1:9",
           f"--user-data-dir={tmp / 'profile'}", f"--window-size={WIDTH},{HEIGHT}",
           f"--screenshot={png}", html.resolve().as_uri()]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"chromium did not finish the screenshot within 60 s: {(e.stderr or '')[-2000:]}")
    assert png.exists() and png.stat().st_size > 0, (
        f"chromium exited {done.returncode} without a screenshot:\n{done.stderr[-2000:]}")
    with Image.open(png) as im:
        rgb = im.convert("RGB")
    data = rgb.tobytes()
    return journal, rgb.size, list(zip(data[0::3], data[1::3], data[2::3]))


def test_screenshot_is_a_drawn_page_not_a_blank_one(screenshot):
    _, size, pixels = screenshot
    assert size == (WIDTH, HEIGHT)
    non_white = sum(1 for p in pixels if min(p) < 245)
    distinct = len(set(pixels))
    assert distinct >= 200, f"only {distinct} distinct colours: the page did not draw"
    assert non_white / len(pixels) >= 0.05, f"only {non_white / len(pixels):.1%} of pixels are not white"
    # the verdict badge (#c62828, failed) is on screen
    assert sum(1 for p in pixels if abs(p[0] - 0xc6) < 8 and abs(p[1] - 0x28) < 8 and abs(p[2] - 0x28) < 8) > 300


def test_fault_windows_are_shaded_where_one_can_see_them(screenshot):
    journal, _, pixels = screenshot
    shade = _shade_over_white()
    shaded = [i for i, p in enumerate(pixels) if all(abs(a - b) <= 6 for a, b in zip(p, shade))]
    # each chart's window spans 15 s of a 41 s axis: ~250 x 200 px; every chart of the canary has one
    per_chart = len(shaded) / len(journal["series"])
    assert per_chart > 20_000, f"{len(shaded)} pixels of the fault shade {shade}: the windows are not drawn"
    per_column: dict[int, int] = {}
    for i in shaded:
        per_column[i % WIDTH] = per_column.get(i % WIDTH, 0) + 1
    columns = [x for x, n in per_column.items() if n > 150]  # the window, not the legend's small swatch
    span = max(columns) - min(columns)
    assert 150 < span < 400, f"the shaded windows span {span} px across, expected about a third of a chart"


MEASURE = """<script>
(function () {
  function box(el) { var r = el.getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, text: el.textContent}; }
  var charts = Array.prototype.slice.call(document.querySelectorAll('svg.sli-chart'));
  var where = document.querySelector('div.where');
  var out = {first_chart_top: charts.length ? charts[0].getBoundingClientRect().top : null,
             where_bottom: where ? where.getBoundingClientRect().bottom : null,
             charts: charts.map(function (svg) {
               return Array.prototype.slice.call(svg.querySelectorAll('text')).map(box); })};
  var pre = document.createElement('pre'); pre.id = 'measured';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


def _crowded_journal() -> dict:
    """The canary with what made labels collide: breaches 2 s apart, three faults starting
    within a second of each other, a halt beside a breach, one breach at the right edge."""
    j = canary_journal()
    jt = ("s", "<=", "p95", "p95 <= 2 s")
    from tests.unit.test_report import _slo
    j["slos"] += [_slo("join_time", "recovery", "failed", 3.0, 2.0, *jt, first_breach_s=15.0),
                  _slo("join_time", "after", "failed", 3.0, 2.0, *jt, first_breach_s=40.5),
                  _slo("audio_delivered", "recovery", "failed", 0.5, 0.995, "", ">=", "mean",
                       "mean >= 0.995", first_breach_s=12.0)]
    base = j["faults"][0]
    j["faults"] = [base] + [{**base, "id": f"latency-{i}", "name": "latency", "label": f"latency_{i}(edge-b)",
                             "started_s": 8.4 + 0.3 * i, "ended_s": 20.0} for i in range(2)]
    j["halt"] = {"sli": "join_time", "objective": "p95 <= 2 s", "value": 5.0, "at_s": 14.0,
                 "onset_s": 8.0, "detected_after_s": 5.0, "halted_after_s": 1.0}
    return j


def _measured(tmp_path, journal, width=1280, height=900) -> dict:
    import json
    html = report.render(journal, tmp_path / "run")["html"]
    page = tmp_path / "measure.html"
    page.write_text(html.read_text().replace("</body>", MEASURE + "</body>"))
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--proxy-server=127.0.0.1:9", f"--user-data-dir={tmp_path / 'profile'}",
           f"--window-size={width},{height}", "--dump-dom", page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    start = done.stdout.find('<pre id="measured">')
    assert start >= 0, f"chromium exited {done.returncode} without the page's measures:\n{done.stderr[-2000:]}"
    from html import unescape
    text = done.stdout[start + len('<pre id="measured">'):done.stdout.index("</pre>", start)]
    return json.loads(unescape(text))


def test_the_first_chart_is_on_the_first_screen_below_where_it_broke(tmp_path):
    m = _measured(tmp_path, canary_journal())
    assert m["first_chart_top"] is not None and m["where_bottom"] is not None
    assert m["where_bottom"] < m["first_chart_top"] < 900 - 150, m   # most of a chart shows on a 900 px screen


def test_no_two_labels_of_a_chart_overlap_in_the_browser(tmp_path):
    m = _measured(tmp_path, _crowded_journal())
    assert len(m["charts"]) == 3
    for texts in m["charts"]:
        assert any(t["text"].startswith("breach") for t in texts) or not texts[0]["text"].startswith("join")
        for i, a in enumerate(texts):
            for b in texts[i + 1:]:
                overlap_x = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
                overlap_y = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
                # the rotated axis title and the tick labels share no space with the labels
                assert not (overlap_x > 0.5 and overlap_y > 0.5), f"{a['text']!r} overlaps {b['text']!r}"
