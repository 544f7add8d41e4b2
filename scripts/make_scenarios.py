#!/usr/bin/env python3
"""Generate the lab's built-in scenarios and the fictional Acme corpus, deterministically.

    python scripts/make_scenarios.py                 # writes lab/scenarios/ and corpora/acme/
    python scripts/make_scenarios.py --out /tmp/s --corpus-out /tmp/acme

Three scenarios, one per rung the seeds predict:
  tickets     customer email -> JSON ticket (format/behaviour: fine-tune territory)
  specialty   symptoms in lay words -> which specialist (narrow classifier: few-shot vs tune)
  acme-facts  questions about a company no model has heard of (knowledge: RAG territory)

Everything comes from tables in this file and `random.Random(seed)`, so two runs give
byte-identical files and the acme questions can never disagree with the acme documents:
both are rendered from the same fact table. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240611


# ======================================================================================
# Small helpers
# ======================================================================================

def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_jsonl(path: Path, records: list[dict]) -> None:
    write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def compact(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def toml_str(s: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(s, ensure_ascii=False)


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


# Answers and the variants a grader should accept for them.

def money(amount: str) -> tuple[str, list[str]]:
    digits = amount.replace("$", "").replace(",", "")
    return amount, dedupe([digits, f"${digits}", amount.replace("$", ""), f"{amount}.00",
                           f"{digits} dollars", f"USD {digits}"])


def qty(value: str, unit: str, *extra: str) -> tuple[str, list[str]]:
    words = {"kg": "kilograms", "g": "grams", "h": "hours", "W": "watts", "kW": "kilowatts",
             "m": "meters", "GB": "gigabytes", "V": "volts"}
    answer = f"{value} {unit}"
    aliases = [f"{value}{unit}", f"{value} {words[unit]}"] if unit in words else []
    if unit in ("hours", "days", "months", "weeks", "seconds"):
        aliases.append(f"{value}-{unit[:-1]}")
    return answer, dedupe(aliases + list(extra))


def pct(value: str) -> tuple[str, list[str]]:
    return f"{value}%", [f"{value} percent", f"{value} per cent"]


def date(y: int, m: int, d: int) -> tuple[str, list[str]]:
    name = MONTHS[m - 1]
    return f"{name} {d}, {y}", [f"{d} {name} {y}", f"{y}-{m:02d}-{d:02d}", f"{name[:3]} {d}, {y}",
                                f"{name} {d} {y}"]


def plain(answer: str, *aliases: str) -> tuple[str, list[str]]:
    return answer, list(aliases)


# ======================================================================================
# The Acme fact table. Every fact lives in exactly one document, the one named here.
# ======================================================================================

@dataclass
class Fact:
    key: str
    doc: str  # path relative to the corpus root: the gold document
    answer: str
    aliases: list[str]
    questions: list[str]


@dataclass
class Product:
    model: str
    name: str
    kind: str
    price: str
    weight: tuple[str, str]  # (value, unit)
    power: tuple[str, str, str]  # (label, value, unit): battery life or power draw
    warranty_months: int
    launch: tuple[int, int, int]
    spec: tuple[str, str, list[str]]  # (label, answer, aliases): one spec only this kind has
    tagline: str
    features: list[str]
    box: list[str]
    firmware: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)  # newest first

    @property
    def slug(self) -> str:
        return self.model.lower()

    @property
    def doc(self) -> str:
        return f"products/{self.slug}.md"


PRODUCTS = [
    Product("AX-220", "Skylark", "star tracker", "$649", ("2.3", "kg"), ("battery life", "11", "hours"), 24,
            (2022, 4, 12), ("payload capacity", "5.5 kg", ["5.5kg", "5.5 kilograms"]),
            "A backpack-sized star tracker for wide-field astrophotography from dark sites.",
            ["Quiet harmonic drive that tracks at sidereal, solar and lunar rates",
             "Illuminated polar scope with a built-in inclinometer",
             "USB-C charging, so a power bank keeps it running all night"],
            ["AX-220 tracker head", "Declination bracket", "USB-C cable", "Quick start card"],
            [("4.2.1", (2024, 5, 14)), ("4.2.0", (2024, 2, 2)), ("4.1.3", (2023, 9, 28))]),
    Product("AX-340", "Kestrel", "equatorial mount", "$1,390", ("8.9", "kg"), ("battery life", "7", "hours"), 36,
            (2023, 2, 7), ("payload capacity", "14 kg", ["14kg", "14 kilograms"]),
            "A go-to equatorial mount for observatories that have to fit in a car boot.",
            ["Belt-driven axes with under 3 arcseconds of periodic error",
             "A hand controller with the Acme Sky Catalog built in",
             "Through-the-mount cabling for camera, focuser and dew heater"],
            ["AX-340 mount head", "Stainless counterweight bar", "Hand controller", "Carrying strap"],
            [("2.8.0", (2024, 7, 9)), ("2.7.4", (2024, 1, 16)), ("2.7.0", (2023, 8, 21))]),
    Product("RT-90", "Halyard", "antenna rotator", "$485", ("4.1", "kg"), ("power consumption", "36", "W"), 24,
            (2021, 9, 21), ("rotation speed", "6 degrees per second", ["6°/s", "6 deg/s"]),
            "An azimuth-elevation rotator that points a small Yagi at passing satellites.",
            ["Closed-loop positioning with absolute encoders",
             "Weatherproof housing rated for year-round rooftop use",
             "Speaks the common rotator control protocols out of the box"],
            ["RT-90 rotator", "Mast clamp set", "Control cable (20 m)", "Power supply"],
            [("1.9.2", (2024, 4, 30)), ("1.9.0", (2023, 12, 5)), ("1.8.1", (2023, 6, 13))]),
    Product("RT-150", "Bowline", "antenna rotator", "$1,120", ("11.6", "kg"), ("power consumption", "95", "W"), 36,
            (2023, 10, 3), ("maximum antenna load", "45 kg", ["45kg", "45 kilograms"]),
            "A heavy-duty rotator for dish and array setups at club and university ground stations.",
            ["Dual worm gears that hold position with the power off",
             "Network control port with a built-in web page",
             "Cable-wrap protection that stops before the coax twists"],
            ["RT-150 rotator", "Heavy mast clamp", "Network controller", "Mounting hardware kit"]),
    Product("SDR-7", "Lumen", "software-defined radio", "$329", ("0.42", "kg"), ("battery life", "6.5", "hours"), 18,
            (2022, 11, 15), ("frequency range", "24 MHz to 3.8 GHz", ["24 MHz-3.8 GHz", "24 MHz - 3.8 GHz"]),
            "A pocket receiver for weather satellites, telemetry beacons and the ham bands.",
            ["Internal battery for portable passes in the field",
             "A low-noise amplifier with a bypass switch",
             "Works with Mission Control and the usual open-source SDR tools"],
            ["SDR-7 receiver", "Telescopic antenna", "USB-C cable", "Soft pouch"],
            [("3.3.0", (2024, 6, 25)), ("3.2.2", (2024, 1, 30)), ("3.2.0", (2023, 7, 18))]),
    Product("SDR-12", "Corona", "software-defined radio", "$879", ("0.78", "kg"), ("power consumption", "14", "W"), 24,
            (2024, 3, 19), ("frequency range", "9 kHz to 6.2 GHz", ["9 kHz-6.2 GHz", "9 kHz - 6.2 GHz"]),
            "A two-channel transceiver for ground stations that need to talk back to their satellite.",
            ["Two receive and two transmit channels with a shared clock",
             "GPS-disciplined oscillator input for timing-critical links",
             "Aluminium case with passive cooling fins"],
            ["SDR-12 transceiver", "GPS antenna", "12 V power supply", "SMA adapter set"],
            [("1.4.1", (2024, 9, 10)), ("1.4.0", (2024, 6, 4)), ("1.3.0", (2024, 3, 19))]),
    Product("GS-1", "Waypoint", "ground station kit", "$2,450", ("19.5", "kg"), ("power consumption", "120", "W"), 36,
            (2020, 6, 30), ("dish diameter", "1.2 m", ["1.2m", "1.2 meters", "120 cm"]),
            "Everything a school or club needs to receive its first satellite, in two boxes.",
            ["Pre-aligned dish and feed, no RF tools needed",
             "Rotator, receiver and control computer already configured",
             "Lesson plans for a term of satellite tracking"],
            ["Dish and feed", "Rotator and mast adapter", "Receiver", "Control computer", "Cabling kit"]),
    Product("CB-3U", "Tessera", "CubeSat development board", "$1,875", ("0.36", "kg"), ("power consumption", "4.5", "W"), 12,
            (2023, 5, 23), ("flash storage", "64 GB", ["64GB", "64 gigabytes"]),
            "A flight-like on-board computer for prototyping 3U CubeSat missions on the bench.",
            ["Radiation-tolerant memory with error correction",
             "PC/104 stack connector that matches common CubeSat kits",
             "A bench harness with test points for every bus"],
            ["CB-3U board", "Bench harness", "Debug probe", "Standoff kit"]),
    Product("TD-45", "Vernier", "torque driver", "$219", ("0.61", "kg"), ("battery life", "9", "hours"), 24,
            (2021, 3, 9), ("torque range", "0.4 to 4.5 Nm", ["0.4-4.5 Nm", "0.4 to 4.5 newton metres"]),
            "A digital torque driver for the small fasteners on satellite structures.",
            ["Logs every fastener with time, torque and operator",
             "Audible and haptic cue when the set torque is reached",
             "Comes with a calibration certificate"],
            ["TD-45 driver", "Bit set, 24 pieces", "Charging dock", "Calibration certificate"]),
    Product("BT-8", "Cirrus", "balloon tracker", "$189", ("95", "g"), ("battery life", "30", "hours"), 12,
            (2020, 10, 6), ("GPS update rate", "5 Hz", ["5Hz", "5 times per second"]),
            "A featherweight tracker that reports a high-altitude balloon's position all the way up and down.",
            ["Works above 18 km where consumer GPS units give up",
             "Long-range telemetry on licence-free bands",
             "Cold-rated lithium cells"],
            ["BT-8 tracker", "Antenna", "Mounting ties", "Battery pack"],
            [("5.0.2", (2024, 3, 12)), ("5.0.0", (2023, 11, 7)), ("4.6.1", (2023, 5, 2))]),
    Product("TV-2", "Coldwell", "thermal vacuum chamber", "$14,900", ("68", "kg"), ("power consumption", "2.2", "kW"), 12,
            (2022, 8, 16), ("temperature range", "-70 °C to 150 °C", ["-70 to 150 °C", "-70 to 150 degrees Celsius"]),
            "A benchtop chamber for testing small satellite parts in vacuum and temperature cycles.",
            ["Reaches working vacuum in about twenty minutes",
             "Programmable temperature profiles with data export",
             "Feedthroughs for power, data and thermocouples"],
            ["TV-2 chamber", "Vacuum pump", "Controller", "Feedthrough kit"]),
    Product("SP-60", "Heliograph", "solar panel tester", "$540", ("1.4", "kg"), ("battery life", "14", "hours"), 24,
            (2021, 11, 2), ("maximum input voltage", "150 V", ["150V", "150 volts"]),
            "A handheld IV-curve tracer for checking satellite and ground solar panels.",
            ["Traces a full IV curve in under a second",
             "Built-in irradiance and temperature sensor",
             "Saves curves as CSV for later comparison"],
            ["SP-60 tester", "Irradiance sensor", "Test leads", "Hard case"]),
    Product("OC-5", "Pathfinder", "orbit calculator", "$129", ("0.21", "kg"), ("battery life", "40", "hours"), 12,
            (2019, 10, 8), ("display size", "3.5 inches", ["3.5 inch", "3.5in", "3.5\""]),
            "A handheld that predicts satellite passes anywhere, with no phone and no signal.",
            ["Updates its orbital elements from a USB stick",
             "Pass alarms with azimuth and elevation",
             "Red night-vision display mode"],
            ["OC-5 calculator", "Lanyard", "USB cable"]),
    Product("ML-4", "Meridian", "mission data logger", "$395", ("0.33", "kg"), ("battery life", "21", "days"), 24,
            (2022, 1, 25), ("number of channels", "16 channels", ["16"]),
            "A rugged logger that records temperature, vibration and power during environmental tests.",
            ["Synchronises several loggers to one clock",
             "Triggers recording on shock or threshold events",
             "Sealed case for outdoor campaigns"],
            ["ML-4 logger", "Sensor lead set", "Mounting plate", "USB-C cable"]),
    Product("CAM-11", "Nightjar", "astronomy camera", "$1,049", ("0.68", "kg"), ("power consumption", "18", "W"), 24,
            (2023, 7, 11), ("sensor resolution", "26 megapixels", ["26 MP", "26MP"]),
            "A cooled colour camera for deep-sky imaging and satellite streak photography.",
            ["Two-stage cooling with anti-dew heater",
             "Global shutter mode for timing satellite passes",
             "Tilt adapter for perfect focus across the frame"],
            ["CAM-11 camera", "Power cable", "USB 3 cable", "Tilt adapter"],
            [("2.2.0", (2024, 8, 6)), ("2.1.1", (2024, 2, 27)), ("2.1.0", (2023, 10, 24))]),
    Product("FL-200", "Firefly", "red field lamp", "$59", ("0.18", "kg"), ("battery life", "30", "hours"), 12,
            (2020, 2, 18), ("brightness", "320 lumens", ["320 lm", "320"]),
            "A dimmable red lamp that keeps your night vision intact at the eyepiece.",
            ["Stepless dimming down to a faint glow",
             "Magnetic base and clip for tripod legs",
             "Splash resistant"],
            ["FL-200 lamp", "Clip", "USB-C cable"]),
]

# Non-product facts: key -> (doc, (answer, aliases), questions). The documents below use
# {key} placeholders, and a check makes sure each key appears in its own document only.
OTHER_FACTS = {
    # -- company --
    "founded_year": ("company/about.md", plain("2011"), [
        "In what year was Acme Orbital Tools founded?", "When was Acme Orbital Tools established?",
        "What year did Acme Orbital Tools start out?", "Since which year has Acme Orbital Tools existed?"]),
    "founders": ("company/about.md", plain("Inés Carvajal and Theo Brandt-Lund", "Ines Carvajal and Theo Brandt-Lund",
                                           "Theo Brandt-Lund and Inés Carvajal"), [
        "Who founded Acme Orbital Tools?", "Who are the founders of Acme Orbital Tools?",
        "Which two people started Acme Orbital Tools?"]),
    "countries": ("company/about.md", plain("64 countries", "64"), [
        "In how many countries does Acme Orbital Tools have customers?",
        "How many countries are Acme's customers spread across?",
        "Acme Orbital Tools has customers in how many countries?"]),
    "ceo": ("company/leadership.md", plain("Priya Halvorsen-Ade", "Priya Halvorsen Ade"), [
        "Who is the CEO of Acme Orbital Tools?", "Who runs Acme Orbital Tools as chief executive?",
        "Name the chief executive officer of Acme Orbital Tools."]),
    "cto": ("company/leadership.md", plain("Jonah Mbeki-Strand", "Jonah Mbeki Strand"), [
        "Who is Acme Orbital Tools' CTO?", "Who is the chief technology officer at Acme Orbital Tools?",
        "Which person leads engineering at Acme as CTO?"]),
    "head_support": ("company/leadership.md", plain("Dana Oyelaran-Fisk", "Dana Oyelaran Fisk"), [
        "Who heads customer support at Acme Orbital Tools?", "Who is Acme's vice president of customer support?",
        "Which executive is in charge of support at Acme?"]),
    "hq_city": ("company/offices.md", plain("Tarrow Falls, Oregon", "Tarrow Falls"), [
        "Where is Acme Orbital Tools headquartered?", "In which city is Acme's head office?",
        "Where is the Acme Orbital Tools HQ?"]),
    "eu_office": ("company/offices.md", plain("Porto", "Porto, Portugal"), [
        "Where is Acme's European office?", "Which city hosts Acme Orbital Tools' European office?",
        "Where does Acme have its office in Europe?"]),
    "apac_office": ("company/offices.md", plain("Christchurch", "Christchurch, New Zealand"), [
        "Where is Acme's Asia-Pacific office?", "Which city is home to Acme Orbital Tools' Asia-Pacific team?",
        "In what city does Acme run its APAC office?"]),
    "employees": ("company/careers.md", plain("312 employees", "312", "312 people"), [
        "How many people work at Acme Orbital Tools?", "How many employees does Acme have?",
        "What is Acme Orbital Tools' headcount?"]),
    "careers_email": ("company/careers.md", plain("careers@acme.example"), [
        "What email address should I send a job application to at Acme?",
        "What's Acme Orbital Tools' careers email address?", "Where do I email my CV if I want to work at Acme?"]),
    "internship": ("company/careers.md", qty("14", "weeks"), [
        "How long is the Acme summer internship?", "How many weeks does Acme's internship last?",
        "What is the length of an internship at Acme Orbital Tools?"]),
    "recycled_packaging": ("company/sustainability.md", pct("87"), [
        "What share of Acme's packaging is recycled material?",
        "How much of Acme Orbital Tools' packaging is made from recycled material?",
        "What percentage of recycled content is in Acme packaging?"]),
    "carbon_neutral_year": ("company/sustainability.md", plain("2031"), [
        "By what year does Acme plan to be carbon neutral?", "When will Acme Orbital Tools reach carbon neutrality?",
        "What is Acme's carbon-neutral target year?"]),
    "press_email": ("company/press.md", plain("press@acme.example"), [
        "What email should journalists use to contact Acme?", "What is Acme Orbital Tools' press contact address?",
        "How do I reach Acme's press team by email?"]),
    "brand_color": ("company/press.md", plain("Signal Orange"), [
        "What is the name of Acme's brand colour?", "Which colour is Acme Orbital Tools' official brand colour?",
        "What is Acme's signature colour called?"]),
    "first_product": ("company/history.md", plain("AX-100 Wayfarer", "AX-100", "Wayfarer"), [
        "What was Acme Orbital Tools' first product?", "Which product did Acme launch first?",
        "What did Acme Orbital Tools sell as its very first product?"]),
    "former_name": ("company/history.md", plain("Brandt Carvajal Instruments"), [
        "What was Acme Orbital Tools called before it was renamed?", "What was Acme's original company name?",
        "Under which name did Acme Orbital Tools trade before its rebrand?"]),
    "grant_amount": ("company/grants.md", money("$5,000"), [
        "How much is the Acme Night Sky Grant worth?", "What is the value of the Night Sky Grant?",
        "How much money does the Acme Night Sky Grant award?"]),
    "grant_deadline": ("company/grants.md", plain("October 31", "31 October", "Oct 31"), [
        "When is the deadline for the Night Sky Grant?", "By what date must Night Sky Grant applications be in?",
        "What's the application deadline for Acme's Night Sky Grant?"]),
    "founders_day": ("company/holiday-schedule.txt", plain("September 19", "19 September", "Sept 19", "Sep 19"), [
        "On what date is Acme closed for Founders' Day?", "When is Acme's Founders' Day holiday?",
        "Which day does Acme shut for Founders' Day?"]),
    "winter_shutdown": ("company/holiday-schedule.txt", plain("December 24 to January 1", "24 December to 1 January",
                                                              "Dec 24 to Jan 1"), [
        "When is Acme's winter shutdown?", "Which dates does Acme close over the winter holidays?",
        "From when to when is Acme Orbital Tools closed at the end of the year?"]),
    # -- policies --
    "refund_window": ("policies/returns.md", qty("45", "days"), [
        "How many days do I have to return a product to Acme?", "What is Acme's return window?",
        "How long after delivery can I return an Acme product for a refund?",
        "What's the refund window at Acme Orbital Tools?"]),
    "restocking_fee": ("policies/returns.md", pct("8"), [
        "What restocking fee does Acme charge on opened items?",
        "How much is the restocking fee for an opened Acme product?",
        "Is there a restocking fee at Acme, and how much is it?"]),
    "refund_processing": ("policies/returns.md", qty("6", "business days"), [
        "How long does Acme take to process a refund?",
        "After Acme receives my return, how long until the refund is processed?",
        "How many business days does a refund take at Acme?"]),
    "careplus_price": ("policies/warranty.md", plain("$39 per year", "$39", "39 dollars a year", "$39/year", "39"), [
        "How much does Acme CarePlus cost?", "What is the yearly price of CarePlus?",
        "How much do I pay per year for Acme CarePlus coverage?"]),
    "careplus_extension": ("policies/warranty.md", qty("18", "months"), [
        "By how many months does CarePlus extend the warranty?", "How much extra coverage does CarePlus add?",
        "How long is the extension you get with Acme CarePlus?"]),
    "claim_response": ("policies/warranty.md", qty("3", "business days"), [
        "How quickly does Acme respond to a warranty claim?",
        "Within how many business days will Acme answer my warranty claim?",
        "How long do I wait for a reply after filing a warranty claim with Acme?"]),
    "free_shipping": ("policies/shipping.md", money("$75"), [
        "What is the minimum order for free shipping at Acme?", "Above what order value is Acme shipping free?",
        "How much do I have to spend to get free shipping from Acme?"]),
    "express_fee": ("policies/shipping.md", money("$18"), [
        "How much does express shipping cost at Acme?", "What's Acme's express delivery fee?",
        "What does Acme charge for express shipping?"]),
    "standard_delivery": ("policies/shipping.md", plain("4 to 7 business days", "4-7 business days",
                                                        "four to seven business days"), [
        "How long does standard delivery from Acme take?", "What is Acme's standard shipping time?",
        "How many business days does standard shipping from Acme take?"]),
    "telemetry_retention": ("policies/privacy.md", qty("90", "days"), [
        "How long does Acme keep device telemetry?", "What is the retention period for telemetry data at Acme?",
        "After how many days does Acme delete telemetry?"]),
    "privacy_email": ("policies/privacy.md", plain("privacy@acme.example"), [
        "Which email address handles privacy requests at Acme?", "Where do I send a data deletion request to Acme?",
        "What is Acme Orbital Tools' privacy contact address?"]),
    "tradein_credit": ("policies/trade-in.md", pct("30"), [
        "What is the maximum trade-in credit Acme offers?",
        "How much credit can I get at most by trading in an old Acme device?",
        "Up to what percentage of the new price does Acme's trade-in program pay?"]),
    "quote_valid": ("policies/trade-in.md", qty("14", "days"), [
        "How long is an Acme trade-in quote valid?", "For how many days does a trade-in quote stay valid?",
        "When does my Acme trade-in quote expire?"]),
    "edu_discount": ("policies/education.md", pct("22"), [
        "How big is Acme's education discount?", "What discount do students and teachers get at Acme?",
        "What percentage off is the Acme education discount?"]),
    "edu_limit": ("policies/education.md", plain("2 products per year", "two products per year", "2 products"), [
        "How many discounted products can a student buy from Acme each year?",
        "What is the yearly limit on education-discount purchases?",
        "How many items per year can I buy with the Acme education discount?"]),
    "price_match_window": ("policies/price-match.md", qty("21", "days"), [
        "How long after purchase can I ask Acme for a price match?", "What is Acme's price-match window?",
        "Within how many days must I request a price match from Acme?"]),
    "points_per_dollar": ("policies/loyalty.md", plain("5 Orbit Points", "5 points", "five points"), [
        "How many Orbit Points do I earn per dollar?", "What is the earn rate of the Orbit Points program?",
        "How many loyalty points does Acme give for each dollar spent?"]),
    "points_value": ("policies/loyalty.md", money("$10"), [
        "How much is 1,000 Orbit Points worth?", "What is the cash value of 1,000 Orbit Points?",
        "If I redeem 1,000 Orbit Points, how much credit do I get?"]),
    "large_print": ("policies/accessibility.html", qty("10", "business days"), [
        "How long does it take to get a large-print manual from Acme?",
        "How soon does Acme send out large-print manuals?",
        "Within how many business days are Acme's large-print manuals delivered?"]),
    "access_email": ("policies/accessibility.html", plain("access@acme.example"), [
        "Which email address handles accessibility requests at Acme?",
        "Where do I write to Acme about accessibility?", "What is Acme's accessibility contact email?"]),
    # -- support --
    "support_hours": ("support/contact.md", plain("07:30 to 18:30 Pacific Time", "7:30 to 18:30", "07:30 to 18:30",
                                                   "7:30 am to 6:30 pm", "07:30-18:30"), [
        "What are Acme's support hours?", "When is Acme customer support open?",
        "At what times of day can I reach Acme support?"]),
    "support_days": ("support/contact.md", plain("Monday to Saturday", "Monday through Saturday", "Mon-Sat"), [
        "On which days is Acme support open?", "Which days of the week can I contact Acme support?",
        "Is Acme support open on weekends, which days exactly?"]),
    "support_email": ("support/contact.md", plain("help@acme.example"), [
        "What is Acme's support email address?", "Which email do I use to contact Acme customer support?",
        "How do I email Acme support?"]),
    "support_phone": ("support/contact.md", plain("+1 541 555 0142", "541 555 0142", "+1-541-555-0142", "(541) 555-0142"), [
        "What is Acme's support phone number?", "Which number do I call for Acme customer support?",
        "How can I phone Acme support?"]),
    "callback_time": ("support/phone-menu.txt", qty("2", "hours"), [
        "If I request a callback from Acme, how soon will they call me back?",
        "How long does an Acme support callback take?", "Within how many hours does Acme return a callback request?"]),
    "voice_assistant": ("support/phone-menu.txt", plain("Nova"), [
        "What is the name of the voice assistant on Acme's phone line?",
        "Who answers first when I call Acme support?",
        "What's Acme's automated phone assistant called?"]),
    "repair_turnaround": ("support/repairs.md", qty("9", "business days"), [
        "How long does an Acme repair take?", "What is the typical turnaround for a repair at Acme?",
        "How many business days does Acme need to repair a device?"]),
    "bench_fee": ("support/repairs.md", money("$49"), [
        "How much is Acme's out-of-warranty bench fee?",
        "What does Acme charge to inspect a device that's out of warranty?",
        "What is the diagnostic fee for out-of-warranty repairs at Acme?"]),
    "ax_reset": ("support/troubleshooting-ax.md", qty("12", "seconds"), [
        "How long do I hold the power button to factory reset an AX-series device?",
        "How many seconds does it take to reset an AX mount to factory settings?",
        "For a factory reset on the AX series, how long should the button be held?"]),
    "ax_e41": ("support/troubleshooting-ax.md", plain("polar alignment lost", "lost polar alignment"), [
        "What does error E-41 mean on an AX-series device?", "What is error code E-41 on the AX-220?",
        "My AX mount shows E-41. What does that indicate?"]),
    "rt_calibration": ("support/troubleshooting-rt.md", qty("90", "seconds"), [
        "How long does an RT rotator calibration take?", "How many seconds does the RT-series calibration run?",
        "How long should I wait for my RT-90 to finish calibrating?"]),
    "rt_r07": ("support/troubleshooting-rt.md", plain("motor stall detected", "motor stall"), [
        "What does error R-07 mean on an RT rotator?", "My RT-150 shows R-07. What's wrong?",
        "What is rotator error code R-07?"]),
    "sdr_ip": ("support/troubleshooting-sdr.md", plain("192.168.77.1"), [
        "What is the default IP address of an Acme SDR?",
        "Which IP address does an SDR-12 use out of the box?",
        "At what address can I reach my Acme radio's web page by default?"]),
    "sdr_overheat_led": ("support/troubleshooting-sdr.md", plain("amber"), [
        "What colour does the SDR status light turn when the radio is overheating?",
        "If my SDR-7's LED is blinking, which colour means it's too hot?",
        "Which LED colour warns of overheating on Acme SDRs?"]),
    "cam_recovery": ("support/troubleshooting-cam.md", qty("8", "seconds"), [
        "How long do I hold the buttons to put the CAM-11 into recovery mode?",
        "How many seconds to enter recovery mode on the CAM-11?",
        "To start CAM-11 recovery mode, how long should I hold shutter and power?"]),
    "cam_cooling": ("support/troubleshooting-cam.md", plain("35 °C below ambient", "35 degrees below ambient", "35 °C"), [
        "How far below ambient can the CAM-11 cool its sensor?", "What is the CAM-11's cooling delta?",
        "How much colder than the air can a CAM-11 keep its sensor?"]),
    "forum_address": ("support/community-forum.md", plain("forum.acme.example"), [
        "What is the address of the Acme community forum?", "Where is Acme's user forum online?",
        "Which web address hosts the Acme community?"]),
    "moderator_response": ("support/community-forum.md", qty("48", "hours"), [
        "How quickly do Acme forum moderators reply to reports?",
        "Within how many hours does an Acme moderator look at a flagged post?",
        "What is the moderator response time on the Acme forum?"]),
    "mc_ram": ("support/mission-control-faq.md", plain("8 GB of RAM", "8 GB", "8GB"), [
        "How much RAM does Mission Control need?", "What is the memory requirement for Acme Mission Control?",
        "How much memory should my computer have to run Mission Control?"]),
    "mc_macos": ("support/mission-control-faq.md", plain("macOS 13", "macOS Ventura", "macOS 13 or later"), [
        "What is the oldest macOS version Mission Control supports?",
        "Which macOS release do I need at least for Mission Control?",
        "What is the minimum macOS version for Acme Mission Control?"]),
    "storage_charge": ("support/battery-care.md", pct("55"), [
        "At what charge level should I store an Acme battery?",
        "What state of charge does Acme recommend for long-term battery storage?",
        "How full should an Acme battery be when I put it away for months?"]),
    "battery_cycles": ("support/battery-care.md", plain("500 charge cycles", "500 cycles", "500"), [
        "After how many cycles should an Acme battery be replaced?",
        "How many charge cycles is an Acme battery rated for?",
        "When should I replace my Acme battery, in charge cycles?"]),
    "remote_pin": ("support/kb-articles.jsonl", plain("4417"), [
        "What is the pairing PIN for the Acme wireless remote?", "Which PIN pairs the Acme remote?",
        "What code do I enter to pair my Acme remote?"]),
    "sdr_sample_rate": ("support/kb-articles.jsonl", plain("2.4 MS/s", "2.4 megasamples per second", "2.4 Msps"), [
        "What is the default sample rate of the SDR-7?", "Which sample rate does the SDR-7 start with?",
        "Out of the box, what sample rate does an SDR-7 use?"]),
    # -- releases --
    "mc_latest": ("releases/mission-control.md", plain("3.7.2", "version 3.7.2", "v3.7.2"), [
        "What is the latest version of Acme Mission Control?", "Which Mission Control release is current?",
        "What version number is the newest Mission Control?"]),
    "mc_latest_date": ("releases/mission-control.md", date(2024, 8, 27), [
        "When was the latest Mission Control version released?",
        "What is the release date of the current Mission Control?",
        "When did the newest Mission Control update come out?"]),
    "mc_dark_mode": ("releases/mission-control.md", plain("3.5.0", "version 3.5.0", "v3.5.0"), [
        "Which Mission Control version added dark mode?", "In what release did Mission Control get a dark theme?",
        "Since which version does Mission Control have dark mode?"]),
    "catalog_objects": ("releases/sky-catalog.md", plain("41,580 objects", "41580", "41,580"), [
        "How many objects are in the current Acme Sky Catalog?",
        "How many objects does the latest Sky Catalog contain?", "What's the object count of Acme's Sky Catalog?"]),
    "catalog_version": ("releases/sky-catalog.md", plain("2024.3"), [
        "What is the current version of the Acme Sky Catalog?", "Which Sky Catalog edition is the latest?",
        "What's the newest Sky Catalog release called?"]),
}


# Product questions: several phrasings per attribute; {ref} is how the asker names the product.
PRODUCT_QUESTIONS = {
    "price": ["How much does the {ref} cost?", "What is the list price of the {ref}?",
              "What's the price of Acme's {ref}?", "How much is the {ref}?", "What does the {ref} sell for?",
              "{ref}: what is the retail price?"],
    "weight": ["How much does the {ref} weigh?", "What is the weight of the {ref}?", "How heavy is the {ref}?",
               "What does the {ref} weigh?", "{ref} weight?"],
    "battery life": ["What is the battery life of the {ref}?", "How long does the {ref} run on a full charge?",
                     "How long does the {ref}'s battery last?", "How long will a charged {ref} keep going?"],
    "power consumption": ["How much power does the {ref} draw?", "What is the power consumption of the {ref}?",
                          "How many watts does the {ref} use?", "What's the {ref}'s power draw?"],
    "warranty": ["How long is the warranty on the {ref}?", "What warranty period does the {ref} come with?",
                 "How many months of warranty does the {ref} have?", "What's the warranty length for the {ref}?"],
    "launch": ["When was the {ref} released?", "What is the release date of the {ref}?",
               "When did the {ref} go on sale?", "When did Acme launch the {ref}?"],
    "spec": ["What is the {label} of the {ref}?", "What {label} does the {ref} have?",
             "Tell me the {label} of the {ref}.", "{ref}: what's its {label}?"],
    "model": ["What is the model number of the {name} {kind}?", "Which model number does Acme use for the {name}?",
              "What's the {name} {kind}'s model number?", "The {name}: what is its model number?"],
    "fw_version": ["What is the latest firmware version for the {model}?", "Which firmware is current on the {model}?",
                   "What's the newest {model} firmware release?", "What firmware version should my {model} be on?"],
    "fw_date": ["When was the latest {model} firmware released?", "What is the date of the newest {model} firmware?",
                "When did the current {model} firmware come out?"],
}


def product_facts(p: Product, rng: random.Random) -> list[Fact]:
    refs = [p.model, f"{p.name} {p.kind}", f"{p.model} {p.name}"]

    def asks(attr: str, **kw) -> list[str]:
        qs = [t.format(ref=r, **kw) for t in PRODUCT_QUESTIONS[attr] for r in refs]
        qs = [q[0].upper() + q[1:] for q in dedupe(qs)]
        rng.shuffle(qs)
        return qs[:5]

    label, value, unit = p.power
    facts = [
        Fact(f"{p.model}.price", p.doc, *money(p.price), asks("price")),
        Fact(f"{p.model}.weight", p.doc, *qty(*p.weight), asks("weight")),
        Fact(f"{p.model}.power", p.doc, *qty(value, unit), asks(label)),
        Fact(f"{p.model}.warranty", p.doc, *qty(str(p.warranty_months), "months"), asks("warranty")),
        Fact(f"{p.model}.launch", p.doc, *date(*p.launch), asks("launch")),
        Fact(f"{p.model}.spec", p.doc, p.spec[1], p.spec[2], asks("spec", label=p.spec[0])),
        Fact(f"{p.model}.model", p.doc, p.model, [p.model.replace("-", ""), p.model.replace("-", " ")],
             asks("model", name=p.name, kind=p.kind)),
    ]
    if p.firmware:
        fw_doc = f"releases/{p.slug}-firmware.md"
        facts.append(Fact(f"{p.model}.fw_version", fw_doc, p.firmware[0][0],
                          [f"version {p.firmware[0][0]}", f"v{p.firmware[0][0]}"], asks("fw_version", model=p.model)))
        facts.append(Fact(f"{p.model}.fw_date", fw_doc, *date(*p.firmware[0][1]), asks("fw_date", model=p.model)))
    return facts


# ======================================================================================
# The Acme documents
# ======================================================================================

def spec_rows(p: Product) -> list[tuple[str, str]]:
    label, value, unit = p.power
    return [("Model number", p.model), ("List price (USD)", p.price), ("Weight", f"{p.weight[0]} {p.weight[1]}"),
            (label.capitalize(), f"{value} {unit}"), (p.spec[0].capitalize(), p.spec[1]),
            ("Warranty", f"{p.warranty_months} months"), ("Release date", date(*p.launch)[0])]


def product_doc(i: int, p: Product, rng: random.Random) -> str:
    # Three layouts, as real product pages differ: overview + table, datasheet, FAQ.
    others = [q.model for q in PRODUCTS if q is not p]
    related = rng.sample(others, 2)
    label, value, unit = p.power
    kind_title = " ".join(w[0].upper() + w[1:] for w in p.kind.split())
    launch = date(*p.launch)[0]
    fw = ("Firmware updates and their release notes are published in the release notes section."
          if p.firmware else "This product has no user-updatable firmware.")
    if i % 3 == 0:
        rows = "\n".join(f"| {k} | {v} |" for k, v in spec_rows(p))
        return f"""# {p.model} {p.name} {kind_title}

