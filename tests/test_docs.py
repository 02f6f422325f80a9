"""Docs that cannot rot: README.md and docs/*.md against the CLI, the API and what a build writes.

Conventions for the fenced blocks of README.md and docs/*.md (a fence is three backticks and a
language, at the start of a line):

- A ``python`` block runs. Each block is its own test (named ``FILE:LINE``): it runs with ``exec`` in
  a fresh namespace, with a fresh temporary folder as the working folder, holding ``ratings.csv`` (a
  copy of ``sample_data/ratings.csv``) and nothing else. A block makes whatever else it needs itself
  (``seqprep.build("ratings.csv", "out/")`` first, if it reads ``out/``), so a reader can paste any
  block alone. The ``seqprep`` it imports is this checkout's. Warnings are errors, as everywhere.
- Comment lines at the top of a ``python`` block are directives:
  - ``# needs: torch`` (comma-separated modules): the block is skipped when one is not installed;
  - ``# continues``: the block runs right after the previous ``python`` block of the same file, in
    its namespace and folder (the chain is one test), for a page that builds an example in steps;
  - ``# stdin: seqprep build ratings.csv -o - -q``: ``sys.stdin`` is the output of that seqprep
    command (run in-process, in the block's folder), for blocks that consume a ``-o -`` stream.
- Any other block is not run. In a shell-like one (no language, ``sh``, ``bash``, ``console``), every
  ``seqprep WORD`` in command position (line start, ``$ ``, after a pipe, ``&&`` or ``;``) must name
  a real command.

Besides the blocks: every command and every option of ``seqprep.cli.cli`` (long and short names)
appears in docs/*.md and has help text; the public API is named in docs/python-api.md; every
meta.json key, every ``stats --json`` key and the Parquet encodings are as docs/outputs.md and
docs/stats.md say; relative links and their anchors resolve; every docs page is linked from README.md
and docs/index.md.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import re
import shlex
import shutil
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import seqprep
from seqprep.cli import cli
from tests.conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
SAMPLE = ROOT / "sample_data" / "ratings.csv"
SHELL_LANGS = {"", "sh", "bash", "console", "shell"}


# --------------------------------------------------------------------------------------------------
# Reading Markdown


@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    def directives(self) -> dict[str, str]:
        """The ``# key: value`` / ``# key`` comment lines at the top of the block."""
        found: dict[str, str] = {}
        for text in self.code.splitlines():
            m = re.fullmatch(r"#\s*(needs|continues|stdin)\b:?\s*(.*)", text.strip())
            if not m:
                break
            found[m.group(1)] = m.group(2).strip()
        return found


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, in order."""
    out: list[Block] = []
    lang = start = None
    body: list[str] = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if lang is None:
            m = re.match(r"^```\s*([\w-]*)\s*$", text)
            if m:
                lang, start, body = m.group(1).lower(), n, []
        elif text.startswith("```"):
            out.append(Block(path, start, lang, "\n".join(body) + "\n"))
            lang = None
        else:
            body.append(text)
    assert lang is None, f"{path.name}: the fence opened on line {start} is never closed"
    return out


def prose(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced blocks."""
    lines, fenced = [], False
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((n, text))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for _, text in prose(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", text)
        if m:
            s = slug(m.group(1))
            k = seen.get(s, 0)
            seen[s] = k + 1
            if k:
                seen[f"{s}-{k}"] = 1
    return set(seen)


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in PAGES)


# --------------------------------------------------------------------------------------------------
# The CLI reference


def _commands() -> list[tuple[str, click.Command]]:
    return [("", cli)] + sorted(cli.commands.items())


def _options() -> list[tuple[str, str]]:
    """(command, option name) for every --long and -x name of every command, --no-x included."""
    pairs = []
    for name, cmd in _commands():
        ctx = click.Context(cmd, info_name=name or "seqprep")
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option):
                pairs += [(name or "seqprep", opt) for opt in (*param.opts, *param.secondary_opts)]
    return pairs


def _mentioned(option: str, text: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is not None


def test_the_walk_finds_the_cli():
    assert {"build", "stats", "verify"} <= set(cli.commands)
    assert len(_options()) > 60


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name):
    assert re.search(rf"\bseqprep {name}\b", docs_text()), f"docs/*.md never show `seqprep {name}`"
    assert (DOCS / f"{name}.md").is_file(), f"`seqprep {name}` has no page docs/{name}.md"


@pytest.mark.parametrize(("command", "option"), _options(), ids=lambda x: x)
def test_every_option_is_documented(command, option):
    assert _mentioned(option, docs_text()), f"{command} {option} is not mentioned in docs/*.md"


