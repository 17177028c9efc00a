"""WeChat WeRun data (`wx.getWeRunData`): AES-128-CBC with the session key, PKCS#7, a watermark."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.api.boundary import json_text_refused
from core.local_time import local_day_of


class WeRunError(Exception):
    pass


# The most steps a day the app may sync (activities.apis), from WeRun or itself: no phone counts more.
MAX_STEPS_A_DAY = 10_000_000


@dataclass(frozen=True)
class WeRunPayload:
    app_id: str
    steps_by_day: dict[datetime.date, int]


def werun_decrypt(*, session_key: bytes, encrypted_data: str, iv: str) -> WeRunPayload:
    """Decrypts and reads a WeRun payload; raises WeRunError when it is not one."""
    try:
        ciphertext = base64.b64decode(encrypted_data, validate=True)
        initial_vector = base64.b64decode(iv, validate=True)
        if len(session_key) != 16 or len(initial_vector) != 16 or not ciphertext or len(ciphertext) % 16:
            raise WeRunError("bad sizes")
        decryptor = Cipher(algorithms.AES(session_key), modes.CBC(initial_vector)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
        if json_text_refused(plaintext) is not None:
            raise WeRunError("a JSON text the API refuses")
        data = json.loads(plaintext)
        app_id = str(data["watermark"]["appid"])
        steps: dict[datetime.date, int] = {}
        for item in data["stepInfoList"]:
            day = local_day_of(datetime.datetime.fromtimestamp(int(item["timestamp"]), tz=datetime.UTC))
            count = int(item["step"])
            if not 0 <= count <= MAX_STEPS_A_DAY:
                raise WeRunError("steps out of range")
            steps[day] = max(steps.get(day, 0), count)
    except (
        binascii.Error,
        ValueError,
        KeyError,
        TypeError,
        UnicodeDecodeError,
        OverflowError,
        OSError,
    ) as error:
        # OverflowError, OSError: a timestamp no calendar holds.
        raise WeRunError(str(error)) from error
    return WeRunPayload(app_id=app_id, steps_by_day=steps)


def werun_encrypt(*, session_key: bytes, iv: bytes, payload: dict) -> str:
    """What WeChat does, for tests and the demo: encrypts a payload the way `getWeRunData` returns it."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(json.dumps(payload).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()