{p.tagline}

## Overview

The {p.name} was designed with the people who use it every week: observers, ground station
operators and lab engineers. It is built and tested in our own workshop, and every unit is
checked before it ships.

## Key features

{chr(10).join(f"- {f}" for f in p.features)}

## Specifications

| Specification | Value |
|---|---|
{rows}

## In the box

{chr(10).join(f"- {b}" for b in p.box)}

## See also

- {related[0]}
- {related[1]}

## Firmware

{fw}
"""
    if i % 3 == 1:
        rev = rng.choice(["B", "C", "D"])
        bullets = "\n".join(f"- **{k}:** {v}" for k, v in spec_rows(p))
        return f"""# {p.name} {kind_title} ({p.model})

*Datasheet, revision {rev}*

{p.tagline} {p.features[0]}.

## At a glance

{bullets}

## Highlights

{chr(10).join(f"- {f}" for f in p.features[1:])}

## What ships with it

{", ".join(p.box)}.

## Care and handling

Keep the {p.model} dry and store it at room temperature when it is not in use. Clean the
housing with a soft, dry cloth; do not use solvents. {fw}
"""
    if label == "battery life":
        runtime = f"### How long does the battery last?\n\nOn a full charge the {p.model} runs for {value} {unit} in typical use."
    else:
        runtime = f"### How much power does it use?\n\nIn normal operation the {p.model} draws {value} {unit}."
    return f"""# {p.model} {p.name}: product guide and FAQ

