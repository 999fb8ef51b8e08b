"""The three distributions build, pass ``twine check``, and install from their wheels into a fresh venv.

In that venv (PyPI for the dependencies, ``dist/`` for our wheels) every README quickstart runs as
written, so what a user installs is what the READMEs promise, without the checkout on ``sys.path``.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_readmes import quickstart

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"
DISTRIBUTIONS = {  # distribution -> (project folder, wheel file stem)
    "mem-adapters": (ROOT, "mem_adapters"),
    "langchain-mem-adapters": (ROOT / "integrations/langchain", "langchain_mem_adapters"),
    "llama-index-memory-mem-adapters": (ROOT / "integrations/llama-index", "llama_index_memory_mem_adapters"),
}
SDIST_TOP = {
    "mem_adapters": "src",
    "langchain_mem_adapters": "langchain_mem_adapters",
    "llama_index_memory_mem_adapters": "llama_index",
}
READMES = {
    "mem-adapters": ROOT / "README.md",
    "langchain-mem-adapters": ROOT / "integrations/langchain/README.md",
    "llama-index-memory-mem-adapters": ROOT / "integrations/llama-index/README.md",
}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _uv() -> str:
    return shutil.which("uv") or str(Path(sys.executable).parent / "uv")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """Wheels and sdists of the three distributions, built from this checkout by ``python -m build``."""
    out = tmp_path_factory.mktemp("dist")
    for project, _ in DISTRIBUTIONS.values():
        _run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(project)])
    return out


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(zf.read(name))


@pytest.mark.slow
def test_build_makes_wheels_and_sdists_that_twine_accepts(dist):
    for stem in (s for _, s in DISTRIBUTIONS.values()):
        assert (dist / f"{stem}-{VERSION}-py3-none-any.whl").is_file(), sorted(p.name for p in dist.iterdir())
        assert (dist / f"{stem}-{VERSION}.tar.gz").is_file(), sorted(p.name for p in dist.iterdir())
    out = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))])
    assert out.stdout.count("PASSED") == 6, out.stdout
    # Each sdist holds its package, README and pyproject only (no notes, tests or sibling projects).
    for _, stem in DISTRIBUTIONS.values():
        with tarfile.open(dist / f"{stem}-{VERSION}.tar.gz") as tf:
            names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
        assert {"README.md", "pyproject.toml", "PKG-INFO"} <= names, stem
        top = {n.split("/")[0] for n in names} - {"README.md", "pyproject.toml", "PKG-INFO", ".gitignore"}
        assert top == {SDIST_TOP[stem]}, (stem, sorted(names))


@pytest.mark.slow
def test_metadata_is_complete_and_extras_name_the_adapters(dist):
    for dist_name, (_, stem) in DISTRIBUTIONS.items():
        meta = _metadata(dist / f"{stem}-{VERSION}-py3-none-any.whl")
        assert meta["Name"] == dist_name and meta["Version"] == VERSION
        assert meta["License-Expression"] == "Apache-2.0"
        assert meta["Author"] and meta["Keywords"] and meta["Description-Content-Type"] == "text/markdown"
        assert any(c.startswith("Programming Language :: Python :: 3.1") for c in meta.get_all("Classifier"))
        assert any(u.startswith("Source, https://") for u in meta.get_all("Project-URL")), dist_name
        for req in meta.get_all("Requires-Dist"):
            if "extra ==" not in req and not req.startswith("mem-adapters"):
                assert "<" in req, f"{dist_name}: no upper bound on {req}"
    engine = _metadata(dist / f"mem_adapters-{VERSION}-py3-none-any.whl")
    assert {"langchain", "llama-index", "server", "all", "test", "bench"} <= set(
        engine.get_all("Provides-Extra")
    )
    requires = engine.get_all("Requires-Dist")
    assert f"langchain-mem-adapters=={VERSION}; extra == 'langchain'" in requires
    assert f"llama-index-memory-mem-adapters=={VERSION}; extra == 'llama-index'" in requires


@pytest.mark.slow
def test_fresh_venv_from_wheels_runs_every_readme_quickstart(dist, tmp_path):
    venv = tmp_path / "venv"
    _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)])
    py = venv / "bin" / "python"
    # What a user types after a release, with the local wheels standing in for PyPI's.
    _run([_uv(), "pip", "install", "--quiet", "--python", str(py), "--find-links", str(dist),
          f"mem-adapters[all]=={VERSION}"])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1")
    where = _run(
        [str(py), "-c", "import mem_adapters, langchain_mem_adapters, llama_index.memory.mem_adapters as li;"
         "print(mem_adapters.__file__, langchain_mem_adapters.__file__, li.__file__, sep='\\n')"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    for path in where.stdout.split():
        assert Path(path).is_relative_to(venv), f"imported from the checkout, not the wheel: {path}"
    outputs = {}
    for dist_name, readme in READMES.items():
        work = tmp_path / dist_name
        work.mkdir()
        (work / "quickstart.py").write_text(quickstart(readme))
        outputs[dist_name] = _run([str(py), "quickstart.py"], cwd=work, env=env).stdout
    # The same promises tests/test_readmes.py checks in the development venv.
    assert outputs["mem-adapters"].splitlines()[0] == "I'm allergic to shellfish."
    assert "['ADD', 'UPDATE']" in outputs["mem-adapters"]
    assert "Lisbon" in outputs["langchain-mem-adapters"]
    assert "peanuts" in outputs["llama-index-memory-mem-adapters"].splitlines()[-1]
