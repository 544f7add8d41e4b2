#!/usr/bin/env python3
"""Build `examples/pydocs/`: a SQuAD-shaped knowledge task from Python's own standard library docs.

    python scripts/make_pydocs_task.py            # writes examples/pydocs/stdlib/*.md and questions.csv
    python scripts/make_pydocs_task.py --check    # only checks the committed files, writes nothing

The corpus is one Markdown file per module, `<module>.md`: a `# <module>` heading, then the
module's docstring (`inspect.getdoc`) lightly cleaned (Sphinx roles such as :mod:`json` become
`json`, doctest directives and trailing spaces go). The docstrings are the PSF-licensed text every
Python ships, so the corpus may be redistributed (see examples/pydocs/README.md).

The questions are hand-written below as (question, answer, module, aliases): each answer is a
short span copied from that module's docstring, so `gold_doc` is `<module>.md`, the corpus file
name the lab's recall@k compares a passage's source with (scorers.doc_matches).

Docstrings change between Python versions. The files were written once and committed; running
this again on another Python may change them. Before writing anything the script checks that
every answer is still found verbatim (case-insensitive, whitespace-normalised) in its gold_doc
and stops, naming each question that broke, if one is not. Standard library only.
"""

import argparse
import csv
import importlib
import inspect
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "pydocs"