{p.tagline}

## About the {p.name}

The {p.model} {p.name} is our {p.kind}. {p.features[0]}. {p.features[1]}. {p.features[2]}.

## Frequently asked questions

### How much does it cost?

The {p.name} lists at {p.price} in the Acme online store. Prices for bundles and refurbished
units vary.

### How heavy is it?

It weighs {p.weight[0]} {p.weight[1]} without accessories.

{runtime}

### What is its {p.spec[0]}?

The {p.spec[0]} is {p.spec[1]}.

### What warranty does it have?

Every new unit carries a limited warranty of {p.warranty_months} months from the date of delivery.

### When did it come out?

It went on sale on {launch}.

### What comes in the box?

{", ".join(p.box)}.

### Where can I get help?

See the support guides and the community forum. Owners often also use the {related[0]} and the
{related[1]}.
"""


FW_NOTES = ["Improved start-up time", "Fixed a rare freeze when the cable is unplugged during an update",
            "Better error messages in Mission Control", "Lower power use in standby",
            "Fixed wrong time zone in exported logs", "New diagnostic page for support",
            "Security fixes", "Smoother motion at low speeds", "Fixed a Bluetooth pairing issue",
            "Updated translations", "More accurate battery indicator", "Faster reconnect after Wi-Fi drops"]


def firmware_doc(p: Product, rng: random.Random) -> str:
    parts = [f"# {p.model} firmware release notes\n",
             f"Firmware for the {p.model}, newest first. Update with Mission Control or from a USB stick; "
             "your settings are kept.\n"]
    for n, (version, when) in enumerate(p.firmware):
        tag = " (current release)" if n == 0 else ""
        notes = "\n".join(f"- {x}" for x in rng.sample(FW_NOTES, rng.randint(2, 4)))
        parts.append(f"## Version {version}{tag}\n\nReleased {date(*when)[0]}.\n\n{notes}\n")
    parts.append("## Known issues\n\nNone at this time. Report problems through the support form.\n")
    return "\n".join(parts)


# Documents that are not product pages: text with {fact_key} placeholders.
DOCS = {
    "company/about.md": """# About Acme Orbital Tools

