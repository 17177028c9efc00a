import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_openapi_schema_builds_without_warnings(tmp_path, capsys):
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_swagger_ui_loads_its_files_from_our_own_static_files(client):
    page = client.get("/api/docs/").content.decode()

    static = "/static/drf_spectacular_sidecar/swagger-ui-dist"
    assert f'<script src="{static}/swagger-ui-bundle.js">' in page
    assert f'<link rel="stylesheet" href="{static}/swagger-ui.css">' in page
    assert "cdn." not in page
    assert "unpkg" not in page


def test_the_schema_describes_the_statement_routes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]

    ours = ("/api/v1/me/statements", "/api/v1/statements/", "/.well-known/")
    assert {path: sorted(paths[path]) for path in paths if path.startswith(ours)} == {
        "/.well-known/jwks.json": ["get"],
        "/api/v1/me/statements": ["get"],
        "/api/v1/me/statements/imports": ["get", "post"],
        "/api/v1/me/statements/nonces": ["post"],
        "/api/v1/statements/verify": ["post"],
    }
    issue = paths["/api/v1/me/statements"]["get"]
    assert [(parameter["name"], parameter.get("required", False)) for parameter in issue["parameters"]] == [
        ("audience", True),
        ("nonce", False),
        ("period", True),
    ]
