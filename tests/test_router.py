"""The router in app.py: every page file is routed, and every page's link works on a fresh server.

Streamlit keeps its legacy `pages/` folder mode until some session has run `st.navigation`.
Until then a URL that matches a page *file's* name (e.g. /train for pages/train.py) runs
that file on its own: no shared setup, wrong menu. So no file name may equal a route.
(A first request for a route still gets Streamlit's one-time "Page not found" notice from
that legacy mode before the router opens the right page; Streamlit has no switch for it.)
"""

import ast
from pathlib import Path

import pytest
from streamlit.source_util import page_icon_and_name

from browser_support import chromium_page, streamlit_server, wait_for_app
from conftest import REPOSITORY_ROOT


def routed_pages() -> list[dict]:
    """The st.Page(...) calls of app.py: file, title and url_path (None where inferred)."""
    pages = []
    for node in ast.walk(ast.parse((REPOSITORY_ROOT / "app.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page":
            keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
            pages.append({"file": ast.literal_eval(node.args[0]), "title": keywords["title"],
                          "url_path": keywords.get("url_path"), "default": keywords.get("default", False)})
    return pages


def test_every_page_file_is_routed_and_no_file_name_shadows_a_route():
    pages = routed_pages()
    page_files = sorted(path.relative_to(REPOSITORY_ROOT).as_posix() for path in (REPOSITORY_ROOT / "pages").glob("*.py"))
    assert sorted(page["file"] for page in pages) == page_files
    routes = {page["url_path"] for page in pages if page["url_path"]}
    legacy_names = {page_icon_and_name(Path(file))[1] for file in page_files}  # Streamlit's own naming
    assert not routes & legacy_names, f"rename these page files: {routes & legacy_names}"


@pytest.mark.browser
@pytest.mark.parametrize("page", [page for page in routed_pages() if not page["default"]], ids=lambda page: page["url_path"])
def test_a_link_to_a_page_works_as_the_first_request_of_a_fresh_server(tmp_path, page):
    home = tmp_path / "home"
    home.mkdir()
    with streamlit_server(home) as url, chromium_page() as browser_page:
        browser_page.goto(f"{url}/{page['url_path']}")
        wait_for_app(browser_page)
        browser_page.locator("h1").first.wait_for(timeout=30_000)
        assert browser_page.locator("h1").first.inner_text().strip() == page["title"]
        menu = browser_page.locator("[data-testid='stSidebarNav']").inner_text()
        assert all(other["title"] in menu for other in routed_pages()), menu  # the router's menu, not the folder's
