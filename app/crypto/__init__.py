"""Envelope encryption, password hashing and token helpers."""
