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
