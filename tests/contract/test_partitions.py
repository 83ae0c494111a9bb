"""Partition sets and shard maps as settings write them (contract.partitions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.errors import ConfigError
from contract.partitions import (
    MAX_PARTITIONS,
    ShardMap,
    format_partitions,
    parse_partitions,
    parse_shard_map,
)
from contract.settings import SharedSettings

partition_sets = st.frozensets(st.integers(0, MAX_PARTITIONS - 1), min_size=1, max_size=60)


def test_examples() -> None:
    assert parse_partitions("0-5") == frozenset(range(6))
    assert parse_partitions(" 0, 2 ,4-7") == {0, 2, 4, 5, 6, 7}
    assert parse_partitions("3-3") == {3}
    assert format_partitions([7, 0, 1, 2, 3, 4, 5]) == "0-5,7"
    assert format_partitions([]) == ""


@given(partition_sets)
def test_format_then_parse_is_the_identity(partitions: frozenset[int]) -> None:
    text = format_partitions(partitions)
    assert parse_partitions(text) == partitions
    assert format_partitions(parse_partitions(text)) == text  # the shortest form is stable


@given(partition_sets, st.randoms(use_true_random=False))
def test_any_order_and_spelling_of_a_set_parses_to_it(partitions: frozenset[int], rnd) -> None:
    items = [str(p) for p in partitions]
    rnd.shuffle(items)
    assert parse_partitions(", ".join(items)) == partitions


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "an empty item"),
        ("0,,1", "an empty item"),
        ("0,", "an empty item"),
        ("a", "'a' is not a partition number"),
        ("-1", "'-1' is not a partition number"),
        ("1-", "'1-' is not a partition number"),
        ("0-5-7", "'0-5-7' is not"),
        ("1.5", "'1.5' is not"),
        ("5-0", "range '5-0' ends before it starts"),
        ("0-5,3", "partition 3 is named twice"),
        ("2,2", "partition 2 is named twice"),
        (str(MAX_PARTITIONS), f"partition {MAX_PARTITIONS} is not below"),
        ("1234567", "'1234567' is not"),
    ],
)
def test_bad_partition_sets_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="^" + says.replace("(", r"\(")):
        parse_partitions(text)


@given(st.text(max_size=30))
def test_any_text_is_a_set_or_a_value_error(text: str) -> None:
    try:
        partitions = parse_partitions(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert partitions and all(0 <= p < MAX_PARTITIONS for p in partitions)


def test_shard_map_examples() -> None:
    m = parse_shard_map("0-5=http://shard-a:8000, 6-11=http://shard-b:8000/")
    assert m.shards == (
        ("http://shard-a:8000", frozenset(range(6))),
        ("http://shard-b:8000", frozenset(range(6, 12))),
    )
    assert m.owners(12) == ("http://shard-a:8000",) * 6 + ("http://shard-b:8000",) * 6
    assert m.url_of(frozenset(range(6, 12))) == "http://shard-b:8000"
    assert m.url_of(frozenset(range(6))) == "http://shard-a:8000"
    assert m.url_of(frozenset({0})) is None
    assert str(m) == "0-5=http://shard-a:8000,6-11=http://shard-b:8000"
    # Bare items join the next entry; entries with one URL are one shard; a path prefix stays.
    m = parse_shard_map("0,2=https://a.example/s,1,3=http://b,4=https://a.example/s")
    assert m.shards == (
        ("https://a.example/s", frozenset({0, 2, 4})),
        ("http://b", frozenset({1, 3})),
    )
    assert m.owners(5) == ("https://a.example/s", "http://b") * 2 + ("https://a.example/s",)


@given(
    st.lists(partition_sets, min_size=1, max_size=6).map(
        lambda sets: [s - frozenset().union(*sets[:i]) for i, s in enumerate(sets)]
    )
)
def test_a_written_shard_map_reads_back(sets: list[frozenset[int]]) -> None:
    entries = [(f"http://shard-{i}:8000", s) for i, s in enumerate(sets) if s]
    text = ",".join(f"{format_partitions(s)}={url}" for url, s in entries)
    parsed = parse_shard_map(text)
    assert parsed == ShardMap(tuple(entries))
    assert parse_shard_map(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0-5", "partitions 0-5 at the end are given no URL"),
        ("0-5=http://a,6", "partitions 6 at the end are given no URL"),
        ("0-5=ftp://a", "'ftp://a' is not an http:// or https:// URL"),
        ("0-5=http://", "'http://' is not an http"),
        ("0-5=shard-a:8000", "is not an http"),
        ("0-5=http://a?x=1", "must be a base URL"),
        ("0-5=http://a#top", "must be a base URL"),
        ("0-5=http://user@a", "must be a base URL"),
        ("0-5=http://a b", "must be a base URL"),
        ("0-5=http://a:99999", "has a port that is not a number"),
        ("0-5=http://a,3=http://b", "partition 3 is named twice"),
        ("x=http://a", "'x' is not a partition number"),
        ("=http://a", "an empty item"),
    ],
)
def test_bad_shard_maps_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        parse_shard_map(text)


def test_a_map_must_cover_the_topic_exactly() -> None:
    m = parse_shard_map("0-5=http://a,6-11=http://b")
    with pytest.raises(ValueError, match=r"gives partitions 12-13 to no shard"):
        m.owners(14)
    with pytest.raises(ValueError, match=r"names partitions 10-11, but the topic has 10"):
        m.owners(10)


def test_shared_settings_read_the_partitions_and_name_the_variable() -> None:
    s = SharedSettings.from_env({"KAFKA_PARTITIONS": "0-5, 7", "KAFKA_PARTITION_COUNT": "8"})
    assert s.kafka_partitions == {0, 1, 2, 3, 4, 5, 7} and s.kafka_partition_count == 8
    unset = SharedSettings.from_env({"KAFKA_PARTITIONS": " "})
    assert unset.kafka_partitions is None and unset.kafka_partition_count is None
    cases = {
        ("5-0", None): "KAFKA_PARTITIONS: range '5-0' ends before it starts",
        ("0-12", "12"): "KAFKA_PARTITIONS: includes 12, but KAFKA_PARTITION_COUNT is 12",
        ("0", "0"): "KAFKA_PARTITION_COUNT: ",
        ("0", "x"): "KAFKA_PARTITION_COUNT: ",
    }
    for (partitions, count), says in cases.items():
        env = {"KAFKA_PARTITIONS": partitions} | ({"KAFKA_PARTITION_COUNT": count} if count else {})
        with pytest.raises(ConfigError) as caught:
            SharedSettings.from_env(env)
        assert str(caught.value).startswith(says), caught.value
