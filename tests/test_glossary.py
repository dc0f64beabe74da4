"""Glossary data (book/glossary.yml) and its MyST renderer (mixlib.chapters.glossary)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixlib.chapters.glossary import (
    GlossaryEntry,
    load_glossary,
    render_glossary_markdown,
    term_role,
    write_glossary_page,
)

REPOSITORY = Path(__file__).resolve().parents[1]
DATA_PATH = REPOSITORY / "book" / "glossary.yml"
SHARED = REPOSITORY.parent / "shared"  # the shared data beside the repository, as conftest finds it
SEED_TERMS = [
    "Discriminative Region Problem",
    "Dynamic Masking Augmentation Techniques",
    "F1 score",
    "False Positive Rate (FPR)",
    "Generative Image Augmentation",
    "ImageNet",
    "Jetson AGX Orin",
    "L1 Regularization (Lasso)",
    "L2 Regularization (Ridge)",
    "Linear Attention",
    "Mixed-Sample Data Augmentation",
    "MSDA Regularization",
    "Poisson Distribution",
    "precision (metric)",
    "recall (metric)",
    "Regularization",
    "SEAM",
    "Sparse mixture-of-expert models",
    "WSOL",
    "WSSS",
]
COPY_WORDS = 8


@pytest.fixture(scope="module")
def entries() -> list[GlossaryEntry]:
    return load_glossary(DATA_PATH)


@pytest.fixture(scope="module")
def by_key(entries: list[GlossaryEntry]) -> dict[str, GlossaryEntry]:
    return {entry.key: entry for entry in entries}


def _seed_path() -> Path:
    """The seed glossary in ../shared/seeds/; skipped only where there is no ../shared at all."""
    if not SHARED.is_dir():
        pytest.skip(f"the shared data folder {SHARED} is not available here")
    seed_name = yaml.safe_load(DATA_PATH.read_text(encoding="utf-8"))["seed"]
    path = SHARED / "seeds" / seed_name
    assert path.is_file(), f"{SHARED} is here but the seed glossary {path} is missing"
    return path


def _seed_term_lines(text: str) -> list[str]:
    """Term lines of the seed: short lines that are neither sentences, list items nor citations."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and len(line.split()) <= 6
        and not re.search(r"[.:!?]$", line.strip())
        and not line.strip().startswith(("-", "["))
    ]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _normalised(text: str) -> str:
    return " ".join(text.split()).lower()


def test_every_seed_term_has_an_entry(entries: list[GlossaryEntry]) -> None:
    terms = {entry.term.casefold() for entry in entries}
    assert [term for term in SEED_TERMS if term.casefold() not in terms] == []


def test_seed_file_terms_match_the_data(entries: list[GlossaryEntry]) -> None:
    parsed = _seed_term_lines(_seed_path().read_text(encoding="utf-8"))
    assert sorted(parsed, key=str.casefold) == sorted(SEED_TERMS, key=str.casefold)
    terms = {entry.term.casefold() for entry in entries}
    assert [term for term in parsed if term.casefold() not in terms] == []


def test_definitions_are_substantial(entries: list[GlossaryEntry]) -> None:
    assert {
        entry.key: len(entry.definition.split()) for entry in entries if len(entry.definition.split()) < 30
    } == {}


def test_l2_entry_is_its_own_squared_norm_penalty(by_key: dict[str, GlossaryEntry]) -> None:
    l1, l2 = by_key["l1-regularization"].definition, by_key["l2-regularization"].definition
    assert l1 != l2
    assert r"\lVert \mathbf{w} \rVert_2^2" in l2
    assert r"\rVert_1" not in l2
    assert r"\lVert \mathbf{w} \rVert_1" in l1


