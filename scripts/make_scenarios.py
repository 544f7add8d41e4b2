#!/usr/bin/env python3
"""Generate the lab's built-in scenarios and the fictional Acme corpus, deterministically.

    python scripts/make_scenarios.py                 # writes lab/scenarios/ and corpora/acme/
    python scripts/make_scenarios.py --out /tmp/s --corpus-out /tmp/acme

Four scenarios, each where the guide (docs/guide.md) predicts a rung:
  tickets       customer email -> JSON ticket (format/behaviour: fine-tune territory)
  specialty     symptoms in lay words -> which specialist (narrow classifier: few-shot vs tune)
  acme-facts    questions about a company no model has heard of (knowledge: RAG territory)
  support-tone  customer message -> a reply in a house style (tone: fine-tune territory, judged
                by blind pairwise preference as well as by overlap with the reference reply)

The words live in scripts/scenario_data/: vocabularies, templates and the Acme fact table
(acme/products.toml, acme/facts.toml, and acme/docs/ with one template per corpus document).
This script only combines them with `random.Random(seed)`, so two runs give byte-identical
files, and the acme questions can never disagree with the acme documents: both are rendered
from the same fact table. Standard library only.
"""

import argparse
import datetime
import json
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10: the tomli backport (lab.config does the same)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "scenario_data"
SEED = 20240611
SPLITS = ("train", "eval", "fewshot")
CORPUS_SUFFIXES = (".md", ".txt", ".html", ".jsonl")  # what the lab's corpus reader reads
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


# ---- small helpers ---------------------------------------------------------------------


def load_toml(name: str) -> dict:
    return tomllib.loads((DATA / name).read_text(encoding="utf-8"))


