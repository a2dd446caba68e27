//! Synthetic support conversations for load tests (`triage batch synth`): Chinese, English and
//! code-switched, 2-12 turns, ten topics with varied templates and values, seeded; optionally
//! with deliberate bad lines, one of each kind in turn.

use super::{Conversation, Turn};
use crate::heads::rng::Rng;
use anyhow::Result;
use std::io::Write;

/// A support topic: opening messages (with `{o}` order, `{d}` days, `{a}` amount, `{p}`
/// product to fill) and two follow-ups, in English and Chinese. `qa::synth` reuses them.
pub(crate) struct Topic {
    pub(crate) en: [&'static str; 3],
    pub(crate) zh: [&'static str; 3],
    pub(crate) en_more: [&'static str; 2],
    pub(crate) zh_more: [&'static str; 2],
}

pub(crate) const TOPICS: [Topic; 10] = [
    Topic {
        en: [
            "My order {o} still hasn't arrived after {d} days.",
            "Where is my package {o}? Tracking hasn't moved since {d} days.",
            "The delivery of order {o} is late, it was due {d} days ago.",
        ],
        zh: [
            "我的订单{o}已经{d}天了还没到。",
            "包裹{o}的物流{d}天没更新了，到底在哪里？",
            "订单{o}说好{d}天前送到，现在还没收到。",
        ],
        en_more: [
            "The courier says it was delivered but I have nothing.",
            "I need it before the weekend.",
        ],
        zh_more: ["快递员说已签收，但我根本没收到。", "我周末之前一定要用到。"],
    },
    Topic {
        en: [
            "I want a refund for the {p}, it stopped working.",
            "Please refund order {o}, the {p} is not what I ordered.",
            "How do I get my money back for the {p}?",
        ],
        zh: [
            "我要退款，买的{p}坏了。",
            "订单{o}的{p}跟描述不符，请退款。",
            "{p}怎么申请退款？",
        ],
        en_more: [
            "I paid {a} and want the full amount back.",
            "I already sent it back last week.",
        ],
        zh_more: ["我付了{a}，要求全额退款。", "上周已经寄回去了。"],
    },
    Topic {
        en: [
            "My card was declined when paying {a}.",
            "Payment failed with error 51 for order {o}.",
            "Why does my card keep getting declined?",
        ],
        zh: [
            "付款{a}的时候银行卡被拒了。",
            "订单{o}支付失败，提示错误51。",
            "为什么我的卡一直支付失败？",
        ],
        en_more: [
            "The bank says there is nothing wrong on their side.",
            "I tried two different cards.",
        ],
        zh_more: ["银行说他们那边没有问题。", "我换了两张卡都不行。"],
    },
    Topic {
        en: [
            "I can't log in, it says my password is wrong.",
            "I forgot my password and the reset email never comes.",
            "My account is locked after too many attempts.",
        ],
        zh: [
            "登录不了，一直提示密码错误。",
            "忘记密码了，重置邮件一直收不到。",
            "输错几次密码后账号被锁了。",
        ],
        en_more: [
            "I checked the spam folder too.",
            "I need to access my invoices today.",
        ],
        zh_more: ["垃圾邮件里也没有。", "我今天必须要查发票。"],
    },
    Topic {
        en: [
            "I was charged twice for order {o}.",
            "There is a double charge of {a} on my statement.",
            "Why did you bill me {a} twice this month?",
        ],
        zh: [
            "订单{o}被扣了两次钱。",
            "账单上有两笔{a}的重复扣款。",
            "这个月为什么扣了我两次{a}？",
        ],
        en_more: [
            "Please refund the duplicate payment.",
            "This is the second time it happens.",
        ],
        zh_more: ["请把重复的那笔退给我。", "这已经是第二次了。"],
    },
    Topic {
        en: [
            "How do I cancel my subscription?",
            "Please cancel my plan, I don't want to renew.",
            "I cancelled but you still charged me {a}.",
        ],
        zh: [
            "怎么取消订阅？",
            "请帮我取消套餐，不想续费了。",
            "我已经取消了，为什么还扣了{a}？",
        ],
        en_more: [
            "I don't see a cancel button in the app.",
            "I want confirmation by email.",
        ],
        zh_more: ["App里找不到取消的按钮。", "请发邮件确认一下。"],
    },
    Topic {
        en: [
            "The app crashes every time I open it.",
            "The app freezes on the payment page.",
            "After the update the app won't start.",
        ],
        zh: [
            "App一打开就闪退。",
            "付款页面一直卡住不动。",
            "更新以后App打不开了。",
        ],
        en_more: [
            "I reinstalled it twice already.",
            "My phone is an Android 14.",
        ],
        zh_more: ["已经重装两次了。", "我的手机是安卓14。"],
    },
    Topic {
        en: [
            "The {p} arrived damaged.",
            "The box was crushed and the {p} is broken.",
            "I received the {p} with a cracked screen.",
        ],
        zh: [
            "收到的{p}是坏的。",
            "箱子压扁了，{p}也摔坏了。",
            "收到的{p}屏幕裂了。",
        ],
        en_more: [
            "I have photos of the damage.",
            "I want a replacement, not a refund.",
        ],
        zh_more: ["我拍了照片。", "我要换货，不要退款。"],
    },
    Topic {
        en: [
            "Can I change the delivery address for order {o}?",
            "I moved, please update the address on order {o}.",
            "The address on my order {o} is wrong.",
        ],
        zh: [
            "订单{o}能改收货地址吗？",
            "我搬家了，请修改订单{o}的地址。",
            "订单{o}的地址填错了。",
        ],
        en_more: [
            "It hasn't shipped yet.",
            "The new address is in the same city.",
        ],
        zh_more: ["还没发货。", "新地址在同一个城市。"],
    },
    Topic {
        en: [
            "I want to speak to a human.",
            "This is ridiculous, nobody answers my emails about order {o}.",
            "I've been waiting {d} days for a reply, I want a manager.",
        ],
        zh: [
            "我要找人工客服。",
            "太离谱了，订单{o}的邮件一直没人回。",
            "等了{d}天都没人回复，我要投诉。",
        ],
        en_more: [
            "I'm going to leave a bad review.",
            "I've called three times already.",
        ],
        zh_more: ["我要给差评。", "我已经打了三次电话了。"],
    },
];

const PRODUCTS_EN: [&str; 6] = [
    "headphones",
    "coffee machine",
    "phone case",
    "laptop",
    "smart watch",
    "blender",
];
const PRODUCTS_ZH: [&str; 6] = [
    "耳机",
    "咖啡机",
    "手机壳",
    "笔记本电脑",
    "智能手表",
    "榨汁机",
];
pub(crate) const BOT_EN: [&str; 3] = [
    "Hi, I'm the virtual assistant. How can I help you today?",
    "Thanks for contacting us! Let me look into this.",
    "I can help with that. Could you share your order number?",
];
pub(crate) const BOT_ZH: [&str; 3] = [
    "您好，我是智能客服，请问有什么可以帮您？",
    "感谢您的联系，我来帮您查询。",
    "可以提供一下订单号吗？",
];
const AGENT_EN: [&str; 5] = [
    "I'm sorry for the trouble. Let me check your account.",
    "Could you confirm the email on the account?",
    "I've escalated this to our team, you'll hear back within 24 hours.",
    "Thanks for your patience, I'm checking with the warehouse.",
    "I have issued a ticket, the reference is {o}.",
];
const AGENT_ZH: [&str; 5] = [
    "抱歉给您带来不便，我帮您查一下账户。",
    "请确认一下账户绑定的邮箱。",
    "已经帮您升级处理，24小时内会有回复。",
    "感谢耐心等待，我在和仓库核实。",
    "已为您创建工单，编号{o}。",
];
pub(crate) const FOLLOW_EN: [&str; 4] = [
    "Any update?",
    "How much longer do I have to wait?",
    "OK, thank you.",
    "That doesn't solve my problem.",
];
pub(crate) const FOLLOW_ZH: [&str; 4] = [
    "有进展了吗？",
    "还要等多久？",
    "好的，谢谢。",
    "这样还是没解决我的问题。",
];

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    En,
    Zh,
    Mixed,
}

pub(crate) fn pick<'a>(r: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[(r.next_u64() % xs.len() as u64) as usize]
}

pub(crate) fn fill(r: &mut Rng, t: &str, zh: bool) -> String {
    let order = format!("A{:08}", r.next_u64() % 100_000_000);
    let days = (r.next_u64() % 12 + 3).to_string();
    let cents = r.next_u64() % 50_000 + 500;
    let amount = if zh {
        format!("{}.{:02}元", cents / 100, cents % 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    };
    let p = if zh {
        pick(r, &PRODUCTS_ZH)
    } else {
        pick(r, &PRODUCTS_EN)
    };
    t.replace("{o}", &order)
        .replace("{d}", &days)
        .replace("{a}", &amount)
        .replace("{p}", p)
}

fn turn(role: &str, text: String) -> Turn {
    Turn {
        role: role.into(),
        text,
    }
}

/// One conversation, `id`, 2-12 turns.
pub fn conversation(r: &mut Rng, id: String) -> Conversation {
    let lang = match r.next_u64() % 10 {
        0..=4 => Lang::Zh,
        5..=8 => Lang::En,
        _ => Lang::Mixed,
    };
    let topic = &TOPICS[(r.next_u64() % TOPICS.len() as u64) as usize];
    let n = (r.next_u64() % 11 + 2) as usize;
    let mut turns = Vec::with_capacity(n);
    // Staff answer in Chinese in zh and mixed conversations; the mixed customer switches.
    let czh =
        |r: &mut Rng| lang == Lang::Zh || (lang == Lang::Mixed && r.next_u64().is_multiple_of(2));
    let szh = lang != Lang::En;
    let bot_first = r.next_u64().is_multiple_of(2);
    if bot_first {
        let t = if szh {
            pick(r, &BOT_ZH)
        } else {
            pick(r, &BOT_EN)
        };
        turns.push(turn("bot", t.to_string()));
    }
    let zh = czh(r);
    let open = if zh {
        pick(r, &topic.zh)
    } else {
        pick(r, &topic.en)
    };
    let open = fill(r, open, zh);
    turns.push(turn("customer", open));
    let mut customer_next = false;
    let mut said = 0;
    while turns.len() < n {
        if customer_next {
            let zh = czh(r);
            let t = match (said, zh) {
                (0 | 1, true) => topic.zh_more[said],
                (0 | 1, false) => topic.en_more[said],
                (_, true) => pick(r, &FOLLOW_ZH),
                (_, false) => pick(r, &FOLLOW_EN),
            };
            said += 1;
            let t = fill(r, t, zh);
            turns.push(turn("customer", t));
        } else {
            let role = if turns.len() < 3 && r.next_u64().is_multiple_of(3) {
                "bot"
            } else {
                "agent"
            };
            let t = match (role, szh) {
                ("bot", true) => pick(r, &BOT_ZH),
                ("bot", false) => pick(r, &BOT_EN),
                (_, true) => pick(r, &AGENT_ZH),
                (_, false) => pick(r, &AGENT_EN),
            };
            let t = fill(r, t, szh);
            turns.push(turn(role, t));
        }
        customer_next = !customer_next;
    }
    Conversation {
        id,
        turns,
        meta: Vec::new(),
        meta_error: None,
    }
}

/// A deliberately bad line of kind `k` (cycling through 8 kinds); `dup` is an id already used.
pub(crate) fn bad_line(k: usize, n: usize, dup: &str) -> Vec<u8> {
    match k % 8 {
        0 => format!("{{\"id\": \"bad-{n}\", \"turns\": [{{\"role\": \"customer\"").into_bytes(),
        1 => br#"{"turns": [{"role": "customer", "text": "no id here"}]}"#.to_vec(),
        2 => format!(r#"{{"id": "bad-{n}", "turns": []}}"#).into_bytes(),
        3 => format!(r#"{{"id": "bad-{n}", "turns": [{{"role": "robot", "text": "beep"}}]}}"#)
            .into_bytes(),
        4 => format!(r#"{{"id": "bad-{n}", "turns": [{{"role": "customer", "text": "  "}}]}}"#)
            .into_bytes(),
        5 => format!(r#"{{"id": "{dup}", "turns": [{{"role": "customer", "text": "again"}}]}}"#)
            .into_bytes(),
        6 => {
            let mut b = format!(r#"{{"id": "bad-{n}", "turns": [{{"role": "customer", "text": ""#)
                .into_bytes();
            b.extend_from_slice(b"\xff\xfe broken\"}]}");
            b
        }
        _ => {
            let text = "x".repeat(1_100_000);
            format!(r#"{{"id": "bad-{n}", "turns": [{{"role": "customer", "text": "{text}"}}]}}"#)
                .into_bytes()
        }
    }
}

/// Write `count` conversations (ids `c000001`...) and `bad` bad lines spread among them.
pub fn write(out: &mut dyn Write, count: usize, bad: usize, seed: u64) -> Result<()> {
    write_with(out, count, bad, seed, &mut |r, id| {
        serde_json::to_value(conversation(r, id)).unwrap_or_default()
    })
}

/// Write `count` conversations made by `make` (ids `c000001`...) and `bad` bad lines (one of
/// each kind in turn) spread among them.
pub(crate) fn write_with(
    out: &mut dyn Write,
    count: usize,
    bad: usize,
    seed: u64,
    make: &mut dyn FnMut(&mut Rng, String) -> serde_json::Value,
) -> Result<()> {
    let mut r = Rng::new(seed);
    let every = count.checked_div(bad).map_or(usize::MAX, |e| e.max(1));
    let mut bad_done = 0;
    for i in 1..=count {
        serde_json::to_writer(&mut *out, &make(&mut r, format!("c{i:06}")))?;
        out.write_all(b"\n")?;
        if bad_done < bad && i % every == 0 {
            out.write_all(&bad_line(bad_done, bad_done + 1, "c000001"))?;
            out.write_all(b"\n")?;
            bad_done += 1;
        }
    }
    while bad_done < bad {
        out.write_all(&bad_line(bad_done, bad_done + 1, "c000001"))?;
        out.write_all(b"\n")?;
        bad_done += 1;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_and_languages_vary() {
        let mut r = Rng::new(1);
        let cs: Vec<Conversation> = (0..300)
            .map(|i| conversation(&mut r, i.to_string()))
            .collect();
        assert!(cs.iter().all(|c| (2..=12).contains(&c.turns.len())));
        assert!(cs
            .iter()
            .all(|c| c.turns.iter().any(|t| t.role == "customer")));
        let zh = |t: &str| t.chars().any(crate::lang::is_han);
        let n_zh = cs
            .iter()
            .filter(|c| zh(&c.turns[c.turns.len() - 1].text))
            .count();
        assert!(n_zh > 50 && n_zh < 250, "{n_zh}");
        assert!(cs.iter().any(|c| c.turns.len() == 12) && cs.iter().any(|c| c.turns.len() == 2));
    }
}