Acme Orbital Tools makes instruments for people who look up: amateur astronomers, satellite
ground stations, schools and small space labs. We were founded in {founded_year} by
{founders}, who met while building a student satellite and could not find tools they could
afford.

## What we do

We design, build and support trackers, rotators, radios, test equipment and software. Most
products are assembled and tested by hand in our own workshop.

## Who we serve

Today we have customers in {countries}, from backyard observers to university space labs.

## Our values

- Make it repairable: spare parts are sold for every current product.
- Tell the truth in datasheets: every number is measured, not estimated.
- Answer the phone: real people, in our own support team.
""",
    "company/leadership.md": """# Leadership team

Acme Orbital Tools is led by a small team that still spends time at the workbench.

## Executive team

- **Chief Executive Officer:** {ceo}. Joined in 2016 from the aerospace test industry.
- **Chief Technology Officer:** {cto}. Leads hardware, firmware and software engineering.
- **Vice President, Customer Support:** {head_support}. Built the support team from three people.

## Board

The board meets four times a year. Minutes of the annual customer meeting are published
on the company blog.
""",
    "company/offices.md": """# Offices

## Headquarters

Our headquarters and main workshop are in {hq_city}. Design, assembly, testing and the
repair centre are all under one roof.

## Europe

The European office is in {eu_office}. It handles sales, distribution and warranty returns
for customers in Europe, the Middle East and Africa.

