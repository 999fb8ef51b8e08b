"""The Python where-evaluator must agree with Chroma on every clause it accepts."""

from __future__ import annotations

import chromadb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mem_adapters.errors import ValidationError
from mem_adapters.where import compile_where, matches

FIELDS = ["a", "b", "c"]
# Values of several types: Chroma keeps bool, int/float and str apart.
VALUES = st.one_of(
    st.sampled_from([0, 1, 2, 3]), st.sampled_from([1.5, 2.0]), st.sampled_from(["x", "y"]), st.booleans()
)
NUMS = st.sampled_from([0, 1, 1.5, 2, 3])


def metadata():
    return st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=3)


def leaf():
    field = st.sampled_from(FIELDS)
    same_type_list = st.one_of(
        st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=3),
        st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2),
    )
    return st.one_of(
        st.builds(lambda f, v: {f: v}, field, VALUES),
        st.builds(lambda f, op, v: {f: {op: v}}, field, st.sampled_from(["$eq", "$ne"]), VALUES),
        st.builds(
            lambda f, op, v: {f: {op: v}}, field, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), NUMS
        ),
        st.builds(lambda f, op, v: {f: {op: v}}, field, st.sampled_from(["$in", "$nin"]), same_type_list),
    )


def clauses():
    return st.recursive(
        leaf(),
        lambda inner: st.builds(
            lambda op, subs: {op: subs},
            st.sampled_from(["$and", "$or"]),
            st.lists(inner, min_size=2, max_size=3),
        ),
        max_leaves=5,
    )


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("where")))
    return client.get_or_create_collection("where-check", embedding_function=None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metas=st.lists(metadata(), min_size=1, max_size=8), where=clauses())
def test_evaluator_agrees_with_chroma(collection, metas, where):
    ids = [f"r{i}" for i in range(len(metas))]
    existing = collection.get(include=[])["ids"]
    if existing:
        collection.delete(ids=existing)
    collection.add(ids=ids, embeddings=[[1.0, 0.0]] * len(ids), metadatas=metas)
    expected = set(collection.get(where=where, include=[])["ids"])
    pred = compile_where(where)
    got = {i for i, m in zip(ids, metas, strict=True) if pred(m)}
    assert got == expected, (where, metas)


@pytest.mark.parametrize(
    "where",
    [{"a": {"$regex": "x"}}, {"$not": [{"a": 1}]}, {"a": {}}, {"$and": []}, {"$or": {"a": 1}}],
)
def test_unknown_or_malformed_clauses_are_errors(where):
    with pytest.raises(ValidationError):
        compile_where(where)


def test_missing_field_semantics():
    assert not matches({"a": 1}, {})
    assert matches({"a": {"$ne": 1}}, {})
    assert matches({"a": {"$nin": [1]}}, {})
    assert not matches({"a": {"$gt": 0}}, {})
    assert not matches({"a": 1}, {"a": True})  # bools are not numbers
    assert matches({"a": 1}, {"a": 1.0})


@pytest.mark.parametrize(
    "where",
    [
        {"b": 1.5},
        {"b": -1.5},
        {"b": {"$gt": 1.5}},
        {"b": {"$gte": 1.5}},
        {"b": {"$lt": 1.5}},
        {"b": {"$lte": 1.5}},
        {"b": {"$gt": -1.5}},
        {"b": {"$ne": 1.5}},
        {"b": {"$in": [1.5, 2.5]}},
        {"b": {"$nin": [1.5]}},
        {"b": 1},
    ],
)
def test_float_operand_against_stored_ints_matches_chroma(collection, where):
    # Chroma truncates a float operand compared with a stored int (found by the property test).
    metas = [{"b": 1}, {"b": 2}, {"b": 1.0}, {"b": 1.5}, {"b": -1}, {"b": 0}, {"a": 1}]
    ids = [f"r{i}" for i in range(len(metas))]
    existing = collection.get(include=[])["ids"]
    if existing:
        collection.delete(ids=existing)
    collection.add(ids=ids, embeddings=[[1.0, 0.0]] * len(ids), metadatas=metas)
    expected = set(collection.get(where=where, include=[])["ids"])
    pred = compile_where(where)
    assert {i for i, m in zip(ids, metas, strict=True) if pred(m)} == expected
