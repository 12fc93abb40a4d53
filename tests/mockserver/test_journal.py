"""journal: a bounded log of requests with increasing ids (docs/behaviour.md#journal)."""

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


# -- bounded in bytes, paged (docs/behaviour.md#journal) ----------------------------------


def test_each_text_field_is_cut_to_its_stated_size() -> None:
    journal = Journal(10)
    long = "x" * 100_000
    journal.record({"path": long, "api_key": long, "query": long, "body": long, "reason": long})
    (kept,) = journal.entries()
    sizes = {name: len(kept[name]) for name in ("path", "api_key", "query", "body", "reason")}
    assert sizes == {"path": 1024, "api_key": 64, "query": 16384, "body": 4096, "reason": 2048}


def test_missing_and_null_fields_are_kept_as_they_are() -> None:
    journal = Journal(10)
    journal.record({"path": "/p", "api_key": None, "status": 200})
    assert journal.entries() == [{"id": 1, "path": "/p", "api_key": None, "status": 200}]


def test_the_text_limit_drops_the_oldest_entries_first() -> None:
    journal = Journal(1000, text_limit=50_000)
    for n in range(1, 21):
        journal.record({"path": f"/{n}", "body": "b" * 4096})
    ids = [e["id"] for e in journal.entries()]
    assert 0 < journal.text_bytes <= 50_000
    assert ids == list(range(ids[0], 21)) and ids[0] > 1


def test_by_default_the_journal_holds_at_most_64_mib_of_text() -> None:
    journal = Journal(10_000)
    big = {name: "x" * 100_000 for name in ("path", "api_key", "query", "body", "reason")}
    for _ in range(3000):
        journal.record(big)
    assert journal.text_bytes <= 64 * 1024 * 1024
    assert 2000 < len(journal.entries()) < 3000


def test_clear_frees_the_text_count() -> None:
    journal = Journal(10)
    journal.record({"body": "b" * 1000})
    journal.clear()
    assert journal.text_bytes == 0


def test_a_page_is_the_newest_limit_entries_after_since_id_oldest_first() -> None:
    journal = Journal(100)
    for n in range(1, 11):
        journal.record(entry(n))
    assert [e["id"] for e in journal.page(since_id=4)[0]] == [5, 6, 7, 8, 9, 10]
    assert [e["id"] for e in journal.page(limit=3)[0]] == [8, 9, 10]
    assert [e["id"] for e in journal.page(since_id=4, limit=2)[0]] == [9, 10]
    assert journal.page(since_id=10) == ([], 10)


def test_last_id_is_zero_before_any_entry_and_keeps_counting_after_a_clear() -> None:
    journal = Journal(10)
    assert journal.page() == ([], 0)
    journal.record(entry(1))
    journal.clear()
    assert journal.page() == ([], 1)


def test_last_id_stops_below_a_reserved_id_until_its_entry_arrives() -> None:
    journal = Journal(10)
    journal.record(entry(1))
    reserved = journal.reserve()
    journal.record(entry(3))
    entries, last_id = journal.page()
    assert ([e["id"] for e in entries], last_id) == ([1], 1)
    journal.record(entry(2), reserved)
    entries, last_id = journal.page(since_id=1)
    assert ([e["id"] for e in entries], last_id) == ([2, 3], 3)


def test_a_reserved_id_never_recorded_stops_holding_readers_back(monkeypatch) -> None:
    from mockserver import journal as journal_module

    monkeypatch.setattr(journal_module, "PENDING_SECONDS", 0.0)
    journal = Journal(10)
    journal.reserve()
    journal.record(entry(2))
    assert journal.page()[1] == 2
