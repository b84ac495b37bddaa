"""The website as a reader meets it: every page in headless Chromium, offline.

Each page of the table of contents (and the index) must load without a
JavaScript error or a request to another server, render all of its math,
have no broken internal link or image, no empty figure and no progress bar
dumped line by line. A screenshot of each page is saved under
``_build/screenshots/``. The site is the one the chapter regression rendered
in this session (``tests/test_chapters.py`` runs first); if it is missing or
older than the sources, it is built here.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run``
installs it) and the ``playwright`` package from requirements.txt; without
Chromium the browser tests are skipped with a message saying so.
"""

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from xentlib.book import _toc_files, build_site, execute_book, find_root

# The site is rendered from the executed chapters: these tests go with the
# chapter regression.
pytestmark = pytest.mark.chapters

ROOT = find_root(__file__)
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
PAGES = [
    *dict.fromkeys(
        _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    ),
    "genindex",
]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def _sources_mtime() -> float:
    paths = [
        *ROOT.glob("*.md"),
        *ROOT.glob("*.yml"),
        ROOT / "references.bib",
        *(ROOT / "chapters").glob("*.ipynb"),
        *(ROOT / "xentlib").glob("*.py"),
    ]
    return max(p.stat().st_mtime for p in paths if p.is_file())


@pytest.fixture(scope="module")
def site() -> Path:
    index = HTML / "index.html"
    if not index.is_file() or index.stat().st_mtime < _sources_mtime():
        runs = execute_book(ROOT)
        failed = [r.stem for r in runs if r.error]
        if failed:
            pytest.fail(
                f"cannot build the site: chapters failed to execute: {failed}"
            )
        build_site(ROOT, runs)
    return HTML


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip(
            "Chromium not found: install Debian's `chromium` package (apt-get"
            " install chromium), or set CHROMIUM to a Chromium binary, to run"
            " the browser tests of the site"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="pip install playwright (in requirements.txt)",
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


def _page_file(page: str) -> Path:
    return HTML / f"{page}.html"


_ids_cache: dict[Path, set[str]] = {}


def _ids(path: Path) -> set[str]:
    if path not in _ids_cache:
        _ids_cache[path] = set(
            re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace"))
        )
    return _ids_cache[path]


# Runs in the page after MathJax has finished: what the checks need.


def _script(name: str) -> str:
    """A function in a .js file beside this one, without its comment lines."""
    lines = (Path(__file__).parent / name).read_text().splitlines()
    return "\n".join(ln for ln in lines if not ln.startswith("//")).strip()


INSPECT = _script("site_inspect.js")

RAW_MARKUP = [
    (re.compile(r"\$[^$\s][^$\n]{0,200}?\$"), "raw $...$ math"),
    (re.compile(r"\\\(|\\\[|\$\$"), "raw math delimiters"),
    (
        re.compile(
            r"\{(glue:text|glue|cite|cite:p|cite:t|dropdown|eval-rst)\}"
        ),
        "unprocessed MyST role or directive",
    ),
]
PROGRESS = re.compile(r"^(.*?):\s*\d+%\|", re.M)


def _is_blank(png: Path) -> bool:
    from PIL import Image

    with Image.open(png) as im:
        gray = im.convert("L")
        low, high = gray.getextrema()
        return (
            high - low < 16
            or len(gray.getcolors(maxcolors=1 << 16) or range(1 << 16)) < 3
        )


@pytest.mark.parametrize("page", PAGES)
def test_page_works_offline_in_a_real_browser(page, site, browser):
    path = _page_file(page)
    assert path.is_file(), f"{page}: the site has no {path.relative_to(ROOT)}"
    problems, external = [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def only_local(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    tab = context.new_page()
    tab.on(
        "pageerror", lambda err: problems.append(f"JavaScript error: {err}")
    )
    tab.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and problems.append(f"console error: {msg.text}")
        ),
    )
    tab.goto(path.as_uri(), wait_until="load")
    tab.wait_for_function(
        "() => !window.MathJax || (window.MathJax.startup &&"
        " window.MathJax.startup.promise)",
        timeout=30_000,
    )
    tab.evaluate(
        "() => window.MathJax ? window.MathJax.startup.promise.then(() =>"
        " true) : true"
    )
    info = tab.evaluate(INSPECT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(
        path=str(SHOTS / f"{page.replace('/', '__')}.png"), full_page=True
    )
    context.close()

    problems += [f"request to another server: {url}" for url in external]
    problems += [f"math not rendered: {t!r}" for t in info["unrendered"]]
    problems += [f"MathJax error: {t!r}" for t in info["mathErrors"]]
    for pattern, what in RAW_MARKUP:
        for m in pattern.finditer(info["text"]):
            problems.append(
                f"{what} in the text:"
                f" {info['text'][max(0, m.start() - 30) : m.end() + 30]!r}"
            )
    for url in info["links"]:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            continue
        target = Path(unquote(parsed.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {url}")
        elif (
            parsed.fragment
            and target.suffix == ".html"
            and unquote(parsed.fragment) not in _ids(target)
        ):
            problems.append(f"link to a missing anchor: {url}")
    for image in info["images"]:
        if not image["ok"]:
            problems.append(f"image does not load: {image['src']}")
        elif "/_images/" in image["src"] and image["src"].endswith(".png"):
            if _is_blank(Path(unquote(urlparse(image["src"]).path))):
                problems.append(f"empty figure: {image['src']}")
    for text in info["outputs"]:
        bars = PROGRESS.findall(text)
        repeated = {b for b in bars if bars.count(b) > 1}
        if repeated:
            problems.append(
                f"progress bar printed state by state: {sorted(repeated)}"
            )
    problems += [
        f"display equation wider than the text column: {t!r}"
        for t in info["wideMath"]
    ]
    problems += [
        f"code or output wider than its box (sideways scroll): {t!r}"
        for t in info["wideCode"]
    ]
    problems += [f"stderr output on the page: {t!r}" for t in info["stderr"]]
    if page == "api":
        unlinked = [
            n["id"]
            for n in info["bookNotes"]
            if not n["linked"] and not n["id"].startswith("xentlib.book.")
        ]
        if unlinked:
            problems.append(
                f"API entries without a link back to a chapter: {unlinked}"
            )
        assert len(info["bookNotes"]) > 50, (
            "the API page documents suspiciously few functions"
        )
    if page.startswith("chapters/"):
        assert info["math"] > 0 or page.endswith(
            "15_cross_entropy_at_scale"
        ), f"{page}: no math at all?"
        assert any("/_images/" in i["src"] for i in info["images"]), (
            f"{page}: a chapter without a figure"
        )
    assert not problems, f"{page}:\n" + "\n".join(problems[:40])


def test_every_chapter_page_offers_colab_binder_and_the_notebook_download(
    site,
):
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    slug = repo["url"].split("github.com/")[1]
    for page in (p for p in PAGES if p.startswith("chapters/")):
        html = _page_file(page).read_text()
        assert (
            f"colab.research.google.com/github/{slug}/blob/{repo['branch']}/{page}.ipynb"
            in html
        ), page
        assert f"mybinder.org/v2/gh/{slug}/{repo['branch']}" in html, page
        assert f"_sources/{page}.ipynb" in html, (
            f"{page}: no download button for the notebook"
        )
        assert (site / "_sources" / f"{page}.ipynb").is_file()


def test_math_is_served_by_the_site_itself(site):
    for page in PAGES:
        html = _page_file(page).read_text()
        for src in re.findall(r'<script[^>]*src="([^"]+)"', html):
            assert "://" not in src, (
                f"{page} loads a script from another server: {src}"
            )
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()


PHONE_OVERFLOW = _script("site_phone_overflow.js")


@pytest.mark.parametrize("page", PAGES)
def test_page_does_not_scroll_sideways_on_a_phone(page, site, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file:")
            else route.abort()
        ),
    )
    tab = context.new_page()
    tab.goto(_page_file(page).as_uri(), wait_until="load")
    tab.evaluate(
        "() => window.MathJax && window.MathJax.startup ?"
        " window.MathJax.startup.promise.then(() => true) : true"
    )
    found = tab.evaluate(PHONE_OVERFLOW)
    context.close()
    assert found["overflow"] == 0, (
        f"{page}: at 390 px the page scrolls sideways by "
        f"{found['overflow']} px; sticking out: {found['culprits']}"
    )


def _executed(stem: str):
    import nbformat

    return nbformat.read(ROOT / "_build" / "executed" / f"{stem}.ipynb", 4)


def _output_text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "") if output["name"] == "stdout" else ""
    data = output.get("data", {})
    if set(data) & {"text/html", "image/png", "image/svg+xml"}:
        return ""  # rendered as HTML or a figure, not as text
    return data.get("text/plain", "")


CHAPTER_STEMS = [Path(p).name for p in PAGES if p.startswith("chapters/")]
COLUMNS = 79


@pytest.mark.parametrize("stem", CHAPTER_STEMS)
def test_executed_chapter_has_no_stray_value_and_no_overlong_line(stem, site):
    problems = []
    for i, cell in enumerate(_executed(stem).cells):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if "remove-output" in tags or "remove-cell" in tags:
            continue
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook"):
                continue  # a glued value: never shown where it is made
            kind = output.get("output_type")
            text = _output_text(output)
            if "remove-input" in tags and (text or kind != "stream"):
                problems.append(
                    f"cell {i}: a bookkeeping cell (remove-input) shows "
                    f"output {(text or kind)[:60]!r}"
                )
            elif kind == "execute_result" and text:
                problems.append(f"cell {i}: stray value {text[:60]!r}")
            for line in text.splitlines():
                if len(line) > COLUMNS:
                    problems.append(
                        f"cell {i}: printed line of {len(line)} characters "
                        f"(at most {COLUMNS}): {line[:60]!r}"
                    )
    assert not problems, f"{stem}:\n" + "\n".join(problems[:40])


def test_contact_sheet_shows_the_first_screen_of_every_page(site, monkeypatch):
    from PIL import Image, ImageDraw

    shots = [SHOTS / f"{page.replace('/', '__')}.png" for page in PAGES]
    if not any(shot.is_file() for shot in shots):
        pytest.skip("no screenshots: the browser tests did not run")
    missing = [shot.name for shot in shots if not shot.is_file()]
    assert not missing, f"pages without a screenshot: {missing}"
    columns, tile, label = 4, (320, 225), 22
    rows = -(-len(shots) // columns)
    sheet = Image.new(
        "RGB", (columns * tile[0], rows * (tile[1] + label)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    # A full-page screenshot of a long chapter is 1280 px wide and over
    # 150,000 px tall, past Pillow's guard against decompression bombs; these
    # are the test's own files, so the guard is lifted for them.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for k, (page, shot) in enumerate(zip(PAGES, shots)):
        with Image.open(shot) as im:
            first_screen = im.convert("RGB").crop((0, 0, 1280, 900))
        x, y = (k % columns) * tile[0], (k // columns) * (tile[1] + label)
        sheet.paste(first_screen.resize(tile), (x, y + label))
        draw.rectangle(
            [x, y + label, x + tile[0] - 1, y + label + tile[1]],
            outline="gray",
        )
        draw.text((x + 4, y + 4), page.removeprefix("chapters/"), fill="black")
    out = SHOTS.parent / "contact_sheet.png"
    sheet.save(out)
    with Image.open(out) as im:
        assert im.size == sheet.size
