"""LoCoMo bench: evidence normalisation, metrics, and a tiny end-to-end run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mem_adapters import bench
from mem_adapters.cli import main

# Two made-up conversations in LoCoMo's layout (not LoCoMo text, which is CC BY-NC).
LOCOMO_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "locomo-tiny.json"
# The real LoCoMo dev split, beside the checkout (../shared) on developer machines and in CI.
LOCOMO_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"


@pytest.mark.parametrize(
    ("raw", "ids", "dropped"),
    [
        (["D1:3"], ["D1:3"], []),
        (["D8:6; D9:17"], ["D8:6", "D9:17"], []),
        (["D9:1 D4:4"], ["D9:1", "D4:4"], []),
        (["D:11:26"], ["D11:26"], []),
        (["D30:05"], ["D30:5"], []),
        (["D"], [], ["D"]),
        (["D99:1", "D1:3", "D1:3"], ["D1:3"], ["D99:1"]),
    ],
)
def test_normalise_evidence(raw, ids, dropped):
    known = {"D1:3", "D8:6", "D9:17", "D9:1", "D4:4", "D11:26", "D30:5"}
    got, got_dropped, _ = bench.normalise_evidence(raw, known)
    assert got == ids and got_dropped == dropped


def test_score_ranking():
    m = bench.score_ranking(["D1:1", "D2:5", "D1:2", "D3:1"], ["D1:2", "D3:9"], [1, 3, 4])
    assert m["recall"] == {1: 0.0, 3: 0.5, 4: 0.5}
    assert m["any_hit"] == {1: 0.0, 3: 1.0, 4: 1.0}
    assert m["session_recall"] == {1: 0.5, 3: 0.5, 4: 1.0}


def _tiny_locomo(path):
    """Two made-up conversations in LoCoMo's layout (tests/fixtures/locomo-tiny.json), copied to ``path``."""
    shutil.copyfile(LOCOMO_FIXTURE, path)
    return path


async def test_run_locomo_end_to_end(tmp_path, embedder):
    from mem_adapters import AsyncMemoryEngine

    data = _tiny_locomo(tmp_path / "tiny.json")
    report = await bench.run_locomo(
        data, ks=[1, 5], baselines=["dense", "bm25", "hybrid"], limit=1,
        engine_factory=lambda path: AsyncMemoryEngine(path, embedder=embedder),
    )  # fmt: skip
    assert report["schema"] == bench.SCHEMA
    assert report["dataset"]["turns"] == 5 and report["dataset"]["questions"] == 4
    ev = report["dataset"]["evidence"]
    assert ev["dropped"] == 1 and ev["questions_without_evidence"] == 1 and ev["repaired_ids"] >= 3
    assert set(report["systems"]) == {"mem-adapters", "dense", "bm25", "hybrid"}
    ours = report["systems"]["mem-adapters"]
    assert ours["overall"]["n"] == 4 and ours["by_category"]["4"]["n"] == 2
    # With 5 turns, every evidence turn is inside the top 5 of a retriever that ranks them all
    # (BM25 only returns turns sharing a word with the question).
    for name in ("mem-adapters", "dense", "hybrid"):
        assert report["systems"][name]["overall"]["recall@k"]["5"] == 1.0, name
    assert 0 < report["systems"]["bm25"]["overall"]["recall@k"]["5"] <= 1.0
    # The cat question names a rare word of exactly one turn: our ranker puts it first.
    assert ours["by_category"]["4"]["any_hit@k"]["1"] >= 0.5
    assert ours["latency_ms"]["p50"] > 0 and report["ingest"]["turns_per_s"] > 0


async def test_ingest_keeps_dates_roles_captions(tmp_path, embedder):
    from mem_adapters import AsyncMemoryEngine

    convs, _ = bench.load_locomo(_tiny_locomo(tmp_path / "tiny.json"))
    eng = AsyncMemoryEngine(tmp_path / "s", embedder=embedder)
    try:
        await bench._ingest(eng, convs[0], False)
        turns = await eng.get_messages("conv-x-s1", tenant_id="locomo-conv-x")
        assert [t.metadata["dia_id"] for t in turns] == ["D1:1", "D1:2", "D1:3"]
        assert [t.role for t in turns] == ["Ana", "Ben", "Ana"]
        assert turns[0].timestamp.isoformat() == "2023-05-08T13:56:00+00:00"
        assert (
            "kayak" in turns[2].text and turns[2].metadata["image_caption"] == "a photo of a kayak on a lake"
        )
    finally:
        await eng.aclose()


def test_cli_writes_report_and_plot(tmp_path, capsys):
    data = _tiny_locomo(tmp_path / "tiny.json")
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    code = main(["bench", "locomo", "--data", str(data), "--k", "1,2", "--baseline", "bm25",
                 "--out", str(out), "--plot", str(png)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["config"]["ks"] == [1, 2] and set(report["systems"]) == {"mem-adapters", "bm25"}
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "mem-adapters" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(tmp_path):
    assert main(["bench", "locomo", "--data", "x.json", "--baseline", "magic"]) == 2
    assert main(["bench", "locomo", "--data", str(tmp_path / "missing.json")]) == 2


def test_enrich_derives_facts_that_search_can_use(tmp_path):
    data = _tiny_locomo(tmp_path / "tiny.json")
    out, store = tmp_path / "out.json", tmp_path / "store"
    args = ["bench", "locomo", "--data", str(data), "--enrich", "--store", str(store), "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["config"]["enrich"] is True
    from mem_adapters import MemoryEngine

    with MemoryEngine(store) as engine:
        facts = [
            item
            for tenant in engine.tenants()
            for item in engine.list(kinds=["fact"], tenant_id=tenant, page_size=100).results
        ]
    assert any("Pixel" in f.text for f in facts), [f.text for f in facts]


def test_fixture_has_locomo_layout():
    convs, stats = bench.load_locomo(LOCOMO_FIXTURE)
    assert [c.sample_id for c in convs] == ["conv-x", "conv-y"]
    assert convs[1].speakers == ["Mia", "Omar"] and [n for n, _, _ in convs[1].sessions] == [1, 2]
    assert [q.evidence for q in convs[1].questions] == [["D1:2"], ["D1:1", "D2:2"], ["D1:3"]]
    assert stats.dropped == 1 and stats.questions_without_evidence == 1


@pytest.mark.slow
@pytest.mark.skipif(not LOCOMO_DEV.is_file(), reason=f"the LoCoMo dev split is not at {LOCOMO_DEV}")
async def test_locomo_dev_first_conversation(embedder):
    from mem_adapters import AsyncMemoryEngine

    report = await bench.run_locomo(
        LOCOMO_DEV, ks=[5, 10], baselines=["dense"], limit=1,
        engine_factory=lambda path: AsyncMemoryEngine(path, embedder=embedder),
    )  # fmt: skip
    assert report["dataset"]["conversations"] == ["conv-26"] and report["dataset"]["questions"] > 100
    ours, dense = (report["systems"][name]["overall"]["recall@k"]["10"] for name in ("mem-adapters", "dense"))
    # The hybrid, question-aware ranker finds more of the evidence than plain dense search.
    assert ours > dense, (ours, dense)
