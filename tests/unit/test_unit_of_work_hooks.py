"""services.transactions.after_commit / after_rollback: effects outside the database (a photo's
files) follow the door's unit of work — after its commit, or undone when it rolls back."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from services.transactions import after_commit, after_rollback, unit_of_work


@pytest.fixture
def session():
    with Session(create_engine("sqlite://")) as session:
        yield session


def test_after_commit_runs_only_once_the_outermost_unit_committed(session):
    ran: list[str] = []
    with unit_of_work(session):
        with unit_of_work(session):  # joins the outer unit
            after_commit(session, lambda: ran.append("committed"))
            after_rollback(session, lambda: ran.append("rolled back"))
        assert ran == []  # the nested unit's end is not the commit
    assert ran == ["committed"]
    with unit_of_work(session):
        pass
    assert ran == ["committed"]  # run once, then forgotten


def test_a_rollback_drops_the_commit_callbacks_and_runs_the_rollback_ones(session):
    ran: list[str] = []
    with pytest.raises(RuntimeError):
        with unit_of_work(session):
            after_commit(session, lambda: ran.append("committed"))
            after_rollback(session, lambda: ran.append("rolled back"))
            raise RuntimeError("a later step failed")
    assert ran == ["rolled back"]


def test_a_failed_savepoint_settles_only_what_was_registered_inside_it(session):
    ran: list[str] = []
    with unit_of_work(session):
        after_commit(session, lambda: ran.append("outer committed"))
        with pytest.raises(RuntimeError):
            with unit_of_work(session, savepoint=True):
                after_commit(session, lambda: ran.append("row committed"))
                after_rollback(session, lambda: ran.append("row rolled back"))
                raise RuntimeError("this row fails alone")
        assert ran == ["row rolled back"]
    assert ran == ["row rolled back", "outer committed"]


def test_a_failing_callback_does_not_undo_the_commit(session, caplog):
    ran: list[str] = []
    with unit_of_work(session):
        after_commit(session, lambda: 1 / 0)
        after_commit(session, lambda: ran.append("next one still runs"))
    assert ran == ["next one still runs"] and "callback after the unit of work failed" in caplog.text


def test_callbacks_need_the_doors_unit_of_work(session):
    with pytest.raises(RuntimeError, match="unit_of_work"):
        after_commit(session, lambda: None)
