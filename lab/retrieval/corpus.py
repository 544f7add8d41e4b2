"""Reading a corpus: a folder of .md, .txt, .html and .jsonl files turned into plain-text documents.

A file that cannot be read as text (binary, not UTF-8, empty, an unsupported type) is skipped
with a warning that names it; a corpus with no readable document is an error. A document's
character spans refer to its text: the file itself for .md/.txt, the extracted text for .html,
the `text` field for a .jsonl line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

TEXT_TYPES = {".md", ".markdown", ".txt", ".text", ".rst"}
HTML_TYPES = {".html", ".htm"}
SUPPORTED = TEXT_TYPES | HTML_TYPES | {".jsonl", ".pdf"}


class RetrievalError(ValueError):
    """A corpus, index or embedder problem the user can fix; the message names the path."""


class CorpusWarning(UserWarning):
    """A file (or some lines of it) was skipped; the message names it."""


class SkipFile(Exception):
    """This file is not a usable document; the message says why."""


@dataclass
class SourceFile:
    rel: str  # path relative to the corpus root, with forward slashes
    path: Path
    size: int
    mtime_ns: int


@dataclass
class Document:
    source: str  # rel path, plus "#id" for a .jsonl line
    file: str  # rel path of the file it came from
    title: str
    text: str


# The checkout's sample corpora (`acme`): a bare name the home lacks is looked up here, by every
# command alike (`lab index acme`, a task's `corpus = "acme"`), and never written to.
SAMPLE_CORPORA = Path(__file__).resolve().parents[2] / "corpora"


def resolve_corpus(home, corpus: str | Path, indexes: Path | None = None) -> tuple[str, Path | None]:
    """(name, folder) for a corpus name (a folder under the home's corpora/, else one of the
    checkout's sample corpora) or a path. The folder is None when only an index of that name exists."""
    arg = str(corpus)
    named = home.corpora / arg
    bare = "/" not in arg and "\\" not in arg
    if bare and named.is_dir():
        return arg, named.resolve()
    if bare and (SAMPLE_CORPORA / arg).is_dir() and not Path(arg).expanduser().is_dir():
        return arg, (SAMPLE_CORPORA / arg).resolve()
    path = Path(arg).expanduser()
    if path.is_dir():
        return path.resolve().name, path.resolve()
    if path.exists():
        raise RetrievalError(f"{path} is a file; a corpus is a folder of .md, .txt, .html or .jsonl files")
    if indexes is not None and "/" not in arg and (indexes / arg / "CURRENT").exists():
        return arg, None
    raise RetrievalError(
        f"no corpus '{arg}': neither {named} nor {path.resolve()} is a folder "
        "(a corpus is a folder of .md, .txt, .html or .jsonl files)"
    )


def scan(root: Path) -> tuple[list[SourceFile], list[str]]:
    """Every candidate file under `root` (hidden files and folders ignored), and warnings for
    files of a type the lab cannot read."""
    files, skipped = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts) or not path.is_file():
            continue
        if path.suffix.lower() not in SUPPORTED:
            skipped.append(
                f"{path}: skipped, unsupported file type '{path.suffix or '(none)'}' (use .md, .txt, .html or .jsonl)"
            )
            continue
        st = path.stat()
        files.append(SourceFile(rel, path, st.st_size, st.st_mtime_ns))
    return files, skipped


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_documents(sf: SourceFile, data: bytes, warn=print) -> list[Document]:
    """The documents in one file's bytes; raises SkipFile naming the reason. `warn(message)`
    hears about bad lines of a .jsonl file whose good lines are kept."""
    suffix = sf.path.suffix.lower()
    if suffix == ".pdf":
        return [Document(sf.rel, sf.rel, sf.path.stem, _pdf_text(sf, data))]
    if b"\x00" in data[:8192]:
        raise SkipFile(f"{sf.path}: skipped, binary file (not text)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SkipFile(f"{sf.path}: skipped, not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise SkipFile(f"{sf.path}: skipped, empty file")
    if suffix in HTML_TYPES:
        title, body = html_to_text(text)
        if not body.strip():
            raise SkipFile(f"{sf.path}: skipped, the HTML has no text")
        return [Document(sf.rel, sf.rel, title or sf.path.stem, body)]
    if suffix == ".jsonl":
        return _jsonl_documents(sf, text, warn)
    return [Document(sf.rel, sf.rel, text_title(text) or sf.path.stem, text)]


def text_title(text: str) -> str:
    """The first markdown heading, else a short first line, else ''."""
    m = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)
    if m:
        return m.group(1).strip()
    first = text.strip().split("\n", 1)[0].strip()
    return first if len(first) <= 80 else ""