## Asia-Pacific

Our Asia-Pacific office in {apac_office} covers customers from Japan to Australia.

## Visiting us

Visits are by appointment only. Please contact the office you want to visit at least a week
in advance.
""",
    "company/careers.md": """# Careers at Acme Orbital Tools

We are a team of {employees} across three offices. We hire engineers, technicians,
support specialists and people who like explaining things.

## How to apply

Send your CV and a short note about something you built to {careers_email}. We reply to
every application.

## Internships

Our summer internship lasts {internship}. Interns work on a real product with a mentor and
present their work at the end.

## Benefits

- A telescope loan scheme for every employee
- Flexible hours around night-time observing
- Learning budget for courses and conferences
""",
    "company/sustainability.md": """# Sustainability

Instruments should last for decades, and so should the planet they point away from.

## Packaging

{recycled_packaging} of our packaging by weight is made from recycled material, and we
removed single-use plastic foam from all product boxes.

## Climate

We have committed to being carbon neutral by {carbon_neutral_year}. Our workshop already
runs on a renewable electricity contract.

## Repair and take-back

We sell spare parts for every current product and take back old Acme equipment for free
recycling.
""",
    "company/press.md": """# Press and media

## Contact

Journalists can reach our communications team at {press_email}. We aim to reply within
one working day.

