"""The labelled agent replies for quality inspection (issue 22): models/qa/data/replies.jsonl.

    python3 scripts/make_qa_data.py

Every reply is built from parts the project wrote (polite replies in Chinese and English,
insults, dismissive phrases, promises, hard negatives, paraphrased insults that no word list
holds) and labelled by construction, not by the inspector. Insults and dismissive phrases appear
with the usual evasions: spaces or punctuation between characters, full-width letters,
Traditional characters, odd case. Card numbers pass the Luhn check and ID numbers the GB 11643
check digit; the negatives hold numbers that fail them. Split: md5(text) % 2 == 0 is dev (never
used to change a word list or a pattern), the rest train. Deterministic.
"""
import hashlib
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
R = random.Random(22)

POLITE_ZH = ["您好，我马上为您查询。", "已为您登记，请稍候。", "订单已经发出，请留意物流信息。", "退款会在三个工作日内原路退回。",
             "我帮您转给售后同事处理。", "请提供一下订单号，我来核实。", "地址已经为您修改好了。", "给您带来不便，非常抱歉。",
             "这边看到包裹在派送中。", "发票会发送到您的邮箱。", "优惠券已经补发到您的账户。", "请您先重启一下应用试试。",
             "密码重置链接已经发到您的手机。", "这个问题我需要向主管确认一下。", "您的会员已经续费成功。", "感谢您的耐心等待。",
             "商品支持七天无理由退货。", "我们会尽快安排补发。", "您可以在我的订单里查看进度。", "稍后会有专员给您回电。"]
POLITE_EN = ["Hello, let me check that for you.", "Your order has shipped, please watch the tracking page.",
             "The refund goes back to your card within three business days.", "I have passed this to our returns team.",
             "Could you share the order number so I can look it up?", "Your delivery address is updated.",
             "Sorry for the trouble this has caused.", "The parcel is out for delivery today.",
             "The invoice has been sent to your email.", "I have added the coupon to your account again.",
             "Please restart the app and try once more.", "A password reset link is on its way to your phone.",
             "I need to confirm this with my supervisor.", "Your membership renewal went through.",
             "Thank you for your patience.", "You can return it within 30 days.", "We will ship a replacement soon.",
             "You can follow the progress under My Orders.", "A specialist will call you back shortly.",
             "I have escalated this as urgent."]

INSULT_ZH = ["傻逼", "白痴", "蠢货", "废物", "脑残", "智障", "神经病", "你有病", "去死", "滚蛋", "闭嘴", "贱人", "活该"]
TRAD = {"废物": "廢物", "蠢货": "蠢貨", "脑残": "腦殘", "神经病": "神經病", "闭嘴": "閉嘴", "滚蛋": "滾蛋", "贱人": "賤人", "你有病": "你有病"}
INSULT_EN = ["idiot", "stupid", "moron", "dumb", "shut up", "go to hell", "damn you", "bitch", "bastard", "loser", "asshole"]
DISMISS_ZH = ["爱买不买", "关我什么事", "你自己看", "你听不懂吗", "烦不烦", "跟我说没用"]
DISMISS_EN = ["not my problem", "deal with it", "that's your problem", "I already told you", "read the manual"]
PROMISE_ZH = ["我保证给您退款。", "这个一定给您全额退款。", "百分之百没问题，您放心。", "保证明天到账。", "肯定会赔偿您的。", "我们保证解决没问题。"]
PROMISE_EN = ["I promise you will get the money back.", "We guarantee a full refund.", "100% refund guaranteed.",
              "I guarantee it arrives tomorrow.", "We promise to cover the whole cost.", "You are guaranteed a refund."]
PARAPHRASE_ZH = ["你脑子进水了吧？", "你是不是听不懂人话？", "跟你说话真费劲。", "你这种人我见多了。", "有本事你去投诉啊。"]
PARAPHRASE_EN = ["Are you really that dense?", "What a clown you are.", "Use your brain for once.",
                 "People like you are the worst.", "Go complain then, see if I care."]
HARD_NEG_EN = ["Please pass the class assessment link to your manager.", "Our office is in Scunthorpe.",
               "The dumbbell set ships in two boxes.", "Our assistant will guide you.", "I cannot promise a date yet.",
               "We can't guarantee delivery before Friday.", "The glass bottle was damaged in transit.",
               "Call us on (555) 123-4567 for the returns desk.", "Your tracking code is 1Z999AA10123456784.",
               "Classic and passport holders ship free.", "Hello, the shuttle bus leaves at nine.",
               "The assembly guide is in the box."]
HARD_NEG_ZH = ["我们不能保证明天一定送到。", "废物回收点在小区东门。", "客服热线是 400-800-1234。", "这款神经系统保健品已下架。",
               "请勿在评论中留下手机号。", "活动规则请以页面为准。", "快递员说包裹已放在驿站。", "您的退款不能保证今天到账，请见谅。"]


def luhn_ok(d):
    s = 0
    for i, c in enumerate(reversed(d)):
        x = int(c)
        if i % 2 == 1:
            x *= 2
            x -= 9 if x > 9 else 0
        s += x
    return s % 10 == 0


def card(valid):
    while True:
        d = "4" + "".join(R.choice("0123456789") for _ in range(15))
        if luhn_ok(d) == valid:
            return d