# (question, answer: verbatim in the module's docstring, module, aliases: "|"-separated)
# fmt: off
QUESTIONS = [
    ("What language's syntax is JSON a subset of?", "JavaScript", "json", ""),
    ("Which externally maintained library is Python's json module derived from?", "simplejson", "json", ""),
    ("Which PEP describes the interface implemented by the csv module?", "PEP 305", "csv", "305"),
    ("Which csv quoting constant means quotes are always placed around fields?", "csv.QUOTE_ALL", "csv", "QUOTE_ALL"),
    ("Which PEP does the sqlite3 module's DB-API 2.0 interface comply with?", "PEP 249", "sqlite3", "249"),
    ("What is the oldest SQLite version the sqlite3 module requires?", "SQLite 3.7.15", "sqlite3", "3.7.15"),
    ("What special path name connects sqlite3 to a transient in-memory database?", ":memory:", "sqlite3", ""),
    ("What is the heap queue algorithm also known as?", "priority queue", "heapq", ""),
    ("Which heapq function transforms a list into a heap, in-place, in linear time?", "heapify", "heapq", ""),
    ('Which difflib function returns a list of the best "good enough" matches?', "get_close_matches", "difflib", ""),
    ("Which difflib class produces an HTML side by side comparison with change highlights?", "HtmlDiff", "difflib", ""),
    ("Which statistics function computes a fast, floating point arithmetic mean?", "fmean", "statistics", ""),
    ("What is the single exception defined by the statistics module?", "StatisticsError", "statistics", ""),
    ("Which statistics function gives the intercept and slope for simple linear regression?", "linear_regression", "statistics", ""),
    ("Which RFC is the ftplib FTP client based on?", "RFC 959", "ftplib", "959"),
    ("Who wrote RFC 959, the File Transfer Protocol specification?", "J. Postel and J. Reynolds", "ftplib", "Postel and Reynolds"),
    ("Which RFC for Secure SMTP over TLS does smtplib follow?", "RFC 2487", "smtplib", "2487"),
    ("Which RFC defining ESMTP does smtplib follow?", "RFC 1869", "smtplib", "1869"),
    ("What kind of object is a shelf in the shelve module?", "persistent, dictionary-like object", "shelve", "dictionary-like object"),
    ("Which shelve.open keyword argument avoids the problem with mutable entries?", "writeback=True", "shelve", "writeback"),
    ("Which tempfile function is subject to race conditions and should not be used?", "mktemp", "tempfile", ""),
    ("Which tempfile variable, set before first use, adds another candidate location for temporary files?", "tempdir", "tempfile", ""),
    ("Which RFC specifies the UUIDs that Python's uuid module generates?", "RFC 4122", "uuid", "4122"),
    ("Which uuid function may compromise privacy because it contains the computer's network address?", "uuid1()", "uuid", "uuid1"),
    ("Which hash of a namespace UUID and a name does uuid5 use?", "SHA-1", "uuid", "SHA1"),
    ("What range of compression levels does zlib's compress() accept?", "0-9", "zlib", ""),
    ("What is the zlib library based on?", "GNU zip", "zlib", "gzip"),
    ("Which compression library does the lzma module interface to?", "liblzma", "lzma", ""),
    ("Besides legacy LZMA, which container format does the lzma module support?", "XZ", "lzma", ""),
    ("Which compression library does the bz2 module interface to?", "libbzip2", "bz2", ""),
    ("Which color system in colorsys is used by composite video signals?", "YIQ", "colorsys", ""),
    ("What do the letters of the HLS color system stand for?", "Hue, Luminance, Saturation", "colorsys", ""),
    ("What is the period of the Mersenne Twister generator behind the random module?", "2**19937-1", "random", ""),
    ("Besides circular uniform, which distribution on the circle does the random module offer?", "von Mises", "random", ""),
    ("Which collections container is list-like with fast appends and pops on either end?", "deque", "collections", ""),
    ("Which collections class creates a single view of multiple mappings?", "ChainMap", "collections", ""),
    ("Which itertools function splits one iterator into n?", "tee", "itertools", ""),
    ("Which itertools combinatoric generator gives the cartesian product?", "product", "itertools", ""),
    ("What is the file path of the null device given by os.devnull?", "/dev/null", "os", ""),
    ("According to the os module, what should all pathname manipulation be left to?", "os.path", "os", ""),
    ("What does the struct format character 'e' stand for?", "half-float", "struct", "half float"),
    ("What does the 'p' format character of the struct module denote?", "pascal string", "struct", ""),
    ("Which module inspired the argparse command-line parsing library?", "optparse", "argparse", ""),
    ("Which argparse formatter class adds information about argument defaults to the help?", "ArgumentDefaultsHelpFormatter", "argparse", ""),
    ("Which getopt function allows option and non-option arguments to be intermixed?", "gnu_getopt()", "getopt", "gnu_getopt"),
    ("Which exception class does the getopt module raise?", "GetoptError", "getopt", ""),
    ("What does the abbreviation L10N stand for?", "localization", "gettext", "localisation"),
    ("What does the abbreviation I18N stand for?", "internationalization", "gettext", "internationalisation"),
    ("Which two hashlib hash functions will be slow on 32 bit platforms?", "sha384 and sha512", "hashlib", ""),
    ("Which hash object method returns the digest as a string of hexadecimal digits?", "hexdigest()", "hashlib", "hexdigest"),
    ("Which RFC is considered the current standard for URL parsing in urllib.parse?", "RFC 3986", "urllib.parse", "3986"),
    ("Which RFC describes the mailto URL scheme?", "RFC 2368", "urllib.parse", "2368"),
    ("Which law explains why urllib.parse does not comply with the WHATWG URL Parser spec?", "Hyrum's Law", "urllib.parse", ""),
    ("Which mimetypes function guesses the extension for a given MIME type?", "guess_extension", "mimetypes", ""),
    ("On Windows, where does mimetypes.init() take its default values from?", "the registry", "mimetypes", ""),
    ("In xml.etree.ElementTree, which class represents a single node in the tree?", "Element", "xml.etree.ElementTree", ""),
    ("Which ElementTree element property holds text after the element's end tag?", "tail", "xml.etree.ElementTree", ""),
    ("In the sched event scheduler, what do lower priority numbers mean?", "higher priority", "sched", ""),
    ("Which two functions of the time module can sched use to implement real-time scheduling?", "time and sleep", "sched", ""),
    ("What does subprocess.run() return once the command completes?", "CompletedProcess instance", "subprocess", "CompletedProcess"),
    ("Which exception does subprocess.check_call raise when the return code is not 0?", "CalledProcessError", "subprocess", ""),
    ("Which socket function maps a hostname to its IP number?", "gethostbyname", "socket", ""),
    ("Which socket function converts an IP address string to 32-bit packed format?", "inet_aton", "socket", ""),
    ("What may recursive objects cause in a deep copy operation?", "a recursive loop", "copy", ""),
    ("What does Python's deep copy keep during a copying pass to avoid copying an object twice?", "table of objects already copied", "copy", ""),
    ("On Unix, when is the Epoch of the time module generally?", "January 1st, 1970", "time", "January 1, 1970|1970"),
    ("Which weekday is 0 in the time module's local time tuple?", "Monday", "time", ""),
    ("How many times does timeit repeat the timer by default?", "5", "timeit", "five"),
    ("Whose introduction to the Algorithms chapter of the Python Cookbook does timeit refer to?", "Tim Peters", "timeit", ""),
    ("When timeit picks the number of loops itself, how long must the total time be at least?", "0.2 seconds", "timeit", ""),
    ("Which Java testing framework is Python's unittest based on?", "JUnit", "unittest", ""),
    ("Which text-based unittest class runs the tests and reports the results?", "TextTestRunner", "unittest", ""),
    ("In the cmd module, which method is a command foo dispatched to?", "do_foo()", "cmd", "do_foo"),
    ("Which command is '?' a synonym for in cmd interpreters?", "help", "cmd", ""),
    ("Which mix-in class creates threading versions of the socketserver servers?", "ThreadingMixIn", "socketserver", ""),
    ("Which server type do the socketserver classes favor as the simplest to write?", "synchronous TCP/IP server", "socketserver", ""),
    ("Which class must you derive from to implement a service with socketserver?", "BaseRequestHandler", "socketserver", ""),
    ("Turtle graphics was part of which original programming language?", "Logo", "turtle", ""),
    ("Who developed the Logo programming language together with Seymour Papert?", "Wally Feurzig", "turtle", "Wally Feurzeig"),
    ("What is the name of the 2-vector class the turtle module uses?", "Vec2D", "turtle", ""),
    ("What is the file name extension of the path configuration files the site module reads?", ".pth", "site", "pth"),
    ("Which file one directory above sys.executable sets sys.prefix and sys.exec_prefix?", "pyvenv.cfg", "site", ""),
    ("Which pyvenv.cfg key decides whether system-level site-packages are also searched?", "include-system-site-packages", "site", ""),
    ("Which PEP does tokenize follow to determine the source file encoding?", "PEP-0263", "tokenize", "PEP 263"),
    ("Which token does every token list produced by tokenize start with?", "ENCODING token", "tokenize", "ENCODING"),
]
# fmt: on

ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|const|obj):`~?([^`]+)`")
DOCTEST_DIRECTIVE = re.compile(r"[ \t]*#\s*doctest:.*$", re.M)


def clean(doc: str) -> str:
    """A docstring as Markdown body text: Sphinx roles to code, no doctest directives or trailing spaces."""
    doc = DOCTEST_DIRECTIVE.sub("", ROLE.sub(r"`\1`", doc))
    doc = "\n".join(line.rstrip() for line in doc.splitlines())
    return re.sub(r"\n{3,}", "\n\n", doc).strip()


def corpus_text(module: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        doc = inspect.getdoc(importlib.import_module(module)) or ""
    return f"# {module}\n\n{clean(doc)}\n"


def squash(text: str) -> str:
    return " ".join(text.lower().split())


def missing_answers(corpus: dict[str, str]) -> list[str]:
    """Each question whose answer is not found verbatim in its gold_doc, described."""
    bad = []
    for question, answer, module, _aliases in QUESTIONS:
        text = corpus.get(f"{module}.md")
        if text is None:
            bad.append(f"{module}.md is missing, for: {question}")
        elif squash(answer) not in squash(text):
            bad.append(f"{module}.md no longer says {answer!r}, for: {question}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder to write (default examples/pydocs)")
    ap.add_argument("--check", action="store_true", help="only check the files in --out against the questions")
    args = ap.parse_args()
    corpus_dir = args.out / "stdlib"
    modules = list(dict.fromkeys(m for _q, _a, m, _al in QUESTIONS))  # in question order, no repeats

    if args.check:
        corpus = {p.name: p.read_text(encoding="utf-8") for p in corpus_dir.glob("*.md")}
    else:
        corpus = {f"{m}.md": corpus_text(m) for m in modules}
    bad = missing_answers(corpus)
    if bad:
        version = "the files in " + str(corpus_dir) if args.check else f"Python {sys.version.split()[0]}'s docstrings"
        print(f"{len(bad)} of {len(QUESTIONS)} answers are not in {version}:", file=sys.stderr)
        for line in bad:
            print("  " + line, file=sys.stderr)
        print("edit QUESTIONS in this script (or run it on the Python the files came from)", file=sys.stderr)
        return 1
    if args.check:
        print(f"ok: {len(QUESTIONS)} answers found in {len(corpus)} files of {corpus_dir}")
        return 0

    corpus_dir.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in corpus_dir.glob("*.md")) - set(corpus):
        (corpus_dir / stale).unlink()
    for name, text in corpus.items():
        (corpus_dir / name).write_text(text, encoding="utf-8")
    with open(args.out / "questions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["question", "answer", "gold_doc", "aliases"])
        for question, answer, module, aliases in QUESTIONS:
            w.writerow([question, answer, f"{module}.md", aliases])
    size = sum(len(t.encode("utf-8")) for t in corpus.values())
    print(f"wrote {len(corpus)} corpus files ({size:,} bytes) and {len(QUESTIONS)} questions to {args.out}")
    print(f"from the module docstrings of Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