## Brand assets

Logos, product photos and executive portraits are available in the press kit. Our brand
colour is called {brand_color}; please do not recolour the logo.

## Review units

We lend review units for up to six weeks. Tell us which product and publication you write for.
""",
    "company/history.md": """# Our history

## The early years

The company was founded under the name {former_name}. The first product was the
{first_product}, a simple tracking head sold mostly to astronomy clubs.

## Growing up

Antenna rotators and radios followed as customers began to track satellites as well as
stars. The company took its current name when the product range reached orbit-related
tools of every kind.

## Today

We now design hardware, firmware and software, and we still repair the oldest products we
ever made.
""",
    "company/grants.md": """# Acme Night Sky Grant

Every year we fund projects that bring the night sky to more people.

## What the grant offers

The Acme Night Sky Grant is worth {grant_amount} in cash plus equipment on loan.

## Who can apply

Schools, astronomy clubs, libraries and community groups anywhere in the world.

## How to apply

Send a two-page proposal through the grant form. The deadline is {grant_deadline} each year,
and winners are announced in December.
""",
    "company/holiday-schedule.txt": """Acme Orbital Tools: office and support holiday schedule

All offices and phone support close on the following days. Email to support is still
answered on the next working day.

Founders' Day: {founders_day}. The company celebrates its founding with a workshop open day.
Winter shutdown: {winter_shutdown}. Orders placed during the shutdown ship on the first
working day after it.

