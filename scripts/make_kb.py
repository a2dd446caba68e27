"""Knowledge-base data from Bitext's customer-support set (CDLA-Sharing-1.0, may train shipped
artifacts: ../shared/data/README.md) and the project's own Chinese data.

    python3 scripts/make_kb.py [--data ../shared/data] [--eval-out DIR]

Writes, in the repository:
  models/kb/en/articles.jsonl   the default knowledge base's English articles: 2 Bitext responses
                                per intent, from rows of the train split, placeholders filled in
With --eval-out DIR (outside the repository; `triage kb eval` reads them):
  bitext_responses.jsonl   every train-split response not held for tuning, one article each
                           (title: its first sentence; tags: [intent])
  en.tune.jsonl            {"text", "intent"}: train-split instructions whose responses are not
                           indexed (1 in 5 rows), for fitting the confidence and the threshold
  en.dev.jsonl             the dev split's instructions (prepare_data.py's held_out rule)
  zh.tune.jsonl            models/data/zh/intents.train.jsonl, the 27 intents (no oos)
  zh.dev.jsonl             models/data/zh/intents.dev.jsonl (no oos) + models/kb/zh/dev_queries.jsonl
  zh-par.dev.jsonl         models/kb/zh/dev_parallel.jsonl: en.dev.jsonl's questions in Chinese

Splits: a row is dev when md5("dev:" + instruction) % 10 == 0 (as prepare_data.py splits the
`bitext` head's data); among the others, md5("tune:" + instruction) % 5 == 0 is tuning. Dev rows
never train or tune anything.
"""
import argparse
import csv
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def md5mod(salt, text, n):
    return int(hashlib.md5((salt + text.strip()).encode("utf-8")).hexdigest(), 16) % n


FILL = {
    "Customer Support Phone Number": "our customer support phone number",
    "Customer Service Phone Number": "our customer service phone number",
    "Support Phone Number": "our support phone number",
    "Live Chat": "live chat",
    "Website Name": "our website",
    "Website URL": "our website",
    "Website or App": "our website or app",
    "website": "our website",
    "Customer Support Availability": "during our support hours",
    "Customer Support Hours": "our support hours",
    "Customer Service Hours": "our service hours",
    "Customer Support Email": "our support email address",
    "Customer Support Email Address": "our support email address",
    "Company Name": "our company",
    "number of days": "a few",
}


def fill(text):
    def sub(m):
        name = m.group(1).strip()
        if name in FILL:
            return FILL[name]
        if name.endswith("Anonymized"):
            return "your number"
        # Menu and section names: quoted as the label a customer sees.
        return "\u201c" + name + "\u201d"

    out = re.sub(r"\{\{([^}]*)\}\}", sub, text)
    return re.sub(r"\b(?:[Oo]ur|[Tt]he|[Yy]our) our ", "our ", out)


TITLES = {
    "cancel_order": ["How do I cancel an order?", "Cancelling a purchase you no longer want"],
    "change_order": ["How do I change items in my order?", "Editing an order after placing it"],
    "change_shipping_address": ["How do I change my shipping address?", "Updating the delivery address of an order"],
    "check_cancellation_fee": ["Is there a fee for cancelling?", "Early termination and cancellation fees"],
    "check_invoice": ["Where can I see my invoices?", "Checking the details of an invoice"],
    "check_payment_methods": ["Which payment methods do you accept?", "Payment options at checkout"],
    "check_refund_policy": ["What is your refund policy?", "When am I entitled to a refund?"],
    "complaint": ["How do I file a complaint?", "Telling us about a bad experience"],
    "contact_customer_service": ["How do I contact customer service?", "Customer service hours and channels"],
    "contact_human_agent": ["How can I talk to a person?", "Reaching a live agent"],
    "create_account": ["How do I create an account?", "Signing up for a new account"],
    "delete_account": ["How do I delete my account?", "Closing your account for good"],
    "delivery_options": ["What delivery options are there?", "Shipping methods and their speeds"],
    "delivery_period": ["When will my order arrive?", "How long delivery takes"],
    "edit_account": ["How do I edit my account details?", "Updating your profile information"],
    "get_invoice": ["How do I get an invoice?", "Downloading an invoice for a purchase"],
    "get_refund": ["How do I get a refund?", "Requesting your money back"],
    "newsletter_subscription": ["How do I subscribe to the newsletter?", "Managing newsletter emails"],
    "payment_issue": ["My payment failed: what now?", "Reporting a problem with a payment"],
    "place_order": ["How do I place an order?", "Buying an item step by step"],
    "recover_password": ["I forgot my password", "Resetting your password"],
    "registration_problems": ["I cannot sign up: what can I do?", "Fixing registration errors"],
    "review": ["How do I leave a review?", "Sharing feedback about a product or service"],
    "set_up_shipping_address": ["How do I add a shipping address?", "Setting up a new delivery address"],
    "switch_account": ["How do I switch accounts?", "Moving between your accounts"],
    "track_order": ["How do I track my order?", "Where is my package?"],
    "track_refund": ["How do I check my refund status?", "Following the progress of a refund"],
}