@pytest.mark.parametrize("name", [n or "seqprep" for n, _ in _commands()])
def test_every_command_and_option_has_help(name):
    cmd = cli if name == "seqprep" else cli.commands[name]
    assert cmd.help and cmd.help.strip(), f"{name} has no help"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), f"{name} {'/'.join(param.opts)} has no help"


def test_build_options_are_python_keywords():
    """python-api.md: every build flag is a keyword named like it, except the ones in its table."""
    keywords = set()
    for f in dataclasses.fields(seqprep.BuildConfig):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        keywords |= {g.name for g in dataclasses.fields(value)} if dataclasses.is_dataclass(value) else {f.name}
    api = (DOCS / "python-api.md").read_text(encoding="utf-8")
    renamed = []
    for param in cli.commands["build"].params:
        if not isinstance(param, click.Option) or param.name in ("as_json", "quiet", "explain"):
            continue
        assert param.name in keywords, f"build {param.opts} ({param.name}) is not a keyword of seqprep.build"
        flag = max(param.opts, key=len)
        if flag.lstrip("-").replace("-", "_") != param.name:
            renamed.append(param.name)
            row = next((r for r in api.splitlines() if r.startswith("|") and _mentioned(flag, r)), "")
            assert f"`{param.name}" in row, f"python-api.md's keyword table does not map {flag} to {param.name}"
    assert sorted(renamed) == ["block_bytes", "exports", "features", "formats", "item_attrs", "time_features", "user_attrs"]


def test_shell_completion_works_as_documented():
    install = (DOCS / "install.md").read_text(encoding="utf-8")
    shells = re.findall(r"_SEQPREP_COMPLETE=(\w+)_source seqprep", install)
    assert sorted(shells) == ["bash", "fish", "zsh"]
    for shell in shells:
        r = CliRunner().invoke(cli, [], prog_name="seqprep", env={"_SEQPREP_COMPLETE": f"{shell}_source"})
        assert r.exit_code == 0 and "_seqprep_completion" in r.output, (shell, r.output)


# --------------------------------------------------------------------------------------------------
# Runnable python blocks


def _python_chains() -> list[list[Block]]:
    """Each python block, or a block with the ``# continues`` blocks that follow it."""
    chains: list[list[Block]] = []
    for path in [README, *PAGES]:
        for b in blocks(path):
            if b.lang != "python":
                continue
            if "continues" in b.directives():
                assert chains and chains[-1][0].path == path, f"{b.name}: '# continues' has no block before it"
                chains[-1].append(b)
            else:
                chains.append([b])
    return chains


def _needs(chain: list[Block]) -> list[str]:
    names = [m.strip() for b in chain for m in b.directives().get("needs", "").split(",")]
    return [m for m in names if m and importlib.util.find_spec(m) is None]


