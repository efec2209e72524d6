"""Password policy (OWASP ASVS 5.0 V6: length over composition, no common passwords)."""

from __future__ import annotations

from app.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 128

# the most common choices that pass the length rule; a short list, checked case-insensitively
COMMON = {
    "1234567890", "12345678910", "0123456789", "qwertyuiop", "password123", "password1234",
    "iloveyou123", "abcdefghij", "1qaz2wsx3edc", "qwerty12345", "a1234567890", "woaini1314",
    "woaini520520", "aaaaaaaaaa", "1111111111", "88888888888", "abc1234567", "passw0rd123",
    "heirline123", "heirline2026", "changeme123", "letmein1234", "1q2w3e4r5t", "zxcvbnm123",
}


def check_password(password: str, *, phone_e164: str = "", email: str = "") -> None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters", field="password")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"use at most {MAX_LENGTH} characters", field="password")
    lowered = password.lower()
    if lowered in COMMON or len(set(password)) < 4:
        raise WeakPassword("this password is too common or too simple", field="password")
    digits = phone_e164.lstrip("+")
    if digits and (digits[-8:] in password):
        raise WeakPassword("do not use your phone number in the password", field="password")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        raise WeakPassword("do not use your e-mail address in the password", field="password")
