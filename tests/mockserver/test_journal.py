"""journal: a bounded log of requests with increasing ids (SPEC 4)."""

from __future__ import annotations

from mockserver.journal import Journal


def entry(n: int) -> dict[str, object]:
    return {"method": "GET", "path": f"/dapi/v1/ping/{n}", "status": 200}


def test_entries_are_kept_oldest_first_with_an_id() -> None:
    journal = Journal(10)
    journal.record(entry(1))
    journal.record(entry(2))
    assert journal.entries() == [{"id": 1, **entry(1)}, {"id": 2, **entry(2)}]


def test_id_comes_first_in_each_entry() -> None:
    journal = Journal(10)
    journal.record(entry(1))
    assert next(iter(journal.entries()[0])) == "id"


def test_oldest_entries_drop_out_beyond_the_size() -> None:
    journal = Journal(3)
    for n in range(1, 6):
        journal.record(entry(n))
    assert [e["id"] for e in journal.entries()] == [3, 4, 5]
    assert journal.entries()[0]["path"] == "/dapi/v1/ping/3"


def test_ids_keep_increasing_after_a_clear() -> None:
    journal = Journal(3)
    journal.record(entry(1))
    journal.record(entry(2))
    journal.clear()
    assert journal.entries() == []
    journal.record(entry(3))
    assert [e["id"] for e in journal.entries()] == [3]


def test_entries_is_a_snapshot() -> None:
    journal = Journal(3)
    journal.record(entry(1))
    snapshot = journal.entries()
    journal.record(entry(2))
    assert len(snapshot) == 1


def test_recorded_dict_is_not_modified() -> None:
    journal = Journal(3)
    sent = entry(1)
    journal.record(sent)
    assert "id" not in sent