Local public holidays also apply at each office.
""",
    "policies/returns.md": """# Returns and refunds

We want you to be happy with your purchase. If you are not, you can send it back.

## Return window

You can return any product bought from the Acme online store within {refund_window} of
delivery, in its original packaging.

## Opened items

Opened items in like-new condition are accepted, with a restocking fee of {restocking_fee}
of the purchase price. Unopened items have no fee.

## Refunds

Once the return reaches our warehouse and passes inspection, the refund is processed within
{refund_processing} to the original payment method.

## Items that cannot be returned

- Custom-built ground station kits after configuration has started
- Software licences that have been activated
""",
    "policies/warranty.md": """# Warranty and CarePlus

Each product's limited warranty period is listed on its product page. This page covers how
to make a claim and the optional CarePlus plan.

## Making a claim

Open a claim through the support form with your order number and a description of the
fault. We respond to warranty claims within {claim_response}.

## CarePlus

CarePlus is an optional plan that extends the warranty by {careplus_extension} and adds
accidental damage cover. It costs {careplus_price} per product and can be added up to
60 days after purchase.

## What is not covered

- Damage from using a power supply that does not match the product's rating
- Cosmetic wear
- Products modified with non-Acme firmware
""",
    "policies/shipping.md": """# Shipping

## Costs

Standard shipping is free on orders over {free_shipping}. Below that, a flat rate applies at
checkout. Express shipping costs {express_fee} per order.

## Delivery times

Standard delivery takes {standard_delivery} after dispatch. Express orders placed before
noon Pacific Time ship the same day.

## International orders

We ship worldwide. Import duties and taxes are shown at checkout where we can collect them.

## Tracking

Every order gets a tracking link by email when it leaves the warehouse.
""",
    "policies/privacy.md": """# Privacy notice

We collect as little data as we can and never sell it.

## Device telemetry

If you switch on diagnostics, connected products send anonymous telemetry such as firmware
version and error codes. Telemetry is kept for {telemetry_retention} and then deleted.

## Your account

Your account holds your name, addresses, orders and registered devices. You can export or
delete it at any time.

## Requests

Send privacy requests, including access and deletion requests, to {privacy_email}.
""",
    "policies/trade-in.md": """# Trade-in program

Upgrade and get credit for your old Acme equipment.

## How much you get

Depending on condition, the trade-in program pays credit of up to {tradein_credit} of the
price of the new product.

## How it works

1. Request a quote in your account.
2. Send the old device with the prepaid label.
3. We inspect it and apply the credit to your order.

A trade-in quote is valid for {quote_valid}.
""",
    "policies/education.md": """# Education pricing

Students, teachers and schools get a discount of {edu_discount} on most products.

## Eligibility

Current students and staff of schools, colleges and universities, verified through their
institution email address.

## Limits

Each verified person can buy {edu_limit} at the education price. Schools buying for a
classroom should contact sales for a quote instead.
""",
    "policies/price-match.md": """# Price match promise

If an authorised Acme retailer lowers the price of a product you bought from us, we will
refund the difference.

## Conditions

- Ask within {price_match_window} of your purchase.
- The product must be new, in stock and identical.
- Clearance, auction and bundle prices are excluded.
""",
    "policies/loyalty.md": """# Orbit Points loyalty program

Orbit Points is our free rewards program for registered customers.

## Earning

You earn {points_per_dollar} for every dollar spent in the Acme online store, including
on spare parts and CarePlus.

## Redeeming

1,000 Orbit Points can be redeemed for {points_value} off your next order. Points expire
after two years without activity.
""",
    "policies/accessibility.html": """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Accessibility statement</title></head>
<body>
<h1>Accessibility statement</h1>
<p>We want every customer to be able to use our website, manuals and products.</p>
<h2>Manuals</h2>
<p>Large-print and screen-reader friendly manuals are available for every current product.
Large-print manuals are posted within {large_print} of the request.</p>
<h2>Contact</h2>
<p>Tell us about any barrier you meet by writing to {access_email}.</p>
<ul>
<li>Our website aims to meet WCAG 2.2 level AA.</li>
<li>Product displays offer a high-contrast mode.</li>
</ul>
</body>
</html>
""",
    "support/contact.md": """# Contact support

## Hours

Our support team answers from {support_hours}, {support_days}. Messages that arrive
outside these hours are answered the next working day.

## Email

Write to {support_email} with your order number or the serial number of the device.

## Phone

Call {support_phone}. Have the device with you if you can; we may ask you to read the
status screen.

## Before you contact us

Many problems are solved by the troubleshooting guides and the community forum.
""",
    "support/phone-menu.txt": """Acme support phone line: how the call menu works

When you call, the voice assistant {voice_assistant} asks what your call is about and sends
you to the right team: orders, technical help, repairs or accounts.

If all agents are busy, you can ask for a callback instead of waiting. Callbacks are made
within {callback_time} during support hours.

Calls may be recorded for training. Say "no recording" at any time to turn it off.
""",
    "support/repairs.md": """# Repairs

## Sending a device in