def test_fpr_entry_has_formula_and_reporting_convention(by_key: dict[str, GlossaryEntry]) -> None:
    entry = by_key["false-positive-rate"]
    definition = _normalised(entry.definition)
    assert r"\mathrm{fpr} = \frac{fp}{fp + tn} = 1 - \text{specificity}" in definition
    assert "one-vs-rest" in definition and "macro" in definition
    assert "FPR" in entry.aliases


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("f1-score", r"\frac{2PR}{P + R}"),
        ("precision", r"\frac{TP}{TP + FP}"),
        ("recall", r"\frac{TP}{TP + FN}"),
        ("poisson-distribution", r"\frac{\lambda^k e^{-\lambda}}{k!}"),
        ("msda-regularization", r"\lambda_{ent}\,\mathcal{L}_{ent}(I')"),
        ("msda-regularization", r"P^c(h,w) \log P^c(h,w)"),
        ("msda-regularization", r"\mu^c_h = \sum_{h,w} h\, \hat{M}^c(h,w)"),
        ("seam", r"\lVert A(\hat{y}^{o}) - \hat{y}^{t} \big\rVert_1"),
        ("mixed-sample-data-augmentation", r"\mathbf{M} \odot x_a + (\mathbf{1} - \mathbf{M}) \odot x_b"),
        ("mixup", r"\lambda \sim \mathrm{Beta}(\alpha, \alpha)"),
        ("linear-attention", "O(N^2 d)"),
        ("linear-attention", "O(N d^2)"),
    ],
)
def test_restored_formulas(by_key: dict[str, GlossaryEntry], key: str, fragment: str) -> None:
    assert _normalised(fragment) in _normalised(by_key[key].definition)


def test_seed_slips_are_fixed(by_key: dict[str, GlossaryEntry]) -> None:
    orin = by_key["jetson-agx-orin"].definition
    assert all(fact in orin for fact in ("64 GB", "2048 CUDA cores", "204.8 GB/s", "0.640 ms"))
    seam = by_key["seam"].definition
    assert "equivariant" in seam and "invariant" in seam
    assert "CAMs are translation and transformation invariant" not in seam


def test_no_seed_sentence_is_copied() -> None:
    seed = _seed_path().read_text(encoding="utf-8")
    data = _normalised(DATA_PATH.read_text(encoding="utf-8"))
    sentences = [s.strip(" .") for s in re.split(r"(?<=[.!?])\s+|\n", seed)]
    long_sentences = [s for s in sentences if len(s.split()) >= COPY_WORDS]
    assert len(long_sentences) > 20  # the split found the seed's prose
    assert [s for s in long_sentences if _normalised(s) in data] == []


def test_no_run_of_eight_seed_words_is_copied() -> None:
    seed = _words(_seed_path().read_text(encoding="utf-8"))
    data = _words(DATA_PATH.read_text(encoding="utf-8"))

    def runs(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + COPY_WORDS]) for i in range(len(words) - COPY_WORDS + 1)}

    assert sorted(" ".join(run) for run in runs(seed) & runs(data)) == []


def test_rendered_page_is_one_glossary_directive_with_every_name(entries: list[GlossaryEntry]) -> None:
    markdown = render_glossary_markdown(entries)
    assert markdown.startswith("# Glossary\n")
    match = re.search(r"^```\{glossary\}\n(.*?)^```$", markdown, flags=re.M | re.S)
    assert match is not None
    block = match.group(1).splitlines()
    term_lines = {line for line in block if line and not line[0].isspace()}
    assert term_lines == {name for entry in entries for name in entry.names}
    assert {term for term in SEED_TERMS} <= term_lines
    # every definition line is indented, so Sphinx does not take it for a term
    assert all(line.startswith("  ") for line in block if line and line not in term_lines)


def test_rendered_see_also_links_terms(entries: list[GlossaryEntry]) -> None:
    markdown = render_glossary_markdown(entries)
    assert "**See also:** {term}`L1 Regularization (Lasso)`" in markdown


def test_fence_outgrows_code_blocks_in_definitions() -> None:
    entry = GlossaryEntry(term="Fenced", key="fenced", definition="Example:\n\n```python\nx = 1\n```")
    markdown = render_glossary_markdown([entry])
    assert "````{glossary}\n" in markdown and markdown.endswith("\n````\n")


def test_write_glossary_page(tmp_path: Path, entries: list[GlossaryEntry]) -> None:
    out = write_glossary_page(DATA_PATH, tmp_path / "generated" / "glossary.md")
    assert out == tmp_path / "generated" / "glossary.md"
    assert out.read_text(encoding="utf-8") == render_glossary_markdown(entries)


