import io
import os
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.accounts.factories import DistrictFactory

pytestmark = pytest.mark.django_db


def image_file(*, size=(640, 480), image_format="JPEG", exif: bytes | None = None, name="me.jpg"):
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (30, 160, 90))
    options = {"exif": exif} if exif else {}
    image.save(buffer, format=image_format, **options)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{image_format.lower()}")


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A PNG whose header claims 3.6 gigapixels, with a tiny body: past Pillow's own refusal limit."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 8, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 15.0, 0.0)}  # GPS
    return exif.tobytes()


def test_profile_update_of_nickname_district_and_visibility(person, person_client):
    district = DistrictFactory(code="kecheng")

    response = person_client.patch(
        "/api/v1/me",
        {"nickname": "绿色出行", "district": "kecheng", "shows_on_leaderboards": False},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["nickname"] == "绿色出行"
    assert response.json()["district"] == "kecheng"
    person.refresh_from_db()
    assert person.district == district
    assert person.shows_on_leaderboards is False


def test_an_unknown_district_is_refused(person, person_client):
    before = person.district_id

    response = person_client.patch("/api/v1/me", {"district": "atlantis"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "district_unknown"
    person.refresh_from_db()
    assert person.district_id == before


def test_the_avatar_becomes_a_square_jpeg_without_exif(person, person_client):
    response = person_client.put(
        "/api/v1/me/avatar", {"avatar": image_file(exif=exif_with_gps())}, format="multipart"
    )

    assert response.status_code == 200, response.content
    person.refresh_from_db()
    with Image.open(person.avatar.path) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (256, 256)
        assert dict(stored.getexif()) == {}
    with open(person.avatar.path, "rb") as stored_file:
        assert b"SecretCameraMaker" not in stored_file.read()
    assert response.json()["avatar_url"].endswith(person.avatar.name.split("/")[-1])


def test_a_new_avatar_removes_the_old_file(person, person_client, django_capture_on_commit_callbacks):
    person_client.put("/api/v1/me/avatar", {"avatar": image_file()}, format="multipart")
    person.refresh_from_db()
    old_path = person.avatar.path

    with django_capture_on_commit_callbacks(execute=True):
        person_client.put(
            "/api/v1/me/avatar", {"avatar": image_file(image_format="PNG", name="a.png")}, format="multipart"
        )

    person.refresh_from_db()
    assert person.avatar.path != old_path
    assert not os.path.exists(old_path)


def test_something_that_is_not_an_image_is_refused(person, person_client):
    fake = SimpleUploadedFile("me.jpg", b"\xff\xd8\xff\xe0 definitely not a jpeg", content_type="image/jpeg")

    response = person_client.put("/api/v1/me/avatar", {"avatar": fake}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "avatar_invalid"
    person.refresh_from_db()
    assert not person.avatar


def test_a_decompression_bomb_is_refused_before_decoding(person, person_client, settings):
    settings.ACCOUNTS_AVATAR_MAX_PIXELS = 1000 * 1000
    bomb = image_file(size=(3000, 3000), image_format="PNG", name="bomb.png")  # tiny file, 9 Mpx

    response = person_client.put("/api/v1/me/avatar", {"avatar": bomb}, format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "avatar_too_large"
    assert response.json()["error"]["fields"] == {"max_pixels": 1000 * 1000}


def test_a_picture_past_pillows_own_bomb_limit_is_too_large_not_invalid(person, person_client, settings):
    bomb = SimpleUploadedFile("bomb.png", png_bomb(), content_type="image/png")

    response = person_client.put("/api/v1/me/avatar", {"avatar": bomb}, format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "avatar_too_large"
    assert response.json()["error"]["fields"] == {"max_pixels": settings.ACCOUNTS_AVATAR_MAX_PIXELS}
    person.refresh_from_db()
    assert not person.avatar


def test_an_oversized_upload_is_refused(person, person_client, settings):
    settings.ACCOUNTS_AVATAR_MAX_BYTES = 1000

    response = person_client.put(
        "/api/v1/me/avatar", {"avatar": image_file(size=(800, 800))}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "avatar_too_large"


def test_the_avatar_can_be_removed(person, person_client, django_capture_on_commit_callbacks):
    person_client.put("/api/v1/me/avatar", {"avatar": image_file()}, format="multipart")
    person.refresh_from_db()
    path = person.avatar.path

    with django_capture_on_commit_callbacks(execute=True):
        response = person_client.delete("/api/v1/me/avatar")

    assert response.json()["avatar_url"] is None
    assert not os.path.exists(path)