def steps_of(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*\d+\.\s+(.*)", line)
        if m:
            step = re.sub(r"\*\*", "", m.group(1)).strip()
            if step:
                out.append(step[:300])
    return out[:12]


def first_sentence(text):
    t = " ".join(text.split())
    m = re.match(r"(.{20,200}?[.!?])\s", t + " ")
    return (m.group(1) if m else t[:120]).strip()


def load_rows(data):
    with open(data / "bitext_customer_support/train.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)} rows")


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data"))
    ap.add_argument("--eval-out")
    a = ap.parse_args()
    rows = load_rows(Path(a.data))
    dev = [r for r in rows if md5mod("dev:", r["instruction"], 10) == 0]
    train = [r for r in rows if md5mod("dev:", r["instruction"], 10) != 0]
    tune = [r for r in train if md5mod("tune:", r["instruction"], 5) == 0]
    index = [r for r in train if md5mod("tune:", r["instruction"], 5) != 0]

    # The shipped articles: per intent, the two indexed responses of typical length that come
    # first in md5 order and have numbered steps (else any), placeholders filled in.
    articles = []
    for intent in sorted(TITLES):
        cands = [r for r in index if r["intent"] == intent and 300 <= len(r["response"]) <= 1400]
        # Responses that quote an order or account number come last.
        cands.sort(key=lambda r: (
            bool(re.search(r"\d{5,}", r["response"])),
            hashlib.md5(r["response"].encode("utf-8")).hexdigest(),
        ))
        with_steps = [r for r in cands if steps_of(r["response"]) and not re.search(r"\d{5,}", r["response"])]
        picked = (with_steps + [r for r in cands if r not in with_steps])[:2]
        for n, r in enumerate(picked, 1):
            body = fill(r["response"]).strip()
            articles.append({
                "id": f"en-{intent}-{n}",
                "title": TITLES[intent][n - 1],
                "body": body,
                "language": "en",
                "tags": [intent],
                "steps": [fill(s) for s in steps_of(r["response"])],
            })
    write(ROOT / "models/kb/en/articles.jsonl", articles)

    if a.eval_out:
        out = Path(a.eval_out)
        write(out / "bitext_responses.jsonl", [
            {
                "id": f"bx-{i}",
                "title": first_sentence(fill(r["response"])),
                "body": fill(r["response"]).strip(),
                "language": "en",
                "tags": [r["intent"]],
            }
            for i, r in enumerate(index)
        ])
        write(out / "en.tune.jsonl", [{"text": r["instruction"], "intent": r["intent"]} for r in tune])
        write(out / "en.dev.jsonl", [{"text": r["instruction"], "intent": r["intent"]} for r in dev])
        zh = ROOT / "models/data/zh"
        write(out / "zh.tune.jsonl", [
            {"text": r["text"], "intent": r["label"]}
            for r in jsonl(zh / "intents.train.jsonl") if r["label"] != "oos"
        ])
        write(out / "zh.dev.jsonl", [
            {"text": r["text"], "intent": r["label"]}
            for r in jsonl(zh / "intents.dev.jsonl") if r["label"] != "oos"
        ] + jsonl(ROOT / "models/kb/zh/dev_queries.jsonl"))
        # Chinese phrasings of the English dev questions, line for line.
        par = jsonl(ROOT / "models/kb/zh/dev_parallel.jsonl")
        en_dev = [(r["instruction"], r["intent"]) for r in dev]
        if [(p["en"], p["intent"]) for p in par] != en_dev:
            raise SystemExit("models/kb/zh/dev_parallel.jsonl does not follow en.dev.jsonl line for line")
        write(out / "zh-par.dev.jsonl", [{"text": p["text"], "intent": p["intent"]} for p in par])


if __name__ == "__main__":
    main()
