from cryptography.fernet import Fernet

from services.secrets import SecretBox


def test_secrets_round_trip_and_are_not_stored_in_clear():
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt("agent-password")
    assert "agent-password" not in token
    assert box.decrypt(token) == "agent-password"
    assert box.encrypt("") is None


def test_a_sealed_value_opens_with_its_box_only():
    from services.secrets import is_sealed, seal, unseal

    box = SecretBox(Fernet.generate_key())
    sealed = seal(box, "pop-secret")
    assert is_sealed(sealed) and "pop-secret" not in str(sealed)
    assert unseal(box, sealed) == "pop-secret"
    assert seal(box, "") is None and unseal(box, "not sealed") is None
    assert not is_sealed({"__encrypted__": "x", "other": 1})


def test_a_database_message_keeps_what_failed_and_loses_the_data():
    from services.secrets import without_values

    token = SecretBox(Fernet.generate_key()).encrypt("x")
    message = ('(psycopg.errors.NotNullViolation) null value in column "kind" of relation "customer" '
               f'violates not-null constraint {token}\n'
               'DETAIL:  Failing row contains (1, null, ACME, abc123).')
    cleaned = without_values(message)
    assert 'column "kind"' in cleaned and "Failing row" not in cleaned and "ACME" not in cleaned
    assert token not in cleaned


def test_audit_changes_are_masked_however_deep():
    from services.audit import masked

    token = SecretBox(Fernet.generate_key()).encrypt("agent-secret")
    changes = masked({"notes": [None, f"see {token}"], "pop3_password": ["a", None],
                      "undo": {"cmonitor_password": token, "kept": {"__encrypted__": token}, "undone": True},
                      "registration_key": ["changed", "changed"], "company_name": ["A", "B"]})
    assert changes == {"notes": [None, "see changed"], "pop3_password": ["changed", None],
                       "undo": {"cmonitor_password": "changed", "kept": "changed", "undone": True},
                       "registration_key": ["changed", "changed"], "company_name": ["A", "B"]}
