"""The password hasher for charger (OCPP security profile 1) passwords."""

import base64

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils.crypto import pbkdf2


class ChargerPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with fewer rounds, and passwords compared as the bytes sent.

    Every charger handshake checks a password, and a depot reconnects hundreds
    of chargers at once after a restart: Django's default of a million rounds
    costs ~0.5 s of CPU per check here. Charger passwords are 16 to 40
    characters (generated ones carry 160 bits), so 20,000 rounds still leave a
    brute force of a leaked hash out of reach.

    OCPP 1.6 passwords may hold any bytes: the password arrives as ``str``
    decoded with ``surrogateescape`` and is encoded back to the exact bytes.
    """

    algorithm = "pbkdf2_sha256_charger"
    iterations = 20_000

    def encode(self, password, salt, iterations=None):
        self._check_encode_args(password, salt)
        iterations = iterations or self.iterations
        raw = password.encode("utf-8", "surrogateescape")
        hash_ = pbkdf2(raw, salt, iterations, digest=self.digest)

        hash_ = base64.b64encode(hash_).decode("ascii").strip()
        return f"{self.algorithm}${iterations}${salt}${hash_}"