Start a repair in your account to get a repair number and a prepaid label. Pack the device
in its original box if you still have it.

## Turnaround

A typical repair takes {repair_turnaround} from the day the device reaches the repair centre.

## Costs

Repairs under warranty are free. Devices out of warranty pay a bench fee of {bench_fee} for
diagnosis, which is deducted from the repair price if you go ahead.
""",
    "support/troubleshooting-ax.md": """# Troubleshooting the AX series

This guide covers the AX-220 and AX-340.

## Factory reset

Hold the power button for {ax_reset} until the status light blinks white. All settings,
including alignment data, return to factory defaults.

## Error codes

| Code | Meaning | What to do |
|---|---|---|
| E-12 | Battery low | Charge or connect external power |
| E-41 | {ax_e41} | Redo the alignment routine |
| E-57 | Motor overload | Check the balance of your payload |

## The mount does not move

Check that the clutches are locked and that the hand controller cable is fully inserted.
""",
    "support/troubleshooting-rt.md": """# Troubleshooting the RT rotators

This guide covers the RT-90 and RT-150.

## Calibration

After installation, run the calibration from the controller menu. The rotator moves to both
end stops; calibration takes about {rt_calibration}. Keep clear of the antenna while it runs.

## Error codes

- **R-03**: end stop not found. Check that nothing blocks the rotation.
- **R-07**: {rt_r07}. Check for ice, wind load or a jammed mast clamp, then restart.
- **R-11**: encoder mismatch. Run calibration again.
""",
    "support/troubleshooting-sdr.md": """# Troubleshooting the SDR radios

This guide covers the SDR-7 and SDR-12.

## Network setup

Out of the box the radios answer on {sdr_ip}. Connect with a network cable and open that
address in a browser to change the settings.

## Status light

- Green: receiving
- Blue: transmitting (SDR-12 only)
- Blinking {sdr_overheat_led}: too hot. Improve airflow and the radio will recover on its own.

## No signal

Check the antenna connection and that the gain is not set to zero.
""",
    "support/troubleshooting-cam.md": """# Troubleshooting the CAM-11

## Recovery mode

If an update fails, hold the shutter and power buttons together for {cam_recovery}. The
camera starts in recovery mode and Mission Control can reinstall the firmware.

## Cooling

The cooler can hold the sensor at {cam_cooling}. If it cannot reach the set temperature,
check that the fan is not blocked and that the power supply is the one supplied.

## Frost on the window

Switch on the anti-dew heater and keep the desiccant cartridge fresh.
""",
    "support/community-forum.md": """# Community forum

The Acme community forum at {forum_address} is where customers share setups, images and
fixes. Acme engineers read it every day.

## Rules

- Be kind and stay on topic.
- No selling of used equipment outside the marketplace board.

## Moderation

Flagged posts are reviewed by a moderator within {moderator_response}.
""",
    "support/mission-control-faq.md": """# Mission Control: frequently asked questions

Mission Control is our free desktop app for controlling Acme devices and planning passes.

## What computer do I need?

A 64-bit computer with at least {mc_ram}. On a Mac, {mc_macos} or later is required; on
Windows, Windows 10 or later.

## Does it work offline?

Yes. Pass predictions use the orbital elements you last downloaded.

## Is it free?

Yes, for all Acme customers.
""",
    "support/battery-care.md": """# Battery care

Most portable Acme products use lithium batteries. A little care makes them last years.

## Storage

For storage longer than a month, charge or discharge the battery to about {storage_charge}
and keep it somewhere cool and dry.

## Lifetime

Batteries are rated for {battery_cycles}. After that, capacity drops noticeably and a
replacement battery from the spare parts store is recommended.

## Cold weather

Keep spare batteries in an inside pocket on cold nights.
""",
    "releases/mission-control.md": """# Mission Control release notes

## Version {mc_latest} (current)

Released {mc_latest_date}.

- Faster pass predictions for large satellite lists
- Fixed a crash when exporting an empty log

## Version 3.6.0

- New device dashboard
- Support for the SDR-12

## Version {mc_dark_mode}

- Dark mode for night sessions
- Red-light display option
""",
    "releases/sky-catalog.md": """# Sky Catalog updates

The Acme Sky Catalog ships with the AX-340 hand controller and Mission Control.

## Catalog {catalog_version} (current)

The current catalog contains {catalog_objects}, including updated positions for
bright comets and new variable stars.

## Updating

Mission Control downloads new catalogs automatically when you are online.
""",
}

# One JSONL file, one knowledge-base article per line (the corpus reader's jsonl format).
KB_ARTICLES = [
    ("kb-001", "Pairing the Acme wireless remote",
     "Hold the remote's pair button until the light flashes, then enter the PIN {remote_pin} in "
     "the device menu. One remote can be paired with up to four devices."),
    ("kb-002", "SDR-7 default settings",
     "The SDR-7 starts with a sample rate of {sdr_sample_rate} and automatic gain. Settings are "
     "saved when you close Mission Control."),
    ("kb-003", "Cleaning optics",
     "Blow loose dust off first, then use a lens tissue with a drop of lens cleaner. Never "
     "wipe a dry lens."),
    ("kb-004", "Using a power bank",
     "Portable products can run from a USB-C power bank that supports power delivery. Use the "
     "cable supplied with the product."),
    ("kb-005", "Exporting logs",
     "In Mission Control, open the device page, choose Logs and then Export. Logs are saved as "
     "plain text files."),
]


def build_corpus(seed: int) -> tuple[dict[str, str], list[Fact]]:
    """All corpus files (path -> text) and all facts, from the tables above."""
    rng = random.Random(f"{seed}:acme")
    facts: list[Fact] = []
    files: dict[str, str] = {}
    for i, p in enumerate(PRODUCTS):
        facts += product_facts(p, rng)
        files[p.doc] = product_doc(i, p, rng)
        if p.firmware:
            files[f"releases/{p.slug}-firmware.md"] = firmware_doc(p, rng)
    answers = {key: answer for key, (_, (answer, _), _) in OTHER_FACTS.items()}
    for path, template in DOCS.items():
        files[path] = template.format_map(answers)
    files["support/kb-articles.jsonl"] = "".join(
        json.dumps({"id": i, "title": t, "text": x.format_map(answers)}, ensure_ascii=False) + "\n"
        for i, t, x in KB_ARTICLES)
    for key, (doc, (answer, aliases), questions) in OTHER_FACTS.items():
        facts.append(Fact(key, doc, answer, aliases, list(questions)))

    # One fact, one document: each placeholder is used by its own document and by no other.
    templates = dict(DOCS, **{"support/kb-articles.jsonl": " ".join(x for _, _, x in KB_ARTICLES)})
    for key, (doc, _, _) in OTHER_FACTS.items():
        users = [path for path, t in templates.items() if "{" + key + "}" in t]
        assert users == [doc], f"fact {key} should be in {doc} only, found in {users}"
    for f in facts:
        assert f.answer in files[f.doc], f"answer of {f.key} not in {f.doc}"
        assert len(f.questions) >= 3, f"fact {f.key} needs at least 3 questions"
    return files, facts


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


def cap(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


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
