"""/api/docs/ renders in a real browser from our own static files: not one request leaves the server."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_offline_from_our_own_static_files(page, live_server):
    server = urlsplit(live_server.url).netloc
    requested: list[str] = []
    elsewhere: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        requested.append(url)
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != server:
            elsewhere.append(url)
            request_route.abort()
        else:
            request_route.continue_()

    page.route("**/*", route)

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock-tag-section")

    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Personal Carbon Account API")
    assert page.locator(".swagger-ui .opblock").count() > 50
    assert elsewhere == []
    bundle = f"{live_server.url}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert bundle in requested
    assert f"{live_server.url}/api/schema/" in requested
