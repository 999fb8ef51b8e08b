"""The ``mem-adapters`` command line: commands through Typer's runner, and real subprocesses.

Every test runs on a real embedded Chroma store in a temporary folder, with the real model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mem_adapters import MemoryEngine
from mem_adapters.cli import DEMO_TURNS, app, bench_cmds, main
from mem_adapters.enrichment import Enricher

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=True)
    return result


def ok(runner: CliRunner, *args: str, input: str | None = None) -> Any:
    result = run(runner, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(runner: CliRunner, *args: str) -> Any:
    return json.loads(ok(runner, *args, "--json").stdout)


def subprocess_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", **extra}


def cli(*args: str, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mem_adapters", *args],
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------- help, version, errors


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in getattr(group, "commands", {}).items():
        out += _commands(cmd, (*prefix, name))
    return out


def test_help_of_every_command_is_plain_text(runner):
    commands = _commands(typer.main.get_command(app))
    names = {c[-1] for c in commands if c}
    assert {"demo", "import", "export", "search", "users", "sessions", "show", "facts", "erase",
            "stats", "doctor", "bench", "locomo"} <= names  # fmt: skip
    for path in commands:
        result = ok(runner, *path, "--help")
        assert "``" not in result.stdout, path
        assert "Usage:" in result.stdout


def test_store_commands_share_the_store_options(runner):
    for name in ("demo", "import", "export", "search", "users", "sessions", "show", "facts", "erase",
                 "stats", "doctor"):  # fmt: skip
        text = ok(runner, name, "--help").stdout
        for option in ("--path", "--chroma-host", "--chroma-port", "--tenant", "--user", "--session"):
            assert option in text, (name, option)


def test_version_through_python_dash_m(tmp_path):
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mem-adapters 0.1.0 (chromadb ")


def test_missing_model_prints_one_line_and_exits_1(tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    proc = cli("search", "anything", "--path", str(tmp_path / "s"), cwd=tmp_path,
               MEM_ADAPTERS_MODEL_DIR=str(empty))  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert (
        "Traceback" not in proc.stderr and "model.onnx" in lines[0] and "MEM_ADAPTERS_MODEL_DIR" in lines[0]
    )
    assert proc.stdout == ""


def test_debug_lets_the_exception_through(runner, tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    result = run(runner, "--debug", "users", "--path", str(tmp_path / "s"), "--model-dir", str(empty))
    assert result.exit_code == 1
    from mem_adapters import ModelNotFoundError

    assert isinstance(result.exception, ModelNotFoundError)


def test_bad_input_file_is_one_line_naming_the_line(runner, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "text": "hi", "session_id": "s"}\n{not json\n')
    result = run(runner, "import", str(bad), "--path", str(tmp_path / "s"))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: line 2: is not JSON")


def test_usage_errors_exit_2_through_main(tmp_path, capsys):
    assert main(["erase", "--path", str(tmp_path / "s")]) == 2
    assert "give --user" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2
    assert main(["--version"]) == 0


def test_bench_scale_registers_when_its_module_exists(monkeypatch):
    import types

    target = typer.Typer()

    @target.command("locomo")
    def _locomo() -> None:
        """LoCoMo."""

    fake = types.ModuleType("mem_adapters.bench_scale")

    def register(bench_app: typer.Typer) -> None:
        @bench_app.command("scale")
        def scale() -> None:
            """Scale benchmark."""

    fake.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mem_adapters.bench_scale", fake)
    bench_cmds._register_optional(target)
    assert {"locomo", "scale"} <= set(typer.main.get_command(target).commands)


# ---------------------------------------------------------------------- demo


def test_demo_prints_scores_which_memory_and_a_time_ordered_context(runner, tmp_path):
    text = ok(runner, "demo", "--path", str(tmp_path / "s")).stdout
    assert "stored 6 new turns (0 already known)" in text
    blocks = text.split("\nQ: ")[1:]
    assert len(blocks) == 3
    for block in blocks:
        lines = block.splitlines()
        assert lines[1].lstrip().startswith("1. score ") and " turn t_" in lines[1]
        ctx = lines[lines.index(next(line for line in lines if "context for a prompt" in line)) + 1 :]
        stamps = [line.strip()[1:17] for line in ctx if line.startswith("    [")]
        assert stamps and stamps == sorted(stamps)
    again = ok(runner, "demo", "--path", str(tmp_path / "s")).stdout
    assert "stored 0 new turns (6 already known)" in again


# ---------------------------------------------------------------------- import formats


def _tiny_locomo() -> list[dict[str, Any]]:
    conv = {
        "speaker_a": "Ana", "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "Hi Ben! I adopted a grey cat named Pixel."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Look!", "blip_caption": "a photo of a cello"},
        ],
        "session_2_date_time": "10:00 am on 1 June, 2023",
        "session_2": [{"speaker": "Ben", "dia_id": "D2:1", "text": "I went to Iceland last week."}],
    }  # fmt: skip
    return [{"sample_id": "conv-x", "conversation": conv, "qa": []}]


def test_import_reads_every_layout_and_is_idempotent(runner, tmp_path):
    store = ["--path", str(tmp_path / "s")]
    turns = write_jsonl(tmp_path / "turns.jsonl", [
        {"role": "user", "text": "I live in Lisbon.", "timestamp": "2025-03-01T09:00:00Z",
         "session_id": "a1", "user_id": "ana", "mood": "calm"},
        {"role": "assistant", "text": "Nice!", "timestamp": "2025-03-01T09:00:05Z", "session_id": "a1",
         "user_id": "ana"},
        {"role": "user", "text": "No timestamp here.", "session_id": "b1"},
        {"role": "user", "text": "   "},
    ])  # fmt: skip
    got = as_json(runner, "import", str(turns), "--user", "bob", *store)
    assert (got["format"], got["turns"], got["written"], got["skipped_empty"]) == ("turns", 3, 3, 1)
    openai = tmp_path / "chat.json"
    openai.write_text(json.dumps({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "I play the cello."}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "assistant", "content": "Lovely."},
    ]}))  # fmt: skip
    got = as_json(runner, "import", str(openai), "--session", "c1", "--user", "carol", *store)
    assert (got["format"], got["written"], got["skipped_empty"]) == ("openai", 3, 1)
    sharegpt = tmp_path / "sg.json"
    sharegpt.write_text(json.dumps([
        {"id": "sg-1", "conversations": [{"from": "human", "value": "My cat is Pixel."},
                                         {"from": "gpt", "value": "Cute."}]},
        {"conversations": [{"from": "human", "value": "I like tea."}]},
    ]))  # fmt: skip
    got = as_json(runner, "import", str(sharegpt), "--user", "dave", *store)
    assert (got["format"], got["sessions"], got["written"]) == ("sharegpt", 2, 3)
    locomo = tmp_path / "locomo.json"
    locomo.write_text(json.dumps(_tiny_locomo()))
    got = as_json(runner, "import", str(locomo), "--tenant", "lc", *store)
    assert (got["format"], got["sessions"], got["written"]) == ("locomo", 2, 3)

    # Everything again: nothing is written twice (turn ids are content hashes or positions).
    for path, extra in ((turns, ["--user", "bob"]), (openai, ["--session", "c1", "--user", "carol"]),
                        (sharegpt, ["--user", "dave"]), (locomo, ["--tenant", "lc"])):  # fmt: skip
        again = as_json(runner, "import", str(path), *extra, *store)
        assert again["written"] == 0 and again["already_stored"] == again["turns"], path

    # Per-line scope wins over the options; metadata keeps the extra keys.
    assert as_json(runner, "sessions", "--user", "ana", *store) == [{"session_id": "a1", "turns": 2}]
    a1 = as_json(runner, "show", "a1", *store)
    assert [t["text"] for t in a1] == ["I live in Lisbon.", "Nice!"]
    assert a1[0]["metadata"] == {"mood": "calm"} and a1[0]["user_id"] == "ana"
    assert [t["user_id"] for t in as_json(runner, "show", "b1", *store)] == ["bob"]
    c1 = as_json(runner, "show", "c1", *store)
    assert [(t["role"], t["text"]) for t in c1] == [
        ("system", "Be brief."), ("user", "I play the cello."), ("assistant", "Lovely.")
    ]  # fmt: skip
    assert [t["role"] for t in as_json(runner, "show", "sg-1", *store)] == ["user", "assistant"]
    assert as_json(runner, "show", "sg-2", *store)[0]["text"] == "I like tea."
    s1 = as_json(runner, "show", "conv-x-s1", "--tenant", "lc", *store)
    assert [t["caller_id"] for t in s1] == ["conv-x:D1:1", "conv-x:D1:2"]  # ids scoped per session
    assert s1[0]["timestamp"] == "2023-05-08T13:56:00Z" and s1[0]["user_id"] == "conv-x"
    assert s1[1]["metadata"]["image_caption"] == "a photo of a cello" and "cello" in s1[1]["text"]


# ---------------------------------------------------------------------- reading


@pytest.fixture
def filled(tmp_path, embedder) -> list[str]:
    """A store holding the demo conversation (enriched), a later move, and a raw memory."""
    path = tmp_path / "filled"
    with MemoryEngine(path, embedder=embedder, enricher=Enricher(backoff=0.01)) as eng:
        eng.remember([{"role": r, "text": t, "timestamp": ts} for r, t, ts in DEMO_TURNS],
                     session_id="demo", user_id="dana")  # fmt: skip
        eng.wait_all(60)
        eng.remember([{"role": "user", "text": "We moved to Porto last month.",
                       "timestamp": "2025-06-01T10:00:00Z"}], session_id="demo2", user_id="dana")  # fmt: skip
        eng.wait_all(60)
        eng.end_session("demo", user_id="dana")
        eng.add(raw_text="Dana's partner is Sam.", user_id="dana", memory_id="partner")
        eng.update("partner", text="Dana's partner is Sam; they married in 2024.")
        eng.remember([{"role": "user", "text": "I collect stamps.", "timestamp": "2025-01-01T00:00:00Z"}],
                     session_id="other", user_id="eve")  # fmt: skip
    return ["--path", str(path)]


def test_search_table_json_and_context(runner, filled):
    table = ok(runner, "search", "allergic to shellfish", "--user", "dana", "--k", "3", *filled).stdout
    assert "allergic" in table and "score" in table
    got = as_json(runner, "search", "allergic to shellfish", "--user", "dana", "--k", "3", *filled)
    assert len(got["results"]) == 3 and got["mode"] == "flat"
    assert any("shellfish" in r["text"] for r in got["results"])
    assert all(r["score"] is not None and r["user_id"] == "dana" for r in got["results"])
    got = as_json(runner, "search", "hobbies", "--user", "dana", "--context", "--char-budget", "120", *filled)
    assert got["mode"] == "context" and 0 < len(got["context"]) <= 120
    assert as_json(runner, "search", "stamps", "--user", "dana", "--kind", "turn", *filled)["results"]
    scoped = as_json(runner, "search", "stamps", "--user", "dana", *filled)["results"]
    assert scoped and not any("stamps" in r["text"] for r in scoped)  # eve's turn is not dana's
    tenant_wide = as_json(runner, "search", "stamps", *filled)["results"]
    assert tenant_wide[0]["text"] == "I collect stamps." and tenant_wide[0]["user_id"] == "eve"


def test_users_sessions_show_stats(runner, filled):
    users = {u["user_id"]: u for u in as_json(runner, "users", *filled)}
    assert set(users) == {"dana", "eve"}
    assert (users["dana"]["turns"], users["dana"]["sessions"]) == (7, 2)
    assert (
        users["dana"]["first_turn"] == "2025-03-01 09:00" and users["dana"]["last_turn"] == "2025-06-01 10:00"
    )
    assert [s["session_id"] for s in as_json(runner, "sessions", "--user", "dana", *filled)] == [
        "demo",
        "demo2",
    ]
    shown = ok(runner, "show", "demo", *filled).stdout.splitlines()
    assert len(shown) == 6 and "Lisbon" in shown[0] and "Sintra" in shown[-1]
    stats = as_json(runner, "stats", *filled)["tenants"]
    assert len(stats) == 1 and stats[0]["tenant_id"] == "default"
    kinds = stats[0]["kinds"]
    assert kinds["turn"] == 8 and kinds["raw"] == 1 and kinds["fact"] >= 4 and kinds["episode"] >= 1
    assert stats[0]["history"] >= 1 and stats[0]["users"] == 2
    assert "default" in ok(runner, "stats", *filled).stdout


def test_facts_show_supersession_chains(runner, filled):
    got = as_json(runner, "facts", "dana", *filled)
    assert all(f["fact"]["is_latest"] for f in got)
    porto = next(f for f in got if f["fact"]["attributes"].get("value") == "Porto")
    chain = porto["history"]
    assert [h["text"] for h in chain][-1] == porto["fact"]["text"]
    assert "Lisbon" in chain[0]["text"] and chain[0]["memory_id"] == porto["fact"]["supersedes"]
    text = ok(runner, "facts", "dana", *filled).stdout
    assert "moved to Porto" in text and "Lisbon" in text and "superseded" in text
    everything = as_json(runner, "facts", "dana", "--all", *filled)
    assert len(everything) == len(got) + 1


def test_erase_asks_then_prints_the_receipt(runner, filled):
    no = run(runner, "erase", "--user", "eve", *filled, input="n\n")
    assert no.exit_code == 1
    assert as_json(runner, "sessions", "--user", "eve", *filled) == [{"session_id": "other", "turns": 1}]
    yes = ok(runner, "erase", "--user", "eve", *filled, input="y\n").stdout
    assert "erased user 'eve'" in yes and "turns" in yes
    assert as_json(runner, "sessions", "--user", "eve", *filled) == []
    receipt = as_json(runner, "erase", "--user", "dana", "--yes", *filled)
    assert receipt["turns"] == 7 and receipt["memories"] == 1 and receipt["derived"] >= 4
    assert receipt["history"] >= 1 and receipt["total"] >= 13
    assert as_json(runner, "users", *filled) == []


def test_doctor_reports_model_store_and_an_unreachable_server(runner, filled):
    report = as_json(runner, "doctor", *filled)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert "MEM_ADAPTERS_MODEL_DIR" in checks["model"]["detail"]
    assert checks["embedder"]["detail"].startswith("onnx:all-MiniLM-L6-v2")
    assert "1 tenants" in checks["store format"]["detail"] and "version" in checks["store format"]["detail"]
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bad = run(runner, "doctor", "--json", "--chroma-host", "127.0.0.1", "--chroma-port", str(port))
    assert bad.exit_code == 1
    checks = {c["name"]: c for c in json.loads(bad.stdout)["checks"]}
    assert checks["chroma"]["ok"] is False and "unreachable" in checks["chroma"]["detail"]


# ---------------------------------------------------------------------- export / import


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_import_export_import_export_is_byte_identical(tmp_path, embedder):
    rows = [{"role": r, "text": t, "timestamp": ts, "session_id": "demo", "user_id": "dana"}
            for r, t, ts in DEMO_TURNS]  # fmt: skip
    moved = {"role": "user", "text": "We moved to Porto last month.", "timestamp": "2025-06-01T10:00:00Z"}
    rows.append(
        {**moved, "session_id": "demo2", "user_id": "dana", "metadata": {"channel": "app", "tags": ["move"]}}
    )
    conv = write_jsonl(tmp_path / "conv.jsonl", rows)
    a, b = tmp_path / "a", tmp_path / "b"
    first = cli("import", str(conv), "--enrich", "--path", str(a), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # What the public API adds: raw memories (chunked, expiring), versions, a deletion, an episode.
    with MemoryEngine(a, embedder=embedder, enricher=Enricher(backoff=0.01)) as eng:
        eng.add(raw_text="Dana prefers aisle seats. " * 60, user_id="dana", memory_id="seats",
                expiry_seconds=3600, metadata={"source": "crm", "é": "ü"})  # fmt: skip
        eng.add(raw_text="Dana's partner is Sam.", user_id="dana", memory_id="partner")
        eng.update("partner", text="Dana's partner is Sam; married 2024.", metadata={"checked": True})
        eng.add(raw_text="temporary", user_id="dana", memory_id="gone")
        eng.delete("gone")
        eng.end_session("demo", user_id="dana")
        eng.add(raw_text="another tenant's note", tenant_id="t2", user_id="zed")
        eng.wait_all(60)
        top_a = [h.id for h in eng.search("where does Dana live", user_id="dana", k=5).results]
    e1, e2 = tmp_path / "e1.jsonl", tmp_path / "e2.jsonl"
    for args in (("export", "--path", str(a), "--out", str(e1)), ("import", str(e1), "--path", str(b)),
                 ("export", "--path", str(b), "--out", str(e2))):  # fmt: skip
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert e1.read_bytes() == e2.read_bytes()

    records = _records(e1)
    assert records[0] == {"record": "header", "format": "mem-adapters/export/v1"}
    mems = [r for r in records if r["record"] == "memory"]
    assert {r["kind"] for r in mems} == {"turn", "raw", "chunk", "fact", "episode"}
    assert {r["tenant_id"] for r in mems} == {"default", "t2"}
    seats = next(r for r in mems if r["fields"].get("caller_id") == "seats")  # the caller's memory_id
    assert seats["metadata"] == {"source": "crm", "é": "ü"} and seats["fields"]["expires_at"] < 253402300799.0
    assert any(r["fields"].get("supersedes") for r in mems if r["kind"] == "fact")
    events = {
        (r["fields"].get("caller_id"), r["fields"]["event"]) for r in records if r["record"] == "history"
    }
    assert {("partner", "ADD"), ("gone", "DELETE")} <= events
    moved_rec = next(r for r in mems if r["text"] == "We moved to Porto last month.")
    assert moved_rec["metadata"] == {"channel": "app", "tags": ["move"]}

    # The copy answers like the original and keeps history; importing again writes nothing.
    with MemoryEngine(b, embedder=embedder) as eng:
        assert [h.id for h in eng.search("where does Dana live", user_id="dana", k=5).results] == top_a
        assert [h.event for h in eng.history("partner")] == ["ADD", "UPDATE"]
        assert eng.get("seats").expires_at is not None
    again = cli("import", str(e1), "--path", str(b), "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["written"] == 0
    only = tmp_path / "dana.jsonl"
    assert cli("export", "--path", str(b), "--user", "dana", "--tenant", "default", "--out", str(only),
               cwd=tmp_path).returncode == 0  # fmt: skip
    assert {r.get("tenant_id") for r in _records(only)[1:]} == {"default"}
    assert all(r["fields"]["user_id"] == "dana" for r in _records(only)[1:])


def _kill_after(args: list[str], cwd: Path, marker: str, batches: int) -> int:
    """Run the CLI with -v, SIGKILL it once ``batches`` log lines containing ``marker`` appeared."""
    proc = subprocess.Popen([sys.executable, "-m", "mem_adapters", "-v", *args], cwd=cwd,
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    seen = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            seen += 1
            if seen == batches:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert seen == batches, "the import ended before it could be killed"
    return proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["export", "turns"])
def test_a_killed_import_rerun_writes_each_record_once(tmp_path, embedder, layout):
    n = 400
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "session_id": f"s{i % 3}", "user_id": "kim",
              "text": f"Message number {i} about topic {i % 7}."} for i in range(n)]  # fmt: skip
    source = write_jsonl(tmp_path / "turns.jsonl", turns)  # no timestamps: ids from positions
    if layout == "export":
        src = tmp_path / "src"
        assert cli("import", str(source), "--path", str(src), cwd=tmp_path).returncode == 0
        source = tmp_path / "export.jsonl"
        assert cli("export", "--path", str(src), "--out", str(source), cwd=tmp_path).returncode == 0
        marker = "import: 20 memory records"
    else:
        marker = "turns written"
    dest = tmp_path / "dest"
    code = _kill_after(["import", str(source), "--path", str(dest), "--batch", "20"], tmp_path, marker, 3)
    assert code == -signal.SIGKILL
    with MemoryEngine(dest, embedder=embedder) as eng:
        partial = sum(eng.count_turns(f"s{k}") for k in range(3))
    assert 60 <= partial < n
    rerun = cli("import", str(source), "--path", str(dest), "--batch", "20", "--json", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads(rerun.stdout)
    assert counts["written"] == n - partial and counts["already_stored"] == partial
    with MemoryEngine(dest, embedder=embedder) as eng:
        for k in range(3):
            got = [t.text for t in eng.get_messages(f"s{k}")]
            assert got == [t["text"] for t in turns if t["session_id"] == f"s{k}"]  # once each, in order
    if layout == "export":
        again = tmp_path / "again.jsonl"
        assert cli("export", "--path", str(dest), "--out", str(again), cwd=tmp_path).returncode == 0
        assert again.read_bytes() == source.read_bytes()


@pytest.mark.server
def test_store_commands_on_a_chroma_server(runner, chroma_server, tmp_path):
    host, port = chroma_server
    tenant = f"cli-{os.getpid()}-{tmp_path.name}"[:60]
    store = ["--chroma-host", host, "--chroma-port", str(port), "--tenant", tenant]
    turns = write_jsonl(tmp_path / "t.jsonl", [
        {"role": "user", "text": "I keep bees on the roof.", "timestamp": "2025-01-01T10:00:00Z"},
        {"role": "assistant", "text": "How many hives?", "timestamp": "2025-01-01T10:00:03Z"},
    ])  # fmt: skip
    assert as_json(runner, "import", str(turns), "--session", "roof", "--user", "ivo", *store)["written"] == 2
    hits = as_json(runner, "search", "bees", "--user", "ivo", *store)["results"]
    assert hits[0]["text"] == "I keep bees on the roof."
    assert [u["user_id"] for u in as_json(runner, "users", *store)] == ["ivo"]
    out = tmp_path / "e.jsonl"
    ok(runner, "export", "--out", str(out), *store)
    assert [r["id"] for r in _records(out)[1:]] == [h["id"] for h in as_json(runner, "show", "roof", *store)]
    assert as_json(runner, "erase", "--yes", *store)["turns"] == 2
