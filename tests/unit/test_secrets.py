from cryptography.fernet import Fernet

from services.secrets import SecretBox


def test_secrets_round_trip_and_are_not_stored_in_clear():
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt("agent-password")
    assert "agent-password" not in token
    assert box.decrypt(token) == "agent-password"
    assert box.encrypt("") is None