def test_term_role(by_key: dict[str, GlossaryEntry]) -> None:
    entry = by_key["discriminative-region-problem"]
    assert term_role(entry) == "{term}`Discriminative Region Problem`"
    assert term_role(entry, "this problem") == "{term}`this problem <Discriminative Region Problem>`"


def _entry(key: str, **fields: object) -> dict[str, object]:
    return {"term": key.title(), "key": key, "definition": f"About {key}.", **fields}


@pytest.mark.parametrize(
    ("entries_data", "message"),
    [
        ([_entry("alpha"), _entry("alpha")], r"'alpha'.*'key'.*duplicate key"),
        ([_entry("alpha", see_also=["beta"])], r"'alpha'.*'see_also'.*'beta'"),
        ([_entry("alpha", see_also=["alpha"])], r"'alpha'.*'see_also'"),
        ([{"term": "Alpha", "key": "alpha"}], r"'alpha'.*'definition'.*required"),
        ([_entry("alpha", definition="   ")], r"'alpha'.*'definition'"),
        ([_entry("alpha", aliases="A")], r"'alpha'.*'aliases'.*list"),
        ([_entry("alpha", seealso=["beta"])], r"'alpha'.*'seealso'.*unknown field"),
        ([_entry("alpha"), _entry("beta", aliases=["ALPHA"])], r"'beta'.*'aliases'.*'ALPHA'.*'alpha'"),
        ([_entry("alpha", definition="See {term}`Gamma`.")], r"'alpha'.*'definition'.*'Gamma'"),
        ([_entry("Alpha Key")], r"'key'.*slug"),
        ([_entry("alpha", term="Alpha : beta")], r"'alpha'.*'term'.*term line"),
        ([], r"'entries'"),
    ],
)
def test_validation_errors(tmp_path: Path, entries_data: list[dict[str, object]], message: str) -> None:
    path = tmp_path / "glossary.yml"
    path.write_text(yaml.safe_dump({"seed": "000_test.txt", "entries": entries_data}), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_glossary(path)


def test_validation_accepts_explicit_term_targets(tmp_path: Path) -> None:
    path = tmp_path / "glossary.yml"
    data = [_entry("alpha", aliases=["A1"]), _entry("beta", definition="Unlike {term}`the first <a1>`.")]
    path.write_text(yaml.safe_dump({"seed": "000_test.txt", "entries": data}), encoding="utf-8")
    assert [entry.key for entry in load_glossary(path)] == ["alpha", "beta"]


def test_missing_seed_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "glossary.yml"
    path.write_text(yaml.safe_dump({"entries": [_entry("alpha")]}), encoding="utf-8")
    with pytest.raises(ValueError, match="'seed'"):
        load_glossary(path)


BOOK_CONFIG = """\
title: Glossary check
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [dollarmath, amsmath, colon_fence, deflist]
"""
BOOK_TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: glossary\n"
BOOK_INTRO = """\
# Intro

{term}`CutMix`, {term}`FPR`, {term}`weight decay` and
{term}`the discriminative region problem <Discriminative Region Problem>`.
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jupyter_book") is None, reason="jupyter-book not installed")
def test_page_builds_without_warnings(tmp_path: Path) -> None:
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text(BOOK_CONFIG, encoding="utf-8")
    (book / "_toc.yml").write_text(BOOK_TOC, encoding="utf-8")
    (book / "intro.md").write_text(BOOK_INTRO, encoding="utf-8")
    write_glossary_page(DATA_PATH, book / "glossary.md")
    build = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(book)]
        + ["-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = (book / "_build" / "html" / "glossary.html").read_text(encoding="utf-8")
    assert html.count('<div class="math notranslate nohighlight">') >= 20
    assert "$$" not in html
    intro = (book / "_build" / "html" / "intro.html").read_text(encoding="utf-8")
    assert 'href="glossary.html#term-FPR"' in intro


def test_a_missing_seed_glossary_fails_where_the_shared_folder_exists(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(globals(), "SHARED", tmp_path)  # a ../shared without seeds/
    with pytest.raises(AssertionError, match="seed glossary .* is missing"):
        _seed_path()