def cn_id(valid):
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    body = "110105" + str(R.randint(1950, 2005)) + "%02d%02d" % (R.randint(1, 12), R.randint(1, 28)) + "%03d" % R.randint(0, 999)
    check = "10X98765432"[sum(int(a) * b for a, b in zip(body, w)) % 11]
    if not valid:
        check = "10X98765432"[("10X98765432".index(check) + 3) % 11]
    return body + check


def fmt_card(d):
    return R.choice([d, " ".join(d[i:i + 4] for i in range(0, 16, 4)), "-".join(d[i:i + 4] for i in range(0, 16, 4))])


def evade(word, how):
    if how == "spaced":
        return " ".join(word)
    if how == "punct":
        sep = R.choice(["*", ".", "-", "_", "~"])
        return sep.join(c for c in word if c != " ")
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    if how == "traditional":
        return TRAD.get(word, word)
    if how == "case":
        return "".join(c.upper() if i % 2 else c for i, c in enumerate(word))
    return word


def rows():
    out = []
    add = lambda text, lang, labels, kind, evasion="none": out.append(
        {"text": text, "lang": lang, "labels": labels, "kind": kind, "evasion": evasion})
    for p in POLITE_ZH:
        add(p, "zh", [], "clean")
    for p in POLITE_EN:
        add(p, "en", [], "clean")
    for _ in range(40):
        add("".join(R.sample(POLITE_ZH, 2)), "zh", [], "clean")
        add(" ".join(R.sample(POLITE_EN, 2)), "en", [], "clean")
    for w in INSULT_ZH:
        for how in ["none", "spaced", "punct", "traditional" if w in TRAD else "spaced"]:
            e = evade(w, how)
            add(R.choice(["你这个{}，", "真是{}！", "{}，", "说了多少遍了，{}。"]).format(e) + R.choice(POLITE_ZH), "zh",
                ["abusive_language"], "violation", how)
    for w in INSULT_EN:
        for how in ["none", "spaced" if " " not in w else "case", "punct", "fullwidth", "case"]:
            e = evade(w, how)
            add(R.choice(["You {}. ", "{}! ", "Listen, {}, ", "Honestly, {}. "]).format(e) + R.choice(POLITE_EN), "en",
                ["abusive_language"], "violation", how)
    for w in DISMISS_ZH:
        for how in ["none", "spaced", "punct"]:
            add(evade(w, how) + "，" + R.choice(POLITE_ZH), "zh", ["dismissive"], "violation", how)
    for w in DISMISS_EN:
        for how in ["none", "case", "fullwidth"]:
            add(evade(w, how).capitalize() + ". " + R.choice(POLITE_EN), "en", ["dismissive"], "violation", how)
    for p in PROMISE_ZH:
        add(R.choice(POLITE_ZH) + p, "zh", ["unauthorised_promise"], "violation")
    for p in PROMISE_EN:
        add(R.choice(POLITE_EN) + " " + p, "en", ["unauthorised_promise"], "violation")
    for _ in range(12):
        add(f"您的卡号是 {fmt_card(card(True))}，已经帮您绑定。", "zh", ["pii_leak"], "violation")
        add(f"The card on file is {fmt_card(card(True))}, it was charged today.", "en", ["pii_leak"], "violation")
        add(f"已核实身份证号 {cn_id(True)}，请放心。", "zh", ["pii_leak"], "violation")
        add(f"Your ID number {cn_id(True)} is verified.", "en", ["pii_leak"], "violation")
        # Numbers that fail the checks: order numbers, a mistyped ID.
        add(f"您的订单号是 {card(False)}，请留意物流。", "zh", [], "hard_negative")
        add(f"Order {card(False)} is on its way.", "en", [], "hard_negative")
        add(f"单号 {cn_id(False)} 已登记。", "zh", [], "hard_negative")
    for p in PARAPHRASE_ZH:
        add(p + R.choice(POLITE_ZH), "zh", ["abusive_language"], "paraphrase")
    for p in PARAPHRASE_EN:
        add(p + " " + R.choice(POLITE_EN), "en", ["abusive_language"], "paraphrase")
    for t in HARD_NEG_ZH:
        add(t, "zh", [], "hard_negative")
    for t in HARD_NEG_EN:
        add(t, "en", [], "hard_negative")
    # Two violations in one reply.
    for _ in range(15):
        add(evade(R.choice(INSULT_ZH), "spaced") + "！" + R.choice(PROMISE_ZH), "zh",
            ["abusive_language", "unauthorised_promise"], "violation", "spaced")
        add(R.choice(INSULT_EN).capitalize() + "! Your card " + fmt_card(card(True)) + " is charged.", "en",
            ["abusive_language", "pii_leak"], "violation")
    seen, uniq = set(), []
    for r in out:
        if r["text"] not in seen:
            seen.add(r["text"])
            r["split"] = "dev" if int(hashlib.md5(r["text"].encode()).hexdigest(), 16) % 2 == 0 else "train"
            uniq.append(r)
    return uniq


def main():
    data = rows()
    path = ROOT / "models/qa/data/replies.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    dev = sum(r["split"] == "dev" for r in data)
    print(f"{len(data)} replies ({dev} dev): {path}")


if __name__ == "__main__":
    main()
