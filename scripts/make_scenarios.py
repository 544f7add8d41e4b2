#!/usr/bin/env python3
"""Generate the lab's built-in scenarios and the fictional Acme corpus, deterministically.

    python scripts/make_scenarios.py                 # writes lab/scenarios/ and corpora/acme/
    python scripts/make_scenarios.py --out /tmp/s --corpus-out /tmp/acme

Three scenarios, one per rung the seeds predict:
  tickets     customer email -> JSON ticket (format/behaviour: fine-tune territory)
  specialty   symptoms in lay words -> which specialist (narrow classifier: few-shot vs tune)
  acme-facts  questions about a company no model has heard of (knowledge: RAG territory)

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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "scenario_data"
SEED = 20240611
SPLITS = ("train", "eval", "fewshot")
CORPUS_SUFFIXES = (".md", ".txt", ".html", ".jsonl")  # what the lab's corpus reader reads
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


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


def bullets(items: list[str]) -> str:
    return "\n".join(f"- {x}" for x in items)


# ---- answers and the variants a grader should accept for them --------------------------

def money(amount: str) -> tuple[str, list[str]]:
    digits = amount.replace("$", "").replace(",", "")
    return amount, dedupe([digits, f"${digits}", amount.replace("$", ""), f"{amount}.00",
                           f"{digits} dollars", f"USD {digits}"])


def qty(value: str, unit: str) -> tuple[str, list[str]]:
    words = {"kg": "kilograms", "g": "grams", "h": "hours", "W": "watts", "kW": "kilowatts",
             "m": "meters", "GB": "gigabytes", "V": "volts"}
    answer = f"{value} {unit}"
    aliases = [f"{value}{unit}", f"{value} {words[unit]}"] if unit in words else []
    if unit in ("hours", "days", "months", "weeks", "seconds"):
        aliases.append(f"{value}-{unit[:-1]}")
    return answer, aliases


def pct(value: str) -> tuple[str, list[str]]:
    return f"{value}%", [f"{value} percent", f"{value} per cent"]


def date(day: datetime.date) -> tuple[str, list[str]]:
    name, y, m, d = MONTHS[day.month - 1], day.year, day.month, day.day
    return f"{name} {d}, {y}", [f"{d} {name} {y}", f"{y}-{m:02d}-{d:02d}", f"{name[:3]} {d}, {y}",
                                f"{name} {d} {y}"]


ANSWER_FORMS = {"money": money, "qty": lambda value_unit: qty(*value_unit), "pct": pct, "date": date}


def answer_of(key: str, entry: dict) -> tuple[str, list[str]]:
    """The answer and aliases of one facts.toml entry, whichever way it states them."""
    forms = [k for k in ("answer", *ANSWER_FORMS) if k in entry]
    require(len(forms) == 1 and set(entry) <= {"doc", "questions", "aliases", *forms},
            f"acme/facts.toml [{key}] needs doc, questions and one of answer, {', '.join(ANSWER_FORMS)}")
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
    return Product(**{**d, "weight": ns(**d["weight"]), "power": ns(**d["power"]), "spec": ns(**d["spec"]),
                      "firmware": [ns(**release) for release in d.get("firmware", [])]})


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
        Fact(f"{p.model}.model", p.doc, p.model, [p.model.replace("-", ""), p.model.replace("-", " ")],
             asks("model", name=p.name, kind=p.kind)),
    ]
    if p.firmware:
        latest = p.firmware[0]
        facts.append(Fact(f"{p.model}.fw_version", p.firmware_doc, latest.version,
                          [f"version {latest.version}", f"v{latest.version}"], asks("fw_version", model=p.model)))
        facts.append(Fact(f"{p.model}.fw_date", p.firmware_doc, *date(latest.date), asks("fw_date", model=p.model)))
    return facts


def product_doc(i: int, p: Product, rng: random.Random) -> str:
    related = rng.sample([q.model for q in PRODUCTS if q is not p], 2)
    layout = i % len(PAGES["product_layouts"])
    # Only datasheets (layout 1) draw a revision letter; the others must not use up a random number.
    revision = rng.choice(PAGES["datasheet_revisions"]) if layout == 1 else ""
    launch = date(p.launch)[0]
    row_fields = dict(p=p, launch=launch, power_label=p.power.label.capitalize(),
                      spec_label=p.spec.label.capitalize())
    rows = [(label.format(**row_fields), value.format(**row_fields)) for label, value in PAGES["spec_rows"]]
    return PAGES["product_layouts"][layout].format(
        p=p, related=related, revision=revision, launch=launch,
        kind_title=" ".join(cap(w) for w in p.kind.split()),
        firmware_sentence=PAGES["firmware_sentence"]["updatable" if p.firmware else "none"],
        feature_bullets=bullets(p.features), highlight_bullets=bullets(p.features[1:]),
        box_bullets=bullets(p.box), box_list=", ".join(p.box),
        spec_table="\n".join(f"| {k} | {v} |" for k, v in rows),
        spec_bullets="\n".join(f"- **{k}:** {v}" for k, v in rows),
        runtime=PAGES["faq_runtime"][p.power.label].format(p=p))


def firmware_doc(p: Product, rng: random.Random) -> str:
    page = PAGES["firmware_page"]
    releases = [page["release"].format(version=r.version, current=page["current"] if n == 0 else "",
                                       date=date(r.date)[0],
                                       notes=bullets(rng.sample(ACME_PRODUCTS["firmware_notes"], rng.randint(2, 4))))
                for n, r in enumerate(p.firmware)]
    return page["page"].format(p=p, releases="\n".join(releases))


def fill_doc(path: str, template: str, answers: dict[str, str]) -> str:
    if not path.endswith(".jsonl"):
        return template.format_map(answers)
    records = [json.loads(line) for line in template.splitlines()]  # one KB article per line
    return "".join(json.dumps({**r, "text": r["text"].format_map(answers)}, ensure_ascii=False) + "\n"
                   for r in records)


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
    templates = {t.relative_to(DOC_TEMPLATES).as_posix(): t.read_text(encoding="utf-8")
                 for t in sorted(DOC_TEMPLATES.rglob("*")) if t.suffix in CORPUS_SUFFIXES}
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


def compact(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ======================================================================================
# Scenario: acme-facts
# ======================================================================================

PROBE_PRODUCT = "AX-220"
PROBE_NEW_PRICE = "$729"


def make_acme_facts(seed: int, facts: list[Fact], files: dict[str, str]) -> dict:
    rng = random.Random(f"{seed}:acme-facts")
    probe_fact = next(f for f in facts if f.key == f"{PROBE_PRODUCT}.price")
    probe_question = f"How much does the {PROBE_PRODUCT} Skylark star tracker cost?"
    assert files[probe_fact.doc].count(probe_fact.answer) == 1

    # Eval: 48 facts seen in training (under other wordings) and 24 never trained on, so the
    # report can tell "memorised a paraphrase" apart from "knows the company".
    order = [f for f in facts if f is not probe_fact]
    rng.shuffle(order)
    unseen, seen_eval, fewshot_facts = order[:24], [probe_fact] + order[24:71], order[71:95]
    role = {id(f): "unseen" for f in unseen}
    role.update({id(f): "seen" for f in seen_eval})
    role.update({id(f): "fewshot" for f in fewshot_facts})

    def record(f: Fact, q: str, **extra) -> dict:
        return {"input": q, "output": f.answer, "aliases": f.aliases, "gold_doc": f.doc, **extra}

    train, evals, fewshot = [], [], []
    for f in facts:
        qs = [q for q in f.questions if q != probe_question]
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
    probe = {"doc": probe_fact.doc, "old": probe_fact.answer, "new": PROBE_NEW_PRICE, "question": probe_question}
    return {"train": train, "eval": evals, "fewshot": fewshot, "probe": probe}


# ======================================================================================
# Scenario: tickets (customer email -> JSON ticket)
# ======================================================================================

PRIORITIES = ["low", "medium", "high", "urgent"]
CATEGORIES = ["billing", "technical", "account", "shipping", "feature_request", "other"]

# (category, priority) -> [(email body, summary)]. The body alone decides both labels:
# urgent = something is down, unsafe, compromised or losing money right now;
# high = the customer is blocked or out of pocket and needs it today;
# medium = a real problem with a workaround, or a request that needs action;
# low = a question, a cosmetic issue or a nice-to-have.
ISSUES = {
    ("billing", "urgent"): [
        ("Your system has charged my card {n} times for the same order {order}, {amount} each time, and my "
         "account is now overdrawn. Please stop the charges and reverse them right now.",
         "Card charged {n} times for order {order}"),
        ("There are {n} charges from Acme on our company card that nobody here made, {amount} each. It looks "
         "like fraud and new ones keep appearing.", "Unrecognised repeated Acme charges on company card"),
    ],
    ("billing", "high"): [
        ("I was charged twice for order {order}. Both charges of {amount} are on my statement and I need one "
         "of them refunded.", "Double charge of {amount} on order {order}"),
        ("I cancelled my Mission Control Pro subscription on {date} but I was still billed {amount} this month.",
         "Billed {amount} after cancelling Pro subscription"),
    ],
    ("billing", "medium"): [
        ("I returned the {product} {weeks} weeks ago and still haven't seen the refund of {amount}. Can you "
         "check where it is?", "Refund for returned {product} not received"),
        ("The invoice for order {order} shows {amount}, but the checkout said my education discount would "
         "be applied.", "Education discount missing on order {order}"),
    ],
    ("billing", "low"): [
        ("Could you send me a VAT invoice for order {order}? Our accounts team needs it for their records.",
         "VAT invoice request for order {order}"),
        ("Is it possible to switch my subscription from monthly to yearly billing at the next renewal?",
         "Switch subscription to yearly billing"),
        ("Which payment methods do you accept for orders shipped to {country}?",
         "Accepted payment methods for {country}"),
    ],
    ("technical", "urgent"): [
        ("Our {product} stopped responding during a live satellite pass and the whole ground station is down. "
         "The next pass is in {hours} hours.", "{product} down, ground station offline before next pass"),
        ("My {product} started smoking and smelled of burnt plastic while charging. I unplugged it. Is it safe?",
         "{product} smoking while charging, safety issue"),
    ],
    ("technical", "high"): [
        ("The {product} crashes with error {code} every time I start it. I've restarted it several times and "
         "I can't work.", "{product} crashes with error {code} on start"),
        ("Since the firmware update last night my {product} won't connect to Mission Control at all.",
         "{product} cannot connect after firmware update"),
    ],
    ("technical", "medium"): [
        ("The {product} loses its alignment after about an hour, so I have to redo it. Annoying, but I can "
         "work around it.", "{product} loses alignment after an hour"),
        ("Exports from Mission Control are very slow, a small log takes {n} minutes. It does finish eventually.",
         "Slow log exports in Mission Control"),
    ],
    ("technical", "low"): [
        ("There's a small typo in the {product} settings screen: 'Calibraton' instead of 'Calibration'.",
         "Typo on {product} settings screen"),
        ("The status light on my {product} is a slightly different colour than in the manual photos. Is that "
         "normal?", "{product} status light colour differs from manual"),
    ],
    ("account", "urgent"): [
        ("Someone logged into my Acme account from {city} and changed my password and email address. It was "
         "not me. Please lock the account now.", "Account compromised, password and email changed"),
        ("All {n} users on our team account are locked out and we have a launch window today.",
         "All {n} team users locked out on launch day"),
    ],
    ("account", "high"): [
        ("I lost my phone and can't get my two-factor codes, so I can't log in to my account.",
         "Locked out after losing two-factor phone"),
        ("The password reset email never arrives. I've tried {n} times and I need access today.",
         "Password reset email not arriving"),
    ],
    ("account", "medium"): [
        ("Please delete my Acme account and all the data linked to it.", "Delete account and linked data"),
        ("I want to move my registered devices from my personal account to my company account.",
         "Move registered devices to company account"),
    ],
    ("account", "low"): [
        ("How do I change the email address on my account?", "How to change account email address"),
        ("Can I change the display name on my forum profile?", "Change forum display name"),
    ],
    ("shipping", "urgent"): [
        ("The box for order {order} arrived crushed and the battery in the {product} is swollen and hot. What "
         "do I do with it?", "Crushed delivery, {product} battery swollen and hot"),
        ("Order {order} is the flight hardware for our balloon launch this {weekday} and tracking hasn't moved "
         "in {n} days. We can't launch without it.", "Order {order} stuck, needed for launch {weekday}"),
    ],
    ("shipping", "high"): [
        ("Tracking for order {order} says delivered but nothing arrived. I've asked the neighbours.",
         "Order {order} marked delivered but not received"),
        ("I need to change the delivery address for order {order} before it ships, I've moved to {city}.",
         "Change delivery address for order {order}"),
    ],
    ("shipping", "medium"): [
        ("I ordered the {product} but received a {product2} instead (order {order}).",
         "Received {product2} instead of {product}"),
        ("Order {order} is {n} days later than the delivery estimate. Any update?",
         "Order {order} late, asking for update"),
    ],
    ("shipping", "low"): [
        ("Do you ship to {country}, and roughly how long does it take?", "Shipping to {country} and delivery time"),
        ("Could order {order} come without the plastic wrap? Just a preference.",
         "Plastic-free packaging for order {order}"),
    ],
    ("feature_request", "medium"): [
        ("We run {n} {product} units and it would save us hours if Mission Control could update the firmware "
         "on all of them at once.", "Bulk firmware updates in Mission Control"),
        ("Please add CSV export for tracking logs, we need it for our monthly reports.",
         "CSV export for tracking logs"),
    ],
    ("feature_request", "low"): [
        ("It would be nice to have a dark mode in the Mission Control mobile app for night sessions.",
         "Dark mode for Mission Control mobile app"),
        ("Could the {product} show the battery percentage instead of just bars?",
         "Battery percentage display on {product}"),
        ("Any plans for a Linux version of Mission Control?", "Linux version of Mission Control"),
    ],
    ("other", "medium"): [
        ("Our university club would like to partner with Acme on a student CubeSat project. Who should we talk "
         "to?", "University club CubeSat partnership inquiry"),
        ("I'm writing an article about amateur satellite tracking for a magazine. Could I interview someone "
         "from Acme?", "Magazine interview request"),
    ],
    ("other", "low"): [
        ("Just wanted to say the {product} is brilliant, I got amazing photos of the Orion nebula with it.",
         "Praise for the {product}"),
        ("Are you hiring firmware engineers in {city}?", "Firmware engineering jobs in {city}"),
    ],
}

# Extra sentences that agree with the priority; "" keeps some emails free of cue words.
PRIORITY_CUES = {
    "urgent": ["This is urgent.", "Please treat this as an emergency.", "I need someone on this immediately.",
               "PLEASE HELP ASAP.", "Every hour this goes on costs us money.", ""],
    "high": ["I need this sorted today if possible.", "This is blocking my work.", "Please get back to me soon.",
             "I'd appreciate a quick reply.", ""],
    "medium": ["Whenever you get a chance this week is fine.", "Not urgent, but I'd like it fixed.",
               "Let me know what you find.", ""],
    "low": ["No rush at all.", "Just curious.", "Whenever you have time.", "No hurry on this one.", ""],
}
CATEGORY_WEIGHTS = {"billing": 90, "technical": 90, "account": 90, "shipping": 90, "feature_request": 50, "other": 50}
SUBJECTS = {
    "billing": ["Charge on my card", "Billing question", "Invoice", "Payment"],
    "technical": ["Problem with my device", "Help", "Device issue", "Not working properly"],
    "account": ["My account", "Login problem", "Account question"],
    "shipping": ["My order", "Delivery", "Order status", "Shipping question"],
    "feature_request": ["Suggestion", "Idea for Mission Control", "Feature request"],
    "other": ["Hello", "Question", "Quick note"],
}
GREETINGS = ["Hi,", "Hello,", "Hello Acme team,", "Dear Support,", "hey", "Good morning,", "Hi there,",
             "To whom it may concern,", "Dear Acme Orbital Tools,", ""]
OPENERS = ["I hope you're well.", "I've been a customer for {years} years.", "Long time user here.",
           "First time contacting support.", "Thanks for reading this.", "Sorry to bother you.", ""]
TONES = ["This is really frustrating.", "Honestly I'm disappointed.", "Thanks for your help in advance.",
         "I appreciate any help.", "I'm not very technical, sorry.", "", "", ""]
DETAILS = ["I bought it from your online store in {month}.", "My order number is {order}.",
           "The serial number is {serial}.", "I'm on the latest version of Mission Control.", "", "", ""]
# Neutral background some people add; makes a share of the emails two or three times longer.
BACKSTORY = ["We use it for our school's astronomy club, and the kids were really looking forward to the next session.",
             "I've already tried turning things off and on again and I read the FAQ on your website.",
             "Last time I contacted you the agent was very helpful, so I hope this is just as easy.",
             "For context, we are a small team and this is our only setup.",
             "I bought a second unit for my brother last year and he is very happy with his.",
             "Our club meets every second Thursday and we had planned to use it at the next meeting.",
             "I'm writing from my work email because my personal one is playing up."]
CLOSINGS = ["Thanks,", "Best regards,", "Cheers,", "Thank you in advance,", "Regards,", "Many thanks,", "Best,"]
FIRST = ["Maria", "James", "Aiko", "Tomasz", "Fatima", "Liam", "Priyanka", "Carlos", "Nadia", "Erik", "Chen",
         "Olu", "Sofia", "Ravi", "Hannah", "Mateo", "Yuki", "Grace", "Andrei", "Leila"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Nguyen", "Silva", "Brennan",
        "Fischer", "Adeyemi", "Rossi", "Patel", "Novak", "Duarte", "Kim"]
ORGS = ["Ridgeview Astronomy Club", "Northfield University Space Lab", "Kestrel Aerospace Ltd",
        "Harbor High School Science Dept", "Bluegum Satellite Society", "Orion Outreach Trust"]
CITIES = ["Denver", "Leeds", "Osaka", "Kraków", "Montreal", "Nairobi", "Valencia", "Perth", "Tallinn", "Austin"]
COUNTRIES = ["Iceland", "Chile", "Kenya", "Vietnam", "Portugal", "Canada", "Japan", "Poland", "Mexico", "Norway"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
ERROR_CODES = ["E-12", "E-41", "E-57", "R-03", "R-07", "R-11"]
TICKET_PRODUCTS = [f"{p.model} {p.kind}" for p in PRODUCTS] + [p.model for p in PRODUCTS] + [
    f"{p.name} {p.kind}" for p in PRODUCTS]


def typos(text: str, rng: random.Random, n: int) -> str:
    # Swap two letters in a few long lowercase words; model numbers and cue words in caps survive.
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if w.isalpha() and w.islower() and len(w) > 4]
    for i in rng.sample(spots, min(n, len(spots))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def make_email(rng: random.Random, category: str) -> tuple[str, dict]:
    priority = rng.choice([p for p in PRIORITIES if (category, p) in ISSUES])
    body, summary = rng.choice(ISSUES[(category, priority)])
    product, product2 = rng.sample(TICKET_PRODUCTS, 2)
    slots = {
        "product": product, "product2": product2, "order": f"ACM-{rng.randint(100000, 999999)}",
        "amount": f"${rng.randint(19, 1900)}.{rng.choice(['00', '00', '99', '50'])}", "n": rng.randint(2, 6),
        "date": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}", "weeks": rng.randint(2, 6),
        "hours": rng.randint(2, 9), "code": rng.choice(ERROR_CODES), "city": rng.choice(CITIES),
        "country": rng.choice(COUNTRIES), "weekday": rng.choice(WEEKDAYS), "years": rng.randint(2, 9),
        "month": rng.choice(MONTHS), "serial": f"{rng.choice('ABCDEFGH')}{rng.randint(1000000, 9999999)}",
    }
    summary = summary.format(**slots)
    summary = summary[0].upper() + summary[1:]
    assert len(summary.split()) <= 12, summary

    backstory = rng.sample(BACKSTORY, rng.choice([0, 0, 0, 1, 2]))
    sentences = [rng.choice(OPENERS), *backstory, body, rng.choice(DETAILS), rng.choice(TONES),
                 rng.choice(PRIORITY_CUES[priority])]
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

    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    signature = rng.choice([name, name.split()[0], f"{name}\n{rng.choice(ORGS)}", f"{name}\nSent from my phone"])
    greeting = rng.choice(GREETINGS)
    parts = ([f"Subject: {rng.choice(SUBJECTS[category])}"] if rng.random() < 0.5 else [])
    parts += ([greeting] if greeting else []) + [text, f"{rng.choice(CLOSINGS)}\n{signature}"]
    ticket = {"priority": priority, "category": category, "summary": summary}
    return "\n\n".join(parts), ticket


def stratified_split(items: dict[str, list], n_eval: dict[str, int], n_fewshot: dict[str, int], sub=None):
    """Per class: the first n_eval items go to eval, n_fewshot to the few-shot pool, the rest to train.

    `sub(row)` names a sub-class (a ticket's priority): the few-shot pool takes them in turn,
    so a 4-example prompt can show every priority instead of whatever came first.
    """
    train, evals, fewshot = [], [], []
    for cls, rows in items.items():
        evals += rows[:n_eval[cls]]
        rest = rows[n_eval[cls]:]
        subs = dedupe([sub(r) if sub else "" for r in rest])
        picked = []
        while len(picked) < n_fewshot[cls]:
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


def make_tickets(seed: int) -> dict:
    rng = random.Random(f"{seed}:tickets")
    seen: set[str] = set()
    items: dict[str, list] = {}
    for category, count in CATEGORY_WEIGHTS.items():
        rows = items.setdefault(category, [])
        while len(rows) < count:
            email, ticket = make_email(rng, category)
            if email not in seen:  # inputs are unique across every split
                seen.add(email)
                rows.append({"input": email, "output": compact(ticket)})
    n_eval = {c: (16 if w == 90 else 8) for c, w in CATEGORY_WEIGHTS.items()}
    train, evals, fewshot = stratified_split(items, n_eval, {c: 4 for c in CATEGORY_WEIGHTS},
                                             sub=lambda r: json.loads(r["output"])["priority"])
    for rows in (train, evals, fewshot):
        rng.shuffle(rows)
    fewshot = spread(fewshot, lambda r: (json.loads(r["output"])["category"], json.loads(r["output"])["priority"]))
    return {"train": train, "eval": evals, "fewshot": fewshot}


TICKET_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Support ticket",
    "description": "A customer email turned into a ticket. summary: at most 12 words.",
    "type": "object",
    "properties": {
        "priority": {"type": "string", "enum": PRIORITIES},
        "category": {"type": "string", "enum": CATEGORIES},
        "summary": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    "required": ["priority", "category", "summary"],
    "additionalProperties": False,
}


# ======================================================================================
# Scenario: specialty (symptoms in lay words -> which specialist)
# ======================================================================================

# Per specialty: "primary" complaints only that specialist would own, and "secondary" ones
# that are vague or shared with other specialties. The label follows the primary complaints;
# a secondary one from a different specialty is mixed in sometimes to make it non-trivial.
SPECIALTIES = {
    "Cardiologist": (
        ["my heart races or pounds for no reason, even when I'm sitting still",
         "I get a crushing pressure in my chest when I walk uphill that goes away when I rest",
         "my heartbeat feels irregular, like it skips and then thumps",
         "I nearly fainted twice and my pulse felt really fast right before",
         "there's a tight squeezing feeling in the middle of my chest that spreads to my left arm",
         "my ankles swell up by the evening and I have to sleep propped up on pillows to breathe",
         "my blood pressure at the pharmacy machine was 170 over 100",
         "my heart flutters like a bird in my chest a few times a day"],
        ["I get a bit short of breath", "I've felt more tired than usual", "I feel lightheaded sometimes"]),
    "Dermatologist": (
        ["I have a mole on my back that has grown and changed colour",
         "there's a red, scaly patch on my elbows that flakes off",
         "I keep getting painful pimples and cysts along my jaw",
         "a spot on my nose bleeds, scabs over and never fully heals",
         "my scalp is covered in flaky, itchy patches",
         "my toenails have turned yellow, thick and crumbly",
         "I've got a ring-shaped rash on my arm that is slowly getting bigger",
         "patches of my skin have lost their colour and gone white",
         "I'm losing hair in round, coin-sized bald patches"],
        ["it itches at night", "it's worse after hot showers", "I'm a bit self-conscious about it"]),
    "Neurologist": (
        ["I get pins and needles and numbness down one side of my body",
         "I have pounding headaches with flashing zigzag lights beforehand",
         "my hand shakes when it's resting and it's getting worse",
         "for a few minutes my face drooped and my words came out jumbled",
         "I blank out for a few seconds and people say I stare into space",
         "my legs feel weak and I keep tripping over my own feet",
         "I've been forgetting words and getting lost on routes I've driven for years",
         "I had a seizure last week, my first one ever",
         "I get electric-shock pains shooting across my face when I chew"],
        ["I feel dizzy at times", "I've had trouble concentrating", "I've been more tired than usual"]),
    "Ophthalmologist": (
        ["my vision has gone blurry in one eye over the past few weeks",
         "I suddenly see lots of floaters and flashes of light in my right eye",
         "it looks like a dark curtain is coming down over part of my vision",
         "my eye is red and painful, and bright light really hurts it",
         "straight lines like door frames look wavy to me",
         "I see halos around headlights when I drive at night",
         "one eye feels gritty, like there's sand in it, and it's red",
         "I've lost part of the side vision in my left eye",
         "there's a cloudy whitish spot in the middle of my eye"],
        ["I get headaches after reading", "my eyes water a lot", "I've been squinting more"]),
    "Gastroenterologist": (
        ["I get burning pain in my upper stomach that's worse after meals",
         "there's been blood in my stool a few times",
         "I've had diarrhoea on and off for weeks with cramping",
         "food feels like it gets stuck on the way down when I swallow",
         "I'm bloated and constipated most of the week",
         "I have heartburn almost every night and it wakes me up",
         "my stools have turned black and sticky like tar",
         "the whites of my eyes look yellow and my pee is dark",
         "I get sharp cramps low in my belly that ease after I go to the toilet"],
        ["I've lost a bit of weight without trying", "I feel a bit nauseous", "my appetite is down"]),
    "Orthopedist": (
        ["my knee gives way and clicks when I go down stairs",
         "I twisted my ankle a month ago and it's still swollen and hurts to walk on",
         "my shoulder hurts when I lift my arm above my head",
         "I have a sharp pain in my heel with the first steps in the morning",
         "my wrist has been painful and swollen since I fell on it",
         "my hip aches deep in the joint and it's hard to put my socks on",
         "my thumb joint is stiff and painful when I open jars",
         "I felt a pop in my knee playing football and it swelled up",
         "my lower back hurts after lifting boxes and it's stiff in the morning"],
        ["it's worse in the mornings", "painkillers only help a little", "it stops me exercising"]),
    "Pulmonologist": (
        ["I've had a cough for three months that brings up phlegm",
         "I wheeze when I breathe out, especially at night",
         "I coughed up some blood-streaked mucus",
         "I get out of breath just walking to the mailbox, and I smoked for thirty years",
         "there's a sharp pain in my side when I take a deep breath",
         "I have a dry cough that won't go away and my chest feels tight",
         "I can't take a full breath and my lips look a bit blue",
         "my chest X-ray showed a spot on my lung"],
        ["I get a bit short of breath", "I feel tired all the time", "I sleep badly"]),
    "Endocrinologist": (
        ["I'm thirsty all the time, peeing a lot, and I've lost weight without trying",
         "there's a lump at the front of my neck that moves when I swallow",
         "my hands shake, I sweat a lot and I'm losing weight even though I eat loads",
         "I feel cold all the time, my skin is dry and I've gained weight without eating more",
         "my blood sugar on my home meter keeps reading over 250",
         "the skin on the back of my neck has gone dark and velvety",
         "my face has become round and puffy and I bruise really easily",
         "I broke a bone in a small fall and my calcium level came back high"],
        ["I'm tired all the time", "I've been moody", "my heart pounds sometimes"]),
    "Otolaryngologist": (
        ["my ears ring constantly and I can't hear well in my left ear",
         "I've had a blocked nose and pressure in my face for over three months",
         "my voice has been hoarse for six weeks",
         "the room spins for a minute whenever I roll over in bed",
         "I have a sore throat on one side and a lump in my neck",
         "I keep getting nosebleeds from the same side",
         "my ear is painful and there's fluid coming out of it",
         "I've lost my sense of smell since the winter",
         "it feels like there's always something stuck in my throat"],
        ["I feel a bit dizzy", "I get headaches", "I snore"]),
    "Psychiatrist": (
        ["I've felt low and lost interest in everything for months",
         "I get sudden panic attacks where I think I'm dying",
         "I can't stop checking the locks and the stove, over and over",
         "I've been hearing voices that other people don't hear",
         "I go days with barely any sleep feeling on top of the world, then I crash",
         "I have nightmares and flashbacks about my car accident",
         "I can't control my worrying, it's about everything",
         "I've had thoughts that everyone would be better off without me",
         "I've been drinking every night to calm down and I can't stop"],
        ["I've been more tired than usual", "my heart pounds sometimes", "I'm not sleeping well"]),
    "Allergist": (
        ["I sneeze and my eyes itch every spring when the trees bloom",
         "my lips swelled up after I ate peanuts",
         "I break out in hives whenever I'm around cats",
         "my throat felt tight after a bee sting",
         "I get a stuffy, runny nose and itchy eyes whenever I dust the house",
         "I get an itchy rash wherever my metal watch strap touches my skin",
         "my mouth itches when I eat raw apples",
         "I got hives all over after taking penicillin",
         "I wheeze and sneeze every time I visit my friend who has a dog"],
        ["my eyes water", "I feel a bit run down", "it's worse outdoors"]),
    "Urologist": (
        ["it burns when I pee and I have to go all the time",
         "I've seen blood in my pee, but it doesn't hurt",
         "I have a terrible pain in my side that comes in waves and goes down to my groin",
         "I get up four or five times a night to pee and the stream is weak",
         "I have trouble starting to pee and I dribble afterwards",
         "I've noticed a painless lump in one testicle",
         "I leak urine when I cough or laugh",
         "I keep getting bladder infections, this is the fourth this year",
         "I have trouble getting and keeping an erection"],
        ["I feel tired", "my lower back aches a bit", "I've had a low fever"]),
}
DURATIONS = ["a few days", "about a week", "two weeks", "a month", "six weeks", "a couple of months",
             "half a year", "ages"]
PATIENT_OPENERS = ["Hi!", "Hello doctor.", "Not sure who to ask.", "Quick question.", "Hi, hoping you can help.",
                   "I'm {age} and", "I'm a {age}-year-old {who} and", "", "", ""]
# (who, youngest, oldest): keeps "a 79-year-old student" out of the data.
WHO = [("teacher", 24, 66), ("nurse", 22, 66), ("retired engineer", 62, 84), ("student", 18, 27),
       ("mum of two", 26, 48), ("bus driver", 25, 66), ("chef", 20, 64), ("office worker", 21, 66)]
CONTEXT = ["I'm otherwise healthy.", "I work night shifts.", "I run three times a week.", "I don't smoke.",
           "I'm on no regular medication.", "My dad had something similar.", "I travel a lot for work.", "", "", ""]
ASKS = ["Who should I see?", "What kind of doctor do I need?", "Which specialist would you recommend?",
        "Should I be worried?", "Where should I go with this?", "", ""]


def make_complaint(rng: random.Random, label: str) -> str:
    primary, secondary = SPECIALTIES[label]
    p1, p2 = rng.sample(primary, 2)
    dur = rng.choice(DURATIONS)
    form = rng.randrange(4)
    if form == 0:
        main = f"For {dur} {p1}."
    elif form == 1:
        main = f"{cap(p1)}, and {p2}."
    elif form == 2:
        main = f"It started {dur} ago: {p1}. Also {p2}."
    else:
        main = f"{cap(p1)}. It's been like this for {dur}."
    extras = []
    if rng.random() < 0.5:
        extras.append(cap(rng.choice(secondary)) + ".")
    if rng.random() < 0.35:  # a vague complaint that belongs to another specialty
        other = rng.choice([k for k in SPECIALTIES if k != label])
        extras.append(f"{rng.choice(['Also', 'And', 'Oh and'])} {rng.choice(SPECIALTIES[other][1])}.")
    who, lo, hi = rng.choice(WHO)
    opener = rng.choice(PATIENT_OPENERS).format(age=rng.randint(lo, hi), who=who)
    if opener.endswith(" and") and not re.match(r"I\b", main):
        main = main[0].lower() + main[1:]
    parts = [opener, main, *extras, rng.choice(CONTEXT), rng.choice(ASKS)]
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.25:
        text = typos(text, rng, rng.randint(1, 2))
    if rng.random() < 0.15:
        text = text.lower()
    return text


def make_specialty(seed: int) -> dict:
    rng = random.Random(f"{seed}:specialty")
    seen: set[str] = set()
    items: dict[str, list] = {}
    for label in SPECIALTIES:
        rows = items.setdefault(label, [])
        while len(rows) < 40:
            text = make_complaint(rng, label)
            if text not in seen:
                seen.add(text)
                rows.append({"input": text, "output": label})
    train, evals, fewshot = stratified_split(items, {k: 7 for k in SPECIALTIES}, {k: 2 for k in SPECIALTIES})
    for rows in (train, evals, fewshot):
        rng.shuffle(rows)
    fewshot = spread(fewshot, lambda r: (r["output"],))  # the first 12: one per specialty
    return {"train": train, "eval": evals, "fewshot": fewshot}


# ======================================================================================
# Task files and READMEs
# ======================================================================================

COST_TABLE = """
# Money per rung. Token prices are 0 because the lab runs local models (put an API's prices
# here to compare); an hour of this machine's CPU ~ $0.05, a cloud GPU hour ~ $1.20.
[cost]
requests_per_day = 10000
price_per_1k_prompt_tokens = 0.0
price_per_1k_completion_tokens = 0.0
gpu_hour_price = 1.20
cpu_hour_price = 0.05
"""

TICKETS_INSTRUCTION = """You turn customer emails to Acme Orbital Tools into support tickets.
Reply with one JSON object and nothing else, keys in this order:
"priority": "low", "medium", "high" or "urgent"
"category": "billing", "technical", "account", "shipping", "feature_request" or "other"
"summary": what the customer needs, at most 12 words.
Priority: urgent = something is down, unsafe, compromised or losing money right now;
high = the customer is blocked or out of pocket and needs it today;
medium = a real problem with a workaround, or a request that needs action;
low = a question, a cosmetic issue or a nice-to-have."""

SPECIALTY_INSTRUCTION = """Read the patient's description of their symptoms and say which specialist they should see.
Answer with exactly one of: {labels}.
Answer with the specialist only, no other words."""

ACME_INSTRUCTION = """You answer questions about Acme Orbital Tools, its products, policies and support.
Answer with the short answer only: a price, a number with its unit, a date, a name or a model number.
If documents are provided, answer from them."""


def task_toml(name: str, description: str, instruction: str, body: str) -> str:
    return f"""# Generated by scripts/make_scenarios.py; edit the generator, not this file.
name = {toml_str(name)}
description = {toml_str(description)}
instruction = \"\"\"
{instruction}\"\"\"
{body.strip()}
{COST_TABLE}"""


def readme(title: str, task: str, data: str, prediction: str, why: str) -> str:
    return f"""# {title}

{task}

{data}

## What the seeds predict: {prediction}

{why}

## What the lab does with the prediction

Nothing, except print it next to the result. The lab runs every rung on the same held-out
`eval.jsonl`, with the same model and the same scorers, and recommends the cheapest rung that
reaches the `target` in `task.toml`. If the measurements contradict the prediction above, the
report says so and the measurements win.

Generated by `scripts/make_scenarios.py` (fixed seed); do not edit the data by hand.
"""


def write_scenarios(out: Path, seed: int, facts: list[Fact], files: dict[str, str]) -> dict[str, dict]:
    tickets, specialty, acme = make_tickets(seed), make_specialty(seed), make_acme_facts(seed, facts, files)
    for name, data in (("tickets", tickets), ("specialty", specialty), ("acme-facts", acme)):
        folder = out / name
        for split in ("train", "eval", "fewshot"):
            write_jsonl(folder / f"{split}.jsonl",
                        [{"id": f"{name}-{split}-{i}", **r} for i, r in enumerate(data[split])])
    counts = {name: {s: len(d[s]) for s in ("train", "eval", "fewshot")}
              for name, d in (("tickets", tickets), ("specialty", specialty), ("acme-facts", acme))}

    write(out / "tickets" / "schema.json", json.dumps(TICKET_SCHEMA, indent=2) + "\n")
    write(out / "tickets" / "task.toml", task_toml(
        "tickets", "Customer email -> JSON support ticket (priority, category, summary).", TICKETS_INSTRUCTION, """
output_format = "json"
json_schema = "schema.json"
# json_valid: parses; schema_valid: matches schema.json; field_accuracy: priority and category
# right (the summary is free text, scored on its own); exact_match: the whole ticket.
scorers = ["json_valid", "schema_valid", "field_accuracy", "exact_match"]
primary_metric = "field_accuracy"
target = 0.85
train = "train.jsonl"
eval = "eval.jsonl"
fewshot = "fewshot.jsonl"
few_shot_k = 4  # emails are long: 4 examples keep the prompt inside a 2048-token context
max_tokens = 96  # a ticket is ~40 tokens; room for a slightly chatty model to finish
"""))
    write(out / "tickets" / "README.md", readme(
        "tickets: customer email to JSON ticket",
        "The input is a customer email to Acme Orbital Tools (greetings, typos, signatures and all). "
        "The output is one compact JSON object, keys in this order: "
        '`{"priority": "low|medium|high|urgent", "category": "billing|technical|account|shipping|'
        'feature_request|other", "summary": "<= 12 words"}`. `schema.json` is the contract.',
        f"Data: {counts['tickets']['train']} train, {counts['tickets']['eval']} eval, "
        f"{counts['tickets']['fewshot']} few-shot pool, all different emails. Priority and category follow "
        "from what the email says (the rules are in the instruction in `task.toml`).",
        "fine-tune",
        "This is the seeds' own example of a fine-tuning job: a few hundred email-to-ticket pairs, a LoRA "
        "run, and the model emits clean JSON without a long instruction. The task needs no knowledge the "
        "model lacks; what is hard is behaviour: the exact keys in the exact order, only the allowed "
        "values, every time. The seeds call that what fine-tuning is for: a format the base model breaks "
        "one time in twenty can be trained down to near zero, and a tuned small model no longer pays for "
        "the long instruction on each of 10,000 requests a day. The training set clears the seeds' "
        "\"200+ examples\" bar. RAG should not help here: there is nothing to look up."))

    labels = list(SPECIALTIES)
    write(out / "specialty" / "task.toml", task_toml(
        "specialty", "Symptoms in a patient's own words -> which specialist to see.",
        SPECIALTY_INSTRUCTION.format(labels=", ".join(labels)), f"""
output_format = "label"
labels = [{", ".join(toml_str(x) for x in labels)}]
# label_accuracy: the label the answer names is right ("The Dermatologist." counts);
# exact_match: the answer is the label and nothing else; macro_f1: balance across labels.
scorers = ["label_accuracy", "exact_match", "macro_f1"]
primary_metric = "label_accuracy"
target = 0.80
train = "train.jsonl"
eval = "eval.jsonl"
fewshot = "fewshot.jsonl"
few_shot_k = 12  # one example per specialty fits easily: the descriptions are short
max_tokens = 16
"""))
    write(out / "specialty" / "README.md", readme(
        "specialty: which specialist should this patient see?",
        f"The input is a symptom description in a patient's own words; the output is one of "
        f"{len(labels)} labels: {', '.join(labels)}. Each description names one or two complaints that "
        "belong to one specialty, sometimes mixed with vague ones (tiredness, dizziness, shortness of "
        "breath) that point elsewhere; the label follows the specific complaints. Not medical advice: the "
        "data is synthetic.",
        f"Data: {counts['specialty']['train']} train, {counts['specialty']['eval']} eval (7 per label), "
        f"{counts['specialty']['fewshot']} few-shot pool (2 per label).",
        "a contest between few-shot prompting and fine-tuning",
        "A narrow classifier is the seeds' borderline case. Their decision order asks first whether "
        "few-shot prompting is good enough, with a concrete test: put your 20 best examples in the prompt, "
        "score 50 held-out ones, and if that reaches 90% of the quality target, stop at the prompt. The "
        "seeds' own demo of this very task argues the other side: few-shot is limited by the examples "
        "that fit in the prompt, while fine-tuning bakes thousands of them into the weights, cheaper per "
        "request and more accurate for a narrow domain. Which side wins depends on the model: the lab "
        "runs both and shows the margin. RAG has nothing to retrieve."))

    probe = acme["probe"]
    write(out / "acme-facts" / "task.toml", task_toml(
        "acme-facts", "Questions about Acme Orbital Tools, a company no model has heard of; the corpus has the answers.",
        ACME_INSTRUCTION, f"""
output_format = "text"
corpus = "acme"  # corpora/acme in the lab home; each record's gold_doc is relative to it
# contains_fact: the answer or one of the record's aliases appears in the reply (whole words);
# recall_at_k: the record's gold_doc is among the retrieved passages (RAG rungs only).
scorers = ["contains_fact", "exact_match", "recall_at_k"]
primary_metric = "contains_fact"
target = 0.80
train = "train.jsonl"
eval = "eval.jsonl"
fewshot = "fewshot.jsonl"
few_shot_k = 4
max_tokens = 32

# Staleness probe: edit `doc` replacing `old` with `new`, re-index, ask `question` again.
# RAG picks up the new fact at once; an adapter trained on the old one keeps saying `old`.
[probe]
doc = {toml_str(probe["doc"])}
old = {toml_str(probe["old"])}
new = {toml_str(probe["new"])}
question = {toml_str(probe["question"])}
"""))
    n_unseen = sum(1 for r in acme["eval"] if not r["seen_in_train"])
    write(out / "acme-facts" / "README.md", readme(
        "acme-facts: questions about a company no model knows",
        "Acme Orbital Tools is invented (see `corpora/acme/`): product model numbers, prices, warranty "
        "lengths, support hours, firmware versions, office cities. No pretrained model can know any of it. "
        "Each record has the short answer as `output`, accepted variants as `aliases` and the one corpus "
        "document that states it as `gold_doc`.",
        f"Data: {counts['acme-facts']['train']} train, {counts['acme-facts']['eval']} eval, "
        f"{counts['acme-facts']['fewshot']} few-shot pool. Train and eval ask about overlapping facts in "
        f"different words (the best case for fine-tuning on facts); {n_unseen} eval questions are about "
        "facts the training set never mentions (`seen_in_train: false`), as real users ask about things "
        "nobody wrote a training example for. The `[probe]` table in `task.toml` changes one fact in "
        f"its document ({probe['doc']}: {probe['old']} -> {probe['new']}) to show which rungs go stale.",
        "RAG",
        "This is the seeds' \"common pitfall\": fine-tuning to inject facts. Fine-tuning shapes behaviour "
        "and style; it is a poor and expensive way to add knowledge, it still makes confident wrong "
        "guesses, and what it learned goes stale the moment a document changes, because updating means "
        "retraining. Retrieval hands the model the current document at question time: edit the document, "
        "re-index, and the next answer is right. The prompt rung alone cannot know these facts at all."))
    return counts


def write_corpus(out: Path, files: dict[str, str]) -> None:
    # Remove documents from an older run so a renamed file cannot leave a fact in two places.
    if out.is_dir():
        for old in sorted(out.rglob("*")):
            rel = old.relative_to(out).as_posix()
            if old.is_file() and old.suffix in (".md", ".txt", ".html", ".jsonl") and rel not in files:
                print(f"removing stale {old}")
                old.unlink()
    for rel, text in files.items():
        write(out / rel, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "lab" / "scenarios",
                    help="folder for the scenarios (default: lab/scenarios)")
    ap.add_argument("--corpus-out", type=Path, default=ROOT / "corpora" / "acme",
                    help="folder for the Acme corpus (default: corpora/acme)")
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