def _stdin_for(command: str) -> io.TextIOWrapper:
    args = shlex.split(command)
    assert args[0] == "seqprep", f"# stdin: must be a seqprep command, not {command!r}"
    r = CliRunner().invoke(cli, args[1:], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return io.TextIOWrapper(io.BytesIO(r.stdout_bytes))


CHAINS = _python_chains()


def test_there_are_python_blocks():
    assert len(CHAINS) >= 15
    assert any(b.path == README for chain in CHAINS for b in chain)


@pytest.mark.parametrize("chain", CHAINS, ids=[c[0].name for c in CHAINS])
def test_python_block_runs(chain, tmp_path, monkeypatch):
    missing = _needs(chain)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    shutil.copy(SAMPLE, tmp_path / "ratings.csv")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for b in chain:
        command = b.directives().get("stdin")
        if command:
            monkeypatch.setattr(sys, "stdin", _stdin_for(command))
        exec(compile(b.code, b.name, "exec"), namespace)  # noqa: S102 - the docs' own code


# --------------------------------------------------------------------------------------------------
# Shell blocks name real commands

_COMMAND_WORD = re.compile(
    r"(?:^|&&|[|;(]|\$\s)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:python -m\s+)?seqprep\s+([a-z][\w-]*)"
)


def _shell_commands() -> list[tuple[str, str]]:
    found = []
    for path in [README, *PAGES, ROOT / "benchmarks" / "README.md"]:
        for b in blocks(path):
            if b.lang in SHELL_LANGS:
                for n, text in enumerate(b.code.splitlines(), b.line + 1):
                    for word in _COMMAND_WORD.findall(text):
                        found.append((f"{path.relative_to(ROOT).as_posix()}:{n}", word))
    return found


def test_shell_blocks_name_real_commands():
    found = _shell_commands()
    assert len(found) > 40, "the pattern no longer finds the shell commands of the docs"
    wrong = [f"{where}: seqprep {word}" for where, word in found if word not in cli.commands]
    assert not wrong, "not seqprep commands: " + "; ".join(wrong)


def test_the_command_pattern():
    lines = {
        "seqprep build x -o y": ["build"],
        "$ seqprep verify out/": ["verify"],
        "zcat a.gz | seqprep build - -o o && seqprep stats o/ --json | jq .": ["build", "stats"],
        "_SEQPREP_COMPLETE=bash_source seqprep > f": [],
        "pip install 'seqprep[plot]'": [],
        "seqprep: 2,855 rows read": [],
        "python -m seqprep buidl x": ["buidl"],
    }
    for text, words in lines.items():
        assert _COMMAND_WORD.findall(text) == words, text


# --------------------------------------------------------------------------------------------------
# Links and the page map


def _links(path: Path) -> list[tuple[int, str]]:
    return [
        (n, target)
        for n, text in prose(path)
        for target in re.findall(r"\]\(([^)\s]+)\)", text)
        if not re.match(r"[a-z]+:", target)
    ]


@pytest.mark.parametrize("path", [README, *PAGES, ROOT / "benchmarks" / "README.md"], ids=lambda p: p.name)
def test_links_resolve(path):
    broken = []
    for n, target in _links(path):
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"line {n}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"line {n}: {target} (no heading #{anchor} in {dest.name})")
    assert not broken, "; ".join(broken)


def test_every_page_is_linked_from_readme_and_index():
    for hub in (README, DOCS / "index.md"):
        linked = {(hub.parent / t.partition("#")[0]).resolve() for _, t in _links(hub)}
        missing = [p.name for p in PAGES if p.resolve() not in linked and p != hub]
        assert not missing, f"{hub.relative_to(ROOT)} does not link {', '.join(missing)}"


def test_readme_keeps_the_setup_commands_on_top():
    """CI (.ci/run) runs the second line; a new user runs the first."""
    first = blocks(README)[0]
    assert first.line == 3
    assert first.code == "pip install . && seqprep build sample_data/ratings.csv -o out/\npip install '.[test]' && pytest\n"
    assert "pip install '.[test]' && pytest" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# The API and the file formats are as documented


def test_public_api_is_documented():
    api = (DOCS / "python-api.md").read_text(encoding="utf-8")
    for name in seqprep.__all__:
        assert f"`{name}" in api or f"{name}`" in api, f"python-api.md does not name seqprep.{name}"
    for cls in (seqprep.Dataset, seqprep.Vocabulary, seqprep.VerifyReport, seqprep.BuildResult, seqprep.BuildConfig):
        members = {m for m in vars(cls) if not m.startswith("_")} | {f.name for f in dataclasses.fields(cls)}
        missing = sorted(m for m in members if not re.search(rf"`(?:\w+\.)?{m}\b", api))
        assert not missing, f"python-api.md does not name {cls.__name__}.{', '.join(missing)}"


def _full_builds(tmp_path: Path) -> list[dict]:
    """meta.json of builds that, between them, use every option that adds a key."""
    base = tmp_path / "week1"
    seqprep.build(SAMPLE, base, until="2016-01-01")
    a = seqprep.build(
        SAMPLE, tmp_path / "a", since="2010-01-01", min_rating=1, dedup="first", min_user_count=3,
        min_item_count=2, vocab_from=str(base), unknown="oov", session_gap="1h", split="loo",
        max_len=5, windows="3:1", eval_negatives=3, formats=("parquet", "npz"), exports=("sasrec",),
    )
    b = seqprep.build(SAMPLE, tmp_path / "b", split="users:0.8,0.1,0.1", vocab_from_train=True)
    c = seqprep.build(SAMPLE, tmp_path / "c", split="time:0.8,0.9")
    d = seqprep.build(SAMPLE, tmp_path / "d", features=("rating:cat",), time_features=("hour", "delta"))
    e = seqprep.build(SAMPLE, tmp_path / "e", features=("rating:cat",), time_features=("hour", "delta"), vocab_from=str(tmp_path / "d"), unknown="oov")
    f = seqprep.build(_session_log(tmp_path), tmp_path / "f", session_col="sid", time_col="day,ms", where=["ms > 0"])
    g = seqprep.build(
        SAMPLE, tmp_path / "g", preset="sasrec", kcore_rounds=None, kcore_passes="user,item", min_item_count=2,
        user_order="date", item_order="sequence", split="days:30",
    )
    return [a.meta, b.meta, c.meta, d.meta, e.meta, f.meta, g.meta]


def _session_log(tmp_path: Path) -> Path:
    """A session-keyed log with a date and a millisecond offset (the Diginetica layout)."""
    p = tmp_path / "sessions.csv"
    p.write_text("sid;user_id;item;ms;day\n1;NA;10;5;2016-05-09\n1;7;11;3;2016-05-09\n2;8;10;1;2016-05-10\n", encoding="utf-8")
    return p


def _documented_keys(page: Path) -> set[str]:
    return set(re.findall(r"`([\w]+)`", page.read_text(encoding="utf-8")))


def test_every_meta_key_is_documented(tmp_path):
    documented = _documented_keys(DOCS / "outputs.md")
    used: set[str] = set()
    for meta in _full_builds(tmp_path):
        used |= set(meta)
        for step in meta["steps"]:
            used |= set(step)
        used |= set(meta.get("preset") or {}) | {k for step in meta["steps"] for p in step.get("passes", []) for k in p}
        for section in ("split", "sessions", "negatives", "windows", "truncation", "vocab_reuse", "sort", "ties", "timestamp", "rows", "session_key"):
            used |= set(meta.get(section) or {})
        if "split" in meta:
            used |= set(meta["split"]["sizes"]) | set(meta["split"]["sizes"]["valid"])
        used |= set(meta["inputs"][0]) | set(meta["inputs"][0]["columns"])
        used |= set(meta["options"]) | set(meta["outputs"])
        for entry in (meta.get("features") or {}).values():
            used |= set(entry)
    used.add("engine")  # a Dask build's key; its own keys are checked in tests/test_dask_engine.py
    missing = sorted(used - documented)
    assert not missing, f"docs/outputs.md does not document meta.json keys {missing}"


def _keys(doc: object, skip: tuple[str, ...] = ("steps", "rule")) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for key, v in doc.items() if key not in skip for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def test_every_stats_json_key_is_documented(tmp_path):
    import seqprep.stats

    seqprep.build(SAMPLE, tmp_path / "out", split="loo", min_item_count=2)
    doc = seqprep.stats.describe([SAMPLE, tmp_path / "out", tmp_path / "out" / "train.parquet"])
    assert [d["kind"] for d in doc["datasets"]] == ["raw", "built", "split"]
    stats_md = (DOCS / "stats.md").read_text(encoding="utf-8")
    missing = sorted(k for k in _keys(doc) if f'"{k}"' not in stats_md)
    assert not missing, f"docs/stats.md's --json schema lacks {missing}"


def _encoding_table() -> list[tuple[set[str], str, str]]:
    """(columns, encoding, compression) rows of outputs.md's encodings table."""
    text = (DOCS / "outputs.md").read_text(encoding="utf-8")
    table = text[text.index("| columns | encoding | compression |") :].split("\n\n")[0]
    rows = []
    for line in table.splitlines()[2:]:
        cols, enc, comp = (c.strip() for c in line.strip("|").split("|"))
        rows.append((set(re.findall(r"`(\w+)`", cols)), enc, comp))
    return rows


def test_parquet_encodings_are_as_documented(tmp_path):
    import pyarrow.parquet as pq

    seqprep.build(SAMPLE, tmp_path / "o", session_gap="1h", split="loo", eval_negatives=2)
    seqprep.build(_session_log(tmp_path), tmp_path / "s", session_col="sid", time_col="day,ms")
    table = _encoding_table()
    seen = set()
    for f in sorted((tmp_path / "o").glob("*.parquet")) + [tmp_path / "s" / "sessions.parquet"]:
        md = pq.ParquetFile(f).metadata
        for i in range(md.num_columns):
            col = md.row_group(0).column(i)
            name = col.path_in_schema.split(".")[0]
            row = next((r for r in table if name in r[0]), None)
            assert row is not None, f"outputs.md's encodings table has no row for {f.name} {name}"
            _, enc, comp = row
            assert enc in col.encodings, f"{f.name} {name}: {col.encodings}, outputs.md says {enc}"
            assert {"none": "UNCOMPRESSED"}.get(comp, comp.upper()) == col.compression, f"{f.name} {name}"
            seen.add(name)
    assert {"items", "timestamps", "ratings", "history", "negatives", "session_ids", "count", "session_id"} <= seen