def require(ok: bool, message: str) -> None:
    # The data files are meant to be edited: say what is wrong in them, without a traceback.
    if not ok:
        raise SystemExit(f"scenario data: {message}")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_jsonl(path: Path, records: list[dict]) -> None:
    write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def toml_str(s: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=False)


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def cap(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


def quote(text: str) -> str:
    """Text as a Markdown block quote, blank lines kept."""
    return "\n".join(f"> {line}".rstrip() for line in text.split("\n"))


def bullets(items: list[str]) -> str:
    return "\n".join(f"- {x}" for x in items)


# ---- answers and the variants a grader should accept for them --------------------------


def money(amount: str) -> tuple[str, list[str]]:
    digits = amount.replace("$", "").replace(",", "")
    return amount, dedupe(
        [digits, f"${digits}", amount.replace("$", ""), f"{amount}.00", f"{digits} dollars", f"USD {digits}"]
    )


def qty(value: str, unit: str) -> tuple[str, list[str]]:
    words = {
        "kg": "kilograms",
        "g": "grams",
        "h": "hours",
        "W": "watts",
        "kW": "kilowatts",
        "m": "meters",
        "GB": "gigabytes",
        "V": "volts",
    }
    answer = f"{value} {unit}"
    aliases = [f"{value}{unit}", f"{value} {words[unit]}"] if unit in words else []
    if unit in ("hours", "days", "months", "weeks", "seconds"):
        aliases.append(f"{value}-{unit[:-1]}")
    return answer, aliases


def pct(value: str) -> tuple[str, list[str]]:
    return f"{value}%", [f"{value} percent", f"{value} per cent"]


def date(day: datetime.date) -> tuple[str, list[str]]:
    name, y, m, d = MONTHS[day.month - 1], day.year, day.month, day.day
    return f"{name} {d}, {y}", [f"{d} {name} {y}", f"{y}-{m:02d}-{d:02d}", f"{name[:3]} {d}, {y}", f"{name} {d} {y}"]


ANSWER_FORMS = {"money": money, "qty": lambda value_unit: qty(*value_unit), "pct": pct, "date": date}


def answer_of(key: str, entry: dict) -> tuple[str, list[str]]:
    """The answer and aliases of one facts.toml entry, whichever way it states them."""
    forms = [k for k in ("answer", *ANSWER_FORMS) if k in entry]
    require(
        len(forms) == 1 and set(entry) <= {"doc", "questions", "aliases", *forms},
        f"acme/facts.toml [{key}] needs doc, questions and one of answer, {', '.join(ANSWER_FORMS)}",
    )
    if forms[0] == "answer":
        return entry["answer"], list(entry.get("aliases", []))
    return ANSWER_FORMS[forms[0]](entry[forms[0]])


# ---- the Acme data: every fact lives in exactly one document ----------------------------


@dataclass
class Fact:
    key: str
    doc: str  # path relative to the corpus root: the gold document
    answer: str
    aliases: list[str]
    questions: list[str]


@dataclass
class Product:
    """One [[products]] entry of acme/products.toml. The nested tables are namespaces so that the
    page templates in acme/pages.toml can say {p.weight.value}."""

    model: str
    name: str
    kind: str
    price: str
    weight: SimpleNamespace  # value, unit
    power: SimpleNamespace  # label ("battery life" or "power consumption"), value, unit
    warranty_months: int
    launch: datetime.date
    spec: SimpleNamespace  # label, answer, aliases: the one spec only this kind of product has
    tagline: str
    features: list[str]
    box: list[str]
    firmware: list[SimpleNamespace] = field(default_factory=list)  # version, date; newest first

    @property
    def doc(self) -> str:
        return f"products/{self.model.lower()}.md"

    @property
    def firmware_doc(self) -> str:
        return f"releases/{self.model.lower()}-firmware.md"


def load_product(d: dict) -> Product:
    ns = SimpleNamespace
    return Product(
        **{
            **d,
            "weight": ns(**d["weight"]),
            "power": ns(**d["power"]),
            "spec": ns(**d["spec"]),
            "firmware": [ns(**release) for release in d.get("firmware", [])],
        }
    )


ACME_PRODUCTS = load_toml("acme/products.toml")
PRODUCTS = [load_product(d) for d in ACME_PRODUCTS["products"]]
PAGES = load_toml("acme/pages.toml")
OTHER_FACTS = load_toml("acme/facts.toml")  # key -> doc, answer, questions
DOC_TEMPLATES = DATA / "acme" / "docs"  # one per corpus document, {fact_key} placeholders


def product_facts(p: Product, rng: random.Random) -> list[Fact]:
    refs = [p.model, f"{p.name} {p.kind}", f"{p.model} {p.name}"]

    def asks(attr: str, **kw) -> list[str]:
        qs = [t.format(ref=r, **kw) for t in ACME_PRODUCTS["questions"][attr] for r in refs]
        qs = [cap(q) for q in dedupe(qs)]
        rng.shuffle(qs)
        return qs[:5]

    facts = [
        Fact(f"{p.model}.price", p.doc, *money(p.price), asks("price")),
        Fact(f"{p.model}.weight", p.doc, *qty(p.weight.value, p.weight.unit), asks("weight")),
        Fact(f"{p.model}.power", p.doc, *qty(p.power.value, p.power.unit), asks(p.power.label)),
        Fact(f"{p.model}.warranty", p.doc, *qty(str(p.warranty_months), "months"), asks("warranty")),
        Fact(f"{p.model}.launch", p.doc, *date(p.launch), asks("launch")),
        Fact(f"{p.model}.spec", p.doc, p.spec.answer, p.spec.aliases, asks("spec", label=p.spec.label)),
        Fact(
            f"{p.model}.model",
            p.doc,
            p.model,
            [p.model.replace("-", ""), p.model.replace("-", " ")],
            asks("model", name=p.name, kind=p.kind),
        ),
    ]
    if p.firmware:
        latest = p.firmware[0]
        facts.append(
            Fact(
                f"{p.model}.fw_version",
                p.firmware_doc,
                latest.version,
                [f"version {latest.version}", f"v{latest.version}"],
                asks("fw_version", model=p.model),
            )
        )
        facts.append(Fact(f"{p.model}.fw_date", p.firmware_doc, *date(latest.date), asks("fw_date", model=p.model)))
    return facts


def product_doc(i: int, p: Product, rng: random.Random) -> str:
    related = rng.sample([q.model for q in PRODUCTS if q is not p], 2)
    layout = i % len(PAGES["product_layouts"])
    # Only datasheets (layout 1) draw a revision letter; the others must not use up a random number.
    revision = rng.choice(PAGES["datasheet_revisions"]) if layout == 1 else ""
    launch = date(p.launch)[0]
    row_fields = dict(p=p, launch=launch, power_label=p.power.label.capitalize(), spec_label=p.spec.label.capitalize())
    rows = [(label.format(**row_fields), value.format(**row_fields)) for label, value in PAGES["spec_rows"]]
    return PAGES["product_layouts"][layout].format(
        p=p,
        related=related,
        revision=revision,
        launch=launch,
        kind_title=" ".join(cap(w) for w in p.kind.split()),
        firmware_sentence=PAGES["firmware_sentence"]["updatable" if p.firmware else "none"],
        feature_bullets=bullets(p.features),
        highlight_bullets=bullets(p.features[1:]),
        box_bullets=bullets(p.box),
        box_list=", ".join(p.box),
        spec_table="\n".join(f"| {k} | {v} |" for k, v in rows),
        spec_bullets="\n".join(f"- **{k}:** {v}" for k, v in rows),
        runtime=PAGES["faq_runtime"][p.power.label].format(p=p),
    )


def firmware_doc(p: Product, rng: random.Random) -> str:
    page = PAGES["firmware_page"]
    releases = [
        page["release"].format(
            version=r.version,
            current=page["current"] if n == 0 else "",
            date=date(r.date)[0],
            notes=bullets(rng.sample(ACME_PRODUCTS["firmware_notes"], rng.randint(2, 4))),
        )
        for n, r in enumerate(p.firmware)
    ]
    return page["page"].format(p=p, releases="\n".join(releases))


def fill_doc(path: str, template: str, answers: dict[str, str]) -> str:
    if not path.endswith(".jsonl"):
        return template.format_map(answers)
    records = [json.loads(line) for line in template.splitlines()]  # one KB article per line
    return "".join(json.dumps({**r, "text": r["text"].format_map(answers)}, ensure_ascii=False) + "\n" for r in records)


def build_corpus(seed: int) -> tuple[dict[str, str], list[Fact]]:
    """All corpus files (path -> text) and all facts, from the Acme data files."""
    rng = random.Random(f"{seed}:acme")
    facts: list[Fact] = []
    files: dict[str, str] = {}
    for i, p in enumerate(PRODUCTS):
        facts += product_facts(p, rng)
        files[p.doc] = product_doc(i, p, rng)
        if p.firmware:
            files[p.firmware_doc] = firmware_doc(p, rng)
    templates = {
        t.relative_to(DOC_TEMPLATES).as_posix(): t.read_text(encoding="utf-8")
        for t in sorted(DOC_TEMPLATES.rglob("*"))
        if t.suffix in CORPUS_SUFFIXES
    }
    answers = {key: answer_of(key, entry)[0] for key, entry in OTHER_FACTS.items()}
    for path, template in templates.items():
        files[path] = fill_doc(path, template, answers)
    for key, entry in OTHER_FACTS.items():
        facts.append(Fact(key, entry["doc"], *answer_of(key, entry), list(entry["questions"])))

    # One fact, one document: each placeholder is used by its own document and by no other.
    for key, entry in OTHER_FACTS.items():
        users = [path for path, t in templates.items() if "{" + key + "}" in t]
        require(users == [entry["doc"]], f"fact {key} should be in {entry['doc']} only, found in {users}")
    for f in facts:
        require(f.answer in files.get(f.doc, ""), f"answer of {f.key} not in {f.doc}")
        require(len(f.questions) >= 3, f"fact {f.key} needs at least 3 questions")
    return files, facts


# ---- scenario: acme-facts ---------------------------------------------------------------

SCENARIO_TEXTS = load_toml("scenarios.toml")  # task.toml and README.md of each scenario


def make_acme_facts(seed: int, facts: list[Fact], files: dict[str, str]) -> dict:
    rng = random.Random(f"{seed}:acme-facts")
    probe = SCENARIO_TEXTS["acme-facts"]["probe"]
    probe_fact = next(f for f in facts if f.key == f"{probe['product']}.price")
    require(files[probe_fact.doc].count(probe_fact.answer) == 1, f"the probe's price must be once in {probe_fact.doc}")

    # Eval: 48 facts seen in training (under other wordings) and 24 never trained on, so the
    # report can tell "memorised a paraphrase" apart from "knows the company".
    order = [f for f in facts if f is not probe_fact]
    rng.shuffle(order)
    groups = {"unseen": order[:24], "seen": [probe_fact] + order[24:71], "fewshot": order[71:95]}
    role = {id(f): name for name, group in groups.items() for f in group}

    def record(f: Fact, q: str, **extra) -> dict:
        return {"input": q, "output": f.answer, "aliases": f.aliases, "gold_doc": f.doc, **extra}

    train, evals, fewshot = [], [], []
    for f in facts:
        qs = [q for q in f.questions if q != probe["question"]]
        r = role.get(id(f), "train")
        if r == "unseen":
            evals.append(record(f, qs[0], seen_in_train=False))
        elif r == "seen":
            evals.append(record(f, qs[0], seen_in_train=True))
            train += [record(f, q) for q in qs[1:4]]
        elif r == "fewshot":
            fewshot.append(record(f, qs[0]))
            train += [record(f, q) for q in qs[1:4]]
        else:
            train += [record(f, q) for q in qs[:3]]
    rng.shuffle(train)
    rng.shuffle(evals)
    return {
        "train": train,
        "eval": evals,
        "fewshot": fewshot,
        "probe": {
            "doc": probe_fact.doc,
            "old": probe_fact.answer,
            "new": probe["new_price"],
            "question": probe["question"],
        },
    }


# ---- splitting rows into train, eval and the few-shot pool ------------------------------


def stratified_split(items: dict[str, list], sizes: dict[str, dict], sub=None):
    """Per class: the first `eval` items go to eval, `fewshot` to the few-shot pool, the rest to train.

    `sub(row)` names a sub-class (a ticket's priority): the few-shot pool takes them in turn,
    so a 4-example prompt can show every priority instead of whatever came first.
    """
    train, evals, fewshot = [], [], []
    for cls, rows in items.items():
        evals += rows[: sizes[cls]["eval"]]
        rest = rows[sizes[cls]["eval"] :]
        subs = dedupe([sub(r) if sub else "" for r in rest])
        picked = []
        while len(picked) < sizes[cls]["fewshot"]:
            want = subs[len(picked) % len(subs)]
            picked.append(next(r for r in rest if (sub(r) if sub else "") == want and r not in picked))
        fewshot += picked
        train += [r for r in rest if r not in picked]
    return train, evals, fewshot


def spread(rows: list[dict], key) -> list[dict]:
    """Order a few-shot pool so any prefix is varied: each next row adds the most unseen values
    of key(row) (a tuple), starting afresh once all are seen. The lab's fixed few-shot prompt
    takes the first k rows of the pool."""
    rows, out, seen = list(rows), [], [set() for _ in key(rows[0])]
    while rows:
        gain = [sum(v not in s for v, s in zip(key(r), seen)) for r in rows]
        if max(gain) == 0:
            seen = [set() for _ in seen]
            continue
        best = rows.pop(gain.index(max(gain)))
        out.append(best)
        for v, s in zip(key(best), seen):
            s.add(v)
    return out


def make_splits(rng: random.Random, sizes: dict[str, dict], make_row, spread_key, sub=None) -> dict:
    """Rows for every class (sizes: class -> examples, eval, fewshot) with inputs unique across all
    splits; split per class, shuffled, and the few-shot pool spread out by spread_key."""
    seen: set[str] = set()
    items: dict[str, list] = {}
    for cls, size in sizes.items():
        rows = items.setdefault(cls, [])
        while len(rows) < size["examples"]:
            row = make_row(cls)
            if row["input"] not in seen:
                seen.add(row["input"])
                rows.append(row)
    train, evals, fewshot = stratified_split(items, sizes, sub)
    for rows in (train, evals, fewshot):
        rng.shuffle(rows)
    return {"train": train, "eval": evals, "fewshot": spread(fewshot, spread_key)}


# ---- scenario: tickets (customer email -> JSON ticket) ----------------------------------

TICKETS = load_toml("tickets.toml")
TICKET_SCHEMA = json.loads((DATA / "ticket_schema.json").read_text(encoding="utf-8"))
PRIORITIES = TICKET_SCHEMA["properties"]["priority"]["enum"]
ISSUES = TICKETS["issues"]  # category -> priority -> [{body, summary}]
TICKET_PRODUCTS = (
    [f"{p.model} {p.kind}" for p in PRODUCTS] + [p.model for p in PRODUCTS] + [f"{p.name} {p.kind}" for p in PRODUCTS]
)


def typos(text: str, rng: random.Random, n: int) -> str:
    # Swap two letters in a few long lowercase words; model numbers and cue words in caps survive.
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if w.isalpha() and w.islower() and len(w) > 4]
    for i in rng.sample(spots, min(n, len(spots))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def email_slots(rng: random.Random) -> dict:
    """Made-up details for an email's {placeholders}; the order of the draws is part of the seed."""
    t = TICKETS
    product, product2 = rng.sample(TICKET_PRODUCTS, 2)
    return {
        "product": product,
        "product2": product2,
        "order": f"ACM-{rng.randint(100000, 999999)}",
        "amount": f"${rng.randint(19, 1900)}.{rng.choice(['00', '00', '99', '50'])}",
        "n": rng.randint(2, 6),
        "date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
        "weeks": rng.randint(2, 6),
        "hours": rng.randint(2, 9),
        "code": rng.choice(t["error_codes"]),
        "city": rng.choice(t["cities"]),
        "country": rng.choice(t["countries"]),
        "weekday": rng.choice(t["weekdays"]),
        "years": rng.randint(2, 9),
        "month": rng.choice(MONTHS),
        "serial": f"{rng.choice('ABCDEFGH')}{rng.randint(1000000, 9999999)}",
    }


def make_email(rng: random.Random, category: str) -> tuple[str, dict]:
    t = TICKETS
    priority = rng.choice([p for p in PRIORITIES if p in ISSUES[category]])
    issue = rng.choice(ISSUES[category][priority])
    slots = email_slots(rng)
    summary = cap(issue["summary"].format(**slots))
    require(len(summary.split()) <= 12, f"tickets.toml: summary over 12 words: {summary}")

    backstory = rng.sample(t["backstory"], rng.choice([0, 0, 0, 1, 2]))
    sentences = [
        rng.choice(t["openers"]),
        *backstory,
        issue["body"],
        rng.choice(t["details"]),
        rng.choice(t["tones"]),
        rng.choice(t["priority_cues"][priority]),
    ]
    sentences = [s.format(**slots) for s in sentences if s]
    if len(sentences) > 2 and rng.random() < 0.4:  # some people write in paragraphs
        cut = rng.randint(1, len(sentences) - 1)
        text = " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])
    else:
        text = " ".join(sentences)
    if rng.random() < 0.35:
        text = typos(text, rng, rng.randint(1, 3))
    if rng.random() < 0.1:
        text = text.lower()

    name = f"{rng.choice(t['first_names'])} {rng.choice(t['last_names'])}"
    signature = rng.choice([name, name.split()[0], f"{name}\n{rng.choice(t['orgs'])}", f"{name}\nSent from my phone"])
    greeting = rng.choice(t["greetings"])
    parts = [f"Subject: {rng.choice(t['subjects'][category])}"] if rng.random() < 0.5 else []
    parts += ([greeting] if greeting else []) + [text, f"{rng.choice(t['closings'])}\n{signature}"]
    ticket = {"priority": priority, "category": category, "summary": summary}
    return "\n\n".join(parts), ticket


def make_tickets(seed: int) -> dict:
    rng = random.Random(f"{seed}:tickets")
    categories = TICKETS["categories"]  # category -> examples, eval, fewshot
    require(
        list(categories) == TICKET_SCHEMA["properties"]["category"]["enum"],
        "tickets.toml [categories] must list the categories of ticket_schema.json, in order",
    )

    def ticket_row(category: str) -> dict:
        email, ticket = make_email(rng, category)
        return {"input": email, "output": json.dumps(ticket, ensure_ascii=False, separators=(",", ":"))}

    def label(row: dict, key: str) -> str:
        return json.loads(row["output"])[key]

    # The few-shot pool takes the priorities in turn and then spreads categories and priorities.
    return make_splits(
        rng,
        categories,
        ticket_row,
        spread_key=lambda r: (label(r, "category"), label(r, "priority")),
        sub=lambda r: label(r, "priority"),
    )


# ---- scenario: specialty (symptoms in lay words -> which specialist) --------------------

SPECIALTY = load_toml("specialty.toml")
SPECIALTIES = SPECIALTY["specialties"]  # label -> primary, secondary complaints


def make_complaint(rng: random.Random, label: str) -> str:
    s = SPECIALTY
    first, second = rng.sample(SPECIALTIES[label]["primary"], 2)
    duration = rng.choice(s["durations"])
    main = rng.choice(s["forms"]).format(first=first, First=cap(first), second=second, duration=duration)
    extras = []
    if rng.random() < 0.5:
        extras.append(cap(rng.choice(SPECIALTIES[label]["secondary"])) + ".")
    if rng.random() < 0.35:  # a vague complaint that belongs to another specialty
        other = rng.choice([k for k in SPECIALTIES if k != label])
        extras.append(f"{rng.choice(s['also'])} {rng.choice(SPECIALTIES[other]['secondary'])}.")
    patient = rng.choice(s["patients"])
    opener = rng.choice(s["openers"]).format(
        age=rng.randint(patient["youngest"], patient["oldest"]), who=patient["who"]
    )
    if opener.endswith(" and") and not re.match(r"I\b", main):
        main = main[0].lower() + main[1:]
    parts = [opener, main, *extras, rng.choice(s["contexts"]), rng.choice(s["asks"])]
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.25:
        text = typos(text, rng, rng.randint(1, 2))
    if rng.random() < 0.15:
        text = text.lower()
    return text


def make_specialty(seed: int) -> dict:
    rng = random.Random(f"{seed}:specialty")
    sizes = dict.fromkeys(SPECIALTIES, SPECIALTY["split"])
    # spread_key: the first 12 few-shot examples are one per specialty.
    return make_splits(
        rng,
        sizes,
        lambda label: {"input": make_complaint(rng, label), "output": label},
        spread_key=lambda r: (r["output"],),
    )


# ---- scenario: support-tone (customer message -> a reply in the house style) ------------

SUPPORT = load_toml("support_tone.toml")
SUPPORT_ISSUES = SUPPORT["issues"]  # issue -> subjects, messages, replies (and its own thanks)
STYLE = SUPPORT["style"]  # the greeting, the sign-off and the word limit every reply keeps


def slots_of(template: str) -> set[str]:
    """The {placeholders} a template states; {a_product} ("an Alder ...") states {product}."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return {name.removeprefix("a_") for name in names}


def check_support_data() -> None:
    for issue, d in SUPPORT_ISSUES.items():
        stated = set.intersection(*(slots_of(m) for m in d["messages"]))
        for reply in d["replies"]:
            unknown = slots_of(reply) - stated
            require(not unknown, f"support_tone.toml [issues.{issue}]: a reply uses {unknown}, not in every message")


def a_or_an(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def support_slots(rng: random.Random) -> dict:
    """Made-up details for a message's {placeholders}; the order of the draws is part of the seed."""
    v = SUPPORT["vocab"]
    product, product2 = rng.sample(v["products"], 2)
    first = rng.choice(v["first_names"])
    return {
        "first": first,
        "last": rng.choice(v["last_names"]),
        "product": product["name"],
        "a_product": a_or_an(product["name"]),
        "part": product["part"],
        "damage": product["damage"],
        "product2": product2["name"],
        "a_product2": a_or_an(product2["name"]),
        "order": f"FW-{rng.randint(10000, 99999)}",
        "amount": f"${rng.randint(12, 240)}.{rng.choice(['00', '99', '50'])}",
        "date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
        "days": rng.randint(2, 12),
        "email": f"{first.lower()}{rng.randint(1, 99)}@{rng.choice(v['mail_domains'])}",
        "city": rng.choice(v["cities"]),
        "code": rng.choice(v["codes"]),
    }


def support_message(rng: random.Random, issue: dict, slots: dict) -> str:
    v = SUPPORT["vocab"]
    body = " ".join(s for s in (rng.choice(v["openers"]), rng.choice(issue["messages"]), rng.choice(v["tones"])) if s)
    body = body.format(**slots)
    if rng.random() < 0.3:
        body = typos(body, rng, rng.randint(1, 2))
    closing = rng.choice(v["closings"])
    signature = rng.choice(v["signatures"]).format(**slots)
    parts = [f"Subject: {rng.choice(issue['subjects']).format(**slots)}"] if rng.random() < 0.4 else []
    greeting = rng.choice(v["greetings"])
    parts += [greeting] if greeting else []
    parts += [body, f"{closing}\n{signature}" if closing else signature]
    return "\n\n".join(parts)


def support_reply(rng: random.Random, issue: dict, slots: dict) -> str:
    thanks = rng.choice(SUPPORT["thanks"]["any"] + issue.get("thanks", []))
    next_steps = rng.choice(issue["replies"]).format(**slots)
    reply = f"{STYLE['greeting'].format(**slots)}\n\n{thanks} {next_steps}\n\n{STYLE['sign_off']}"
    require(
        len(reply.split()) <= STYLE["max_words"], f"support_tone.toml: reply over {STYLE['max_words']} words: {reply}"
    )
    return reply


def make_support_tone(seed: int) -> dict:
    rng = random.Random(f"{seed}:support-tone")
    check_support_data()

    def support_row(name: str) -> dict:
        issue, slots = SUPPORT_ISSUES[name], support_slots(rng)
        message = support_message(rng, issue, slots)
        return {"input": message, "output": support_reply(rng, issue, slots), "issue": name}

    # One few-shot example per issue, in shuffled order: any 4 of them show 4 different issues.
    sizes = dict.fromkeys(SUPPORT_ISSUES, SUPPORT["split"])
    return make_splits(rng, sizes, support_row, spread_key=lambda r: (r["issue"],))


# ---- writing the files ------------------------------------------------------------------


def text_fields(name: str, data: dict) -> dict:
    """The {names} that the scenario's texts in scenarios.toml use."""
    fields = {split: len(data[split]) for split in SPLITS}
    if name == "specialty":
        labels = list(SPECIALTIES)
        fields.update(
            labels=", ".join(labels),
            labels_toml=", ".join(toml_str(x) for x in labels),
            n_labels=len(labels),
            eval_per_label=SPECIALTY["split"]["eval"],
            fewshot_per_label=SPECIALTY["split"]["fewshot"],
        )
    if name == "support-tone":
        fields.update(
            n_issues=len(SUPPORT_ISSUES),
            issues=", ".join(issue.replace("_", " ") for issue in SUPPORT_ISSUES),
            eval_per_issue=SUPPORT["split"]["eval"],
            sign_off=STYLE["sign_off"],
            max_words=STYLE["max_words"],
            example_input=quote(data["fewshot"][0]["input"]),
            example_output=quote(data["fewshot"][0]["output"]),
        )
        fields["rubric"] = SCENARIO_TEXTS[name]["rubric"].format_map(fields).strip()
    if name == "acme-facts":
        fields["n_unseen"] = sum(1 for r in data["eval"] if not r["seen_in_train"])
        for key, value in data["probe"].items():
            fields[f"probe_{key}"], fields[f"probe_{key}_toml"] = value, toml_str(value)
    return fields


def write_task_files(folder: Path, name: str, fields: dict) -> None:
    texts = {k: v.format_map(fields) for k, v in SCENARIO_TEXTS[name].items() if isinstance(v, str)}
    write(
        folder / "task.toml",
        SCENARIO_TEXTS["task_toml"].format(
            name=toml_str(name),
            description=toml_str(texts["description"]),
            instruction=texts["instruction"],
            settings=texts["settings"],
        ),
    )
    write(folder / "README.md", SCENARIO_TEXTS["readme"].format_map(texts))


def write_scenarios(out: Path, seed: int, facts: list[Fact], files: dict[str, str]) -> dict[str, dict]:
    made = {
        "tickets": make_tickets(seed),
        "specialty": make_specialty(seed),
        "acme-facts": make_acme_facts(seed, facts, files),
        "support-tone": make_support_tone(seed),
    }
    for name, data in made.items():
        for split in SPLITS:
            write_jsonl(
                out / name / f"{split}.jsonl", [{"id": f"{name}-{split}-{i}", **r} for i, r in enumerate(data[split])]
            )
        write_task_files(out / name, name, text_fields(name, data))
    write(out / "tickets" / "schema.json", json.dumps(TICKET_SCHEMA, indent=2) + "\n")
    return {name: {split: len(data[split]) for split in SPLITS} for name, data in made.items()}


def write_corpus(out: Path, files: dict[str, str]) -> None:
    # Remove documents from an older run so a renamed file cannot leave a fact in two places.
    if out.is_dir():
        for old in sorted(out.rglob("*")):
            rel = old.relative_to(out).as_posix()
            if old.is_file() and old.suffix in CORPUS_SUFFIXES and rel not in files:
                print(f"removing stale {old}")
                old.unlink()
    for rel, text in files.items():
        write(out / rel, text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "lab" / "scenarios", help="folder for the scenarios (default: lab/scenarios)"
    )
    ap.add_argument(
        "--corpus-out",
        type=Path,
        default=ROOT / "corpora" / "acme",
        help="folder for the Acme corpus (default: corpora/acme)",
    )
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default: {SEED})")
    args = ap.parse_args()

    files, facts = build_corpus(args.seed)
    write_corpus(args.corpus_out, files)
    counts = write_scenarios(args.out, args.seed, facts, files)
    print(f"corpus: {len(files)} documents, {len(facts)} facts -> {args.corpus_out}")
    for name, c in counts.items():
        print(f"{name}: {c['train']} train, {c['eval']} eval, {c['fewshot']} few-shot -> {args.out / name}")


if __name__ == "__main__":
    main()
