"""The demo bank's hashes: keyed by a secret of the installation, PINs and ID digits salted per card with a slow
KDF, so a copy of the database alone gives no card, PIN or ID back; rows of older hotlines are hashed again."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import sessionmaker

from bank.core_banking import DEMO_CARDS, DemoBank, DemoCardSeed
from hotline.app import card_secret_of, prepare
from hotline.settings import Settings
from store.models import DemoCard

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

SECRET = "this-installation-s-card-secret"
OLD_KEY = b"hotline-demo-bank"
"""The constant key every hotline used before."""
SAME_PIN = (DemoCardSeed("6222021234567894", "123456", "12345X", Decimal("1.00")),
            DemoCardSeed("6228480012345671", "123456", "12345X", Decimal("2.00")))


def old_digest(value: str) -> str:
    return hmac.new(OLD_KEY, value.replace("X", "*").encode(), hashlib.sha256).hexdigest()


def stored(sql: sessionmaker) -> dict[str, DemoCard]:
    with sql() as db:
        return {row.last4: row for row in db.scalars(select(DemoCard))}


def test_two_cards_with_one_pin_store_different_hashes_none_the_old_key_makes(sql: sessionmaker) -> None:
    DemoBank(sql, SECRET).seed(SAME_PIN)

    first, second = stored(sql).values()
    assert first.pin_hash != second.pin_hash and first.id_last6_hash != second.id_last6_hash
    everything = " ".join(f"{r.number_hash} {r.pin_hash} {r.id_last6_hash}" for r in (first, second))
    for card in SAME_PIN:  # the old constant key recomputes none of them
        for value in (card.number, card.pin, card.id_last6):
            assert old_digest(value) not in everything and value not in everything
    assert first.pin_hash.startswith("s13r8p1$") and len(first.pin_hash) <= 64  # fits the column everywhere


def test_the_database_without_the_secret_finds_and_verifies_nothing(sql: sessionmaker) -> None:
    DemoBank(sql, SECRET).seed()
    ours, theirs = DemoBank(sql, SECRET), DemoBank(sql, "someone-else-s-secret")
    for seed in DEMO_CARDS:
        card = ours.lookup_card(seed.number)
        assert card is not None and ours.verify_pin(card.token, seed.pin)
        assert theirs.lookup_card(seed.number) is None
        assert theirs.verify_pin(card.token, seed.pin) is False  # the PIN hash needs the secret too


def test_rows_hashed_with_the_old_constant_key_are_hashed_again_at_start(sql: sessionmaker) -> None:
    """A database of an older hotline: its demo cards still verify, and no old hash is left."""
    frozen = DEMO_CARDS[2]
    with sql.begin() as db:
        db.execute(insert(DemoCard), [
            {"token": f"tok{i}", "number_hash": old_digest(c.number), "pin_hash": old_digest(c.pin),
             "id_last6_hash": old_digest(c.id_last6), "last4": c.number[-4:], "balance": c.balance,
             "status": c.status, "freeze_reference": "261206000042" if c is frozen else None}
            for i, c in enumerate(DEMO_CARDS)])
    bank = DemoBank(sql, SECRET)

    bank.seed()

    rows = stored(sql)
    assert len(rows) == len(DEMO_CARDS)
    assert rows[frozen.number[-4:]].freeze_reference == "261206000042"
    for i, seed in enumerate(DEMO_CARDS):
        card = bank.lookup_card(seed.number)
        assert card is not None and card.token == f"tok{i}" and card.status == seed.status
        assert bank.verify_pin(card.token, seed.pin) and not bank.verify_pin(card.token, "000000")
        row = rows[seed.number[-4:]]
        assert old_digest(seed.pin) not in (row.pin_hash, row.id_last6_hash, row.number_hash)
    card = bank.lookup_card(DEMO_CARDS[0].number)
    assert card is not None and bank.freeze_card(card.token, DEMO_CARDS[0].id_last6.replace("X", "*"))


def test_the_card_secret_is_generated_once_private_and_kept(settings: Settings) -> None:
    first = prepare(settings)
    secret_file = settings.data_dir / "card_secret"
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) > 40 and card_secret_of(settings) == secret

    again = prepare(settings)  # a restart, or another process: the same secret, the same cards

    assert secret_file.read_text().strip() == secret
    card = again.bank.lookup_card(DEMO_CARDS[0].number)
    assert card is not None and card == first.bank.lookup_card(DEMO_CARDS[0].number)
    assert card_secret_of(settings.model_copy(update={"card_secret": "from-the-environment"})) == \
        "from-the-environment"


def test_no_secret_file_when_the_environment_gives_the_secret(settings: Settings, tmp_path: Path) -> None:
    given = settings.model_copy(update={"card_secret": "from-the-environment", "data_dir": tmp_path / "other"})
    hotline = prepare(given)
    assert not (given.data_dir / "card_secret").exists()
    card = hotline.bank.lookup_card(DEMO_CARDS[1].number)
    assert card is not None and hotline.bank.verify_pin(card.token, DEMO_CARDS[1].pin)


def test_a_started_hotline_keeps_nothing_the_old_constant_key_or_a_pin_list_recomputes(settings: Settings) -> None:
    """The attack of the issue: the database file and the well-known key gave all three PINs in seconds."""
    hotline = prepare(settings)
    with hotline.sql() as db:
        rows = list(db.scalars(select(DemoCard)))
    kept = {value for row in rows for value in (row.number_hash, row.pin_hash, row.id_last6_hash)}
    for seed in DEMO_CARDS:
        assert not {old_digest(seed.number), old_digest(seed.pin), old_digest(seed.id_last6)} & kept
    assert len({row.pin_hash for row in rows}) == len(rows)
