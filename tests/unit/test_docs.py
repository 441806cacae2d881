"""The documentation: the site builds with --strict (a broken link or anchor fails), the README
stays the short version, and what it and the site's navigation point at exists.

The site's generated reference (docs/hooks.py) lists every sub-command of the `chaos` parser
and every option of the pytest plugin: checked here in the built pages, so a new sub-command
or option cannot be left out."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = DOCS / "mkdocs.yml"
README_MAX_LINES = 250
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    import importlib.util
    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"the docs toolchain is missing ({', '.join(missing)}): fixtures/setup.sh "
                    "installs the docs extra, or run .venv/bin/pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG),
                        "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    return out


def _hooks():
    """docs/hooks.py, the mkdocs hook that generates the reference sections."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _nav_pages(nav) -> list[str]:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def _text(html: Path) -> str:
    """A built page's text, tags and entities aside (enough to find a word in it)."""
    import html as h
    return h.unescape(re.sub(r"<[^>]+>", "", html.read_text(encoding="utf-8")))


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert (site / "reference" / "cli" / "index.html").is_file()


def test_the_cli_reference_lists_every_sub_command(site):
    hooks = _hooks()
    progs = [prog for prog, _ in hooks.commands()]
    assert {"chaos stack up", "chaos probe", "chaos readiness", "chaos gameday"} <= set(progs)
    page = _text(site / "reference" / "cli" / "index.html")
    missing = [p for p in progs if f"usage: {p}" not in page]
    assert not missing, f"the CLI reference lacks the help of {missing}"


def test_the_plugin_reference_lists_every_option_with_its_twins(site):
    from chaos.pytest_plugin import OPTIONS
    page = _text(site / "reference" / "pytest-plugin" / "index.html")
    for o in OPTIONS:
        for word in (o.flag, o.env, o.ini):
            assert word in page, f"{word} is not in the pytest plugin's reference"
    assert "chaos_runbooks" in page and "chaos_xdist_grouped" in page


def test_every_generated_section_is_on_a_page():
    hooks = _hooks()
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "pages").rglob("*.md"))
    used = set(hooks.MARK.findall(text))
    assert used == set(hooks.GENERATORS), (f"generated sections on no page: "
                                           f"{sorted(set(hooks.GENERATORS) - used)}; unknown: "
                                           f"{sorted(used - set(hooks.GENERATORS))}")


def test_the_exit_codes_page_is_the_contract(site):
    from chaos.core.exits import Exit
    page = _text(site / "reference" / "exit-codes" / "index.html")
    for code in Exit:
        assert code.name in page, f"exit code {code.value} ({code.name}) is not on the page"


def test_the_api_page_documents_the_public_api_from_its_docstrings(site):
    import inspect

    import chaos
    from chaos.experiment import Experiment
    html = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("chaos.run", "chaos.experiment.Experiment", "chaos.experiment.fault",
                 "chaos.core.slo.objective", "chaos.core.slo.Objective", "chaos.core.model.Verdict",
                 "chaos.adapters.base.Adapter", "chaos.runner.RunResult"):
        assert f'id="{name}"' in html, f"the API page has no entry for {name}"
    page = _text(site / "reference" / "api" / "index.html")
    missing = [n for n in chaos.__all__ if n not in page]
    assert not missing, f"public names of chaos/__init__.py not on the API page: {missing}"
    first = inspect.getdoc(Experiment).split("\n")[0].replace("``", "")    # as rendered
    assert first in page, "the API page does not show Experiment's docstring"


def test_installing_alone_says_what_the_code_and_the_set_up_script_do():
    """The page's toxiproxy is the version fixtures/setup.sh builds, and the message it
    quotes is the one a reference-stack command gives without the reference stack."""
    from chaos.adapters.space.reference import NOT_INSTALLED
    page = (DOCS / "pages" / "getting-started" / "your-stack.md").read_text(encoding="utf-8")
    setup = (ROOT / "fixtures" / "setup.sh").read_text(encoding="utf-8")
    version = re.search(r"^TOXIPROXY_VERSION=(\S+)$", setup, re.M).group(1)
    assert f"go install github.com/Shopify/toxiproxy/v2/cmd/server@{version}" in page
    assert "cmd/server@$TOXIPROXY_VERSION" in setup, "setup.sh builds toxiproxy another way"
    assert " ".join(NOT_INSTALLED.split()) in " ".join(page.split()), \
        "your-stack.md quotes another message than chaos.adapters.space.reference.NOT_INSTALLED"


def test_every_nav_page_exists():
    config = yaml.safe_load(CONFIG.read_text())
    pages = DOCS / config["docs_dir"]
    listed = _nav_pages(config["nav"])
    assert listed, "the site has no navigation"
    missing = [p for p in listed if not (pages / p).is_file()]
    assert not missing, f"docs/mkdocs.yml's nav names pages that do not exist: {missing}"
    unlisted = sorted(str(p.relative_to(pages)) for p in pages.rglob("*.md")
                      if str(p.relative_to(pages)) not in listed)
    assert not unlisted, f"pages not in docs/mkdocs.yml's nav (unreachable): {unlisted}"


def test_the_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, (f"README.md has {len(lines)} lines (limit "
                                           f"{README_MAX_LINES}): move the detail to docs/pages/")
    first_block = lines[lines.index("```sh") + 1:]
    first_block = first_block[:first_block.index("```")]
    assert "fixtures/setup.sh && .venv/bin/pytest -n 2 experiments/" in first_block
    assert "fixtures/setup.sh && .venv/bin/pytest -n 2" in first_block


def test_every_relative_link_in_the_readme_exists():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [u for u in LINK.findall(text) if not re.match(r"[a-z]+:", u) and not u.startswith("#")]
    assert links, "the README links to no page of the docs"
    missing = [u for u in links if not (ROOT / u.split("#")[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_licence_is_there_and_packaged():
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "the project's authors" in licence
    assert 'license = {file = "LICENSE"}' in (ROOT / "pyproject.toml").read_text()
