"""The API's interactive docs in Chromium: Swagger UI from local files, under the app's CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_api_docs_page_lists_the_operations(page, desk, artifacts):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto("/api/v1/docs")
    expect(page.get_by_text("/api/v1/customers/{customer_id}", exact=True).first).to_be_visible()
    expect(page.get_by_text("/api/v1/computers/register", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    page.screenshot(path=artifacts / "api-docs.png", full_page=False)
    assert not [p for p in problems if "Content Security Policy" in p], problems