def _jsonl_documents(sf: SourceFile, text: str, warn) -> list[Document]:
    docs, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: not JSON ({e.msg})")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            problems.append(f"line {n}: no 'text' string field")
            continue
        doc_id = str(row.get("id", n))
        title = str(row.get("title") or f"{sf.path.stem} {doc_id}")
        docs.append(Document(f"{sf.rel}#{doc_id}", sf.rel, title, row["text"]))
    if problems:
        # One warning per file (not per line), naming the lines; the good lines are kept.
        warn(
            f"{sf.path}: skipped {len(problems)} line(s): "
            + "; ".join(problems[:5])
            + (" ..." if len(problems) > 5 else "")
        )
    if not docs:
        raise SkipFile(f"{sf.path}: skipped, no line has a 'text' field")
    return docs


def _pdf_text(sf: SourceFile, data: bytes) -> str:
    try:
        import pypdf  # optional: not a dependency of the lab
    except ImportError:
        raise SkipFile(f"{sf.path}: skipped, PDF needs `pip install pypdf` (or convert it to .txt)") from None
    import io

    try:
        text = "\n\n".join(page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    except Exception as e:  # pypdf raises many kinds on broken files
        raise SkipFile(f"{sf.path}: skipped, unreadable PDF ({e})") from None
    if not text.strip():
        raise SkipFile(f"{sf.path}: skipped, the PDF has no text layer")
    return text


# ---- HTML -> text with markdown-style headings, so chunking sees the structure ---------

_BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "tr",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "header",
    "footer",
    "main",
    "dl",
    "dt",
    "dd",
    "br",
    "hr",
    "figure",
    "figcaption",
}
_SKIP = {"script", "style", "head", "noscript", "template", "svg", "nav"}


class _HTMLText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.first_h1 = ""
        self._skip = 0
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
            self._in_h1 = tag == "h1"
        elif tag in _BLOCKS:
            self.parts.append("\n\n" if tag not in ("br", "li", "tr", "dt", "dd") else "\n")
            if tag == "li":
                self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n")
            self._in_h1 = False
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)
            if self._in_h1:
                self.first_h1 += data


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text): visible text with headings as '# ...' lines and blank lines between blocks."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    raw = "".join(parser.parts)
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in raw.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    title = " ".join((parser.title or parser.first_h1).split())
    return title, text


# ---- editing a corpus: only ever inside the lab home ------------------------------------------

EDITABLE = (".md", ".txt", ".html", ".jsonl")  # what the app edits as text
CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _inside(path: Path, root: Path) -> bool:
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def home_corpus(home, ref: str | Path) -> Path:
    """The folder inside the lab home where edits of corpus `ref` go. A corpus outside the home
    (the checkout's sample `acme` when the home has none, or a path) is first copied into
    <home>/corpora/<name>: the lab never writes outside its home, and the original stays as it was."""
    name, folder = resolve_corpus(home, ref, home.indexes)
    if folder is not None and _inside(folder, home.root):
        return folder
    target = home.corpora / name
    if target.is_dir() and _inside(target, home.root):  # copied before: edit the copy
        return target.resolve()
    if target.exists() or target.is_symlink():
        raise RetrievalError(
            f"{target} leads to {target.resolve()}, outside the lab home {home.root}: the lab "
            "does not write there (replace the link with a copy of the folder)"
        )
    if folder is None:
        raise RetrievalError(f"corpus '{name}' has an index but no folder: nothing to copy into {target}")
    return copy_into_home(home, folder, name)


