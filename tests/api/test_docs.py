"""``/docs`` and ``/redoc`` work on a network without internet: every file they load comes from the API."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from tests.api.conftest import Api

ABSOLUTE_URL = re.compile(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")


class _References(HTMLParser):
    """The URLs a page loads: scripts, style sheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_documentation_loads_nothing_from_outside(api: Api, page: str) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        response = await http.get(page)
        assert response.status_code == 200
        html = response.text
        assert not ABSOLUTE_URL.search(html), ABSOLUTE_URL.findall(html)  # no CDN, no fonts, no validator
        if page == "/docs":
            assert '"validatorUrl": null' in html  # Swagger UI would ask validator.swagger.io about the schema
        references = _References()
        references.feed(html)
        scripts = [url for url in references.urls if url.endswith(".js")]
        assert scripts and any(url.endswith(".css") or url.endswith(".png") for url in references.urls)
        for url in references.urls:
            assert url.startswith("/"), url  # served by the API itself
            asset = await http.get(url)
            assert asset.status_code == 200 and asset.content, url
            if url.endswith(".css"):
                assert "@import" not in asset.text
                for target in CSS_URL.findall(asset.text):
                    assert target.startswith("data:") or not ABSOLUTE_URL.match(target), target
        schema = await http.get("/openapi.json")  # what the page then reads
        assert schema.status_code == 200 and schema.json()["info"]["title"] == "secmon API"