def copy_into_home(home, folder: Path, name: str) -> Path:
    """Copy the corpus `folder` into <home>/corpora/<name> (hidden files left out, links copied as
    the files they lead to), all or nothing: copied aside, then renamed into place. The one copy
    the Knowledge tab (before a first edit) and `lab task new --corpus` (a folder) both make."""
    target = home.corpora / name
    if target.exists() or target.is_symlink():
        raise RetrievalError(f"{target} already exists: the lab home has a corpus '{name}'")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{name}.copying-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        shutil.copytree(folder, scratch, ignore=shutil.ignore_patterns(".*"), symlinks=False)
        scratch.rename(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target.resolve()


def corpus_to_attach(home, ref: str | Path) -> tuple[str, Path | None]:
    """(name, folder to copy) for a task's `corpus = "NAME"` from `ref`, a corpus name or a folder.
    A corpus of the lab home (<home>/corpora/NAME) or a sample one (`acme`) is referenced by its
    name as it is: (name, None). Any other folder is copied into <home>/corpora/<its name>
    (`copy_into_home`, as the Knowledge tab copies a corpus), since a task finds its corpus by name
    and the lab never writes outside its home: (name, the folder). Nothing is written here. A
    missing name or folder, a file, a folder without one document the lab reads, or a name the
    home already gives another folder is a RetrievalError naming it."""
    arg = str(ref).strip()
    if not arg:
        raise RetrievalError("no corpus given: name one of the lab home's corpora, or give a folder")
    name, folder = resolve_corpus(home, arg)
    target = home.corpora / name
    if target.exists() or target.is_symlink():
        if folder == target.resolve():
            return name, None  # the home's own
        raise RetrievalError(
            f"{folder}: the lab home already has another corpus named '{name}' ({target}): "
            "rename the folder, or attach the home's corpus by its name"
        )
    if folder == (SAMPLE_CORPORA / name).resolve():
        return name, None  # a sample corpus: found by name from any home, never written to
    if not CORPUS_NAME.fullmatch(name):
        raise RetrievalError(
            f"{folder}: '{name}' cannot name a corpus (use letters, digits, '-' and '_', up to 64, no spaces): "
            "rename the folder"
        )
    files, _skipped = scan(folder)
    if not files:
        raise RetrievalError(f"{folder}: no document in it (a corpus is a folder of .md, .txt, .html or .jsonl files)")
    return name, folder


def create_corpus(home, name: str) -> Path:
    """A new, empty corpus folder <home>/corpora/<name>."""
    name = (name or "").strip()
    if not CORPUS_NAME.fullmatch(name):
        raise RetrievalError(f"corpus name '{name}': use letters, digits, '-' and '_' (up to 64, no spaces)")
    target = home.corpora / name
    if target.exists() or target.is_symlink():
        raise RetrievalError(f"{target} already exists: pick another name")
    target.mkdir(parents=True)
    return target


def document_path(folder: Path, rel: str, types=EDITABLE) -> Path:
    """A document path inside the corpus folder, never outside it, of a type the lab reads."""
    rel = (rel or "").strip()
    if not rel:
        raise RetrievalError("give the document a file name, e.g. notes/new-policy.md")
    path = (folder / rel).resolve()
    if not _inside(path, folder) or path == folder.resolve():
        raise RetrievalError(f"{rel}: a document must stay inside the corpus folder {folder}")
    if path.suffix.lower() not in types:
        raise RetrievalError(f"{rel}: use one of {', '.join(types)}")
    if any(part.startswith(".") for part in Path(rel).parts):
        raise RetrievalError(f"{rel}: hidden files are not indexed")
    return path


def write_document(home, ref: str | Path, rel: str, text: str) -> tuple[Path, bool]:
    """Write one text document into the corpus (its home copy); (path, whether it existed)."""
    path = document_path(home_corpus(home, ref), rel)
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written document
    return path, existed


def add_files(home, ref: str | Path, files, into: str = "") -> tuple[list[str], list[str]]:
    """Copy files (uploads) into the corpus, under the sub-folder `into`: (added paths relative
    to the corpus, skipped files with why). A file of the same name is replaced."""
    folder = home_corpus(home, ref)
    added, skipped = [], []
    for src in map(Path, files):
        rel = (Path(into.strip().strip("/")) / src.name).as_posix() if into and into.strip() else src.name
        try:
            dest = document_path(folder, rel, tuple(sorted(SUPPORTED)))
        except RetrievalError as e:
            skipped.append(str(e))
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        added.append(dest.relative_to(folder).as_posix())
    return added, skipped


def delete_document(home, ref: str | Path, rel: str) -> Path:
    """Delete one document from the corpus (its home copy); empty folders it leaves go too."""
    folder = home_corpus(home, ref)
    path = document_path(folder, rel, tuple(sorted(SUPPORTED)))
    if not path.is_file():
        raise RetrievalError(f"{rel}: no such document in {folder}")
    path.unlink()
    parent = path.parent
    while parent != folder and _inside(parent, folder) and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return path
