#!/usr/bin/env python3
"""Writes models/qa/data/required.jsonl: agent replies labelled for the scorecard's `required`
items (greeting, closing, apology after a complaint), Chinese and English, written for this
project by hand (below), most of them phrased without the items' phrase lists so that they
measure what encoder similarity adds; as many negatives (ordinary replies, and greetings or
closings where the other is required). Split dev/train by md5(item + text) % 2; dev never tunes
anything (the similarity thresholds are chosen on train: `triage qa eval --required`)."""
import json, hashlib
rows = []
def add(item, lang, pos, texts):
    for t in texts:
        rows.append({"item": item, "lang": lang, "positive": pos, "text": t})
add("greeting", "zh", True, [
 "亲，在的，这里是售后客服小王，请问有什么可以帮到您？", "早上好，我是客服小李，很高兴为您服务。", "亲亲，小店客服在线，请讲。",
 "晚上好呀，这边是官方客服，请问遇到什么问题了？", "欢迎光临本店，我是客服阿杰。", "哈喽，我是您的专属客服，请问需要什么帮助？",
 "您好呀，我是今天的值班客服，请问您的订单号是多少？", "下午好，售后服务中心为您服务。", "在的亲，请问您想咨询哪个订单？",
 "亲爱的顾客，很高兴接到您的咨询。", "中午好，这里是客服中心，请讲。", "嗨，我是客服小美，有什么可以帮您？"])
add("greeting", "zh", False, [
 "订单已经发出，请留意物流信息。", "请提供一下订单号，我来核实。", "退款会在三个工作日内原路退回。", "这个问题我需要向主管确认一下。",
 "地址已经为您修改好了。", "感谢您的耐心等待，祝您生活愉快。", "请您先重启一下应用试试。", "发票会发送到您的邮箱。",
 "商品支持七天无理由退货。", "优惠券已经补发到您的账户。", "我帮您转给售后同事处理。", "这边看到包裹在派送中。"])
add("greeting", "en", True, [
 "Hey there, this is Sam from the support team, how can I help?", "Morning! Dana here from customer care.", "Greetings, you've reached the returns desk.",
 "Hey, thanks for reaching out to us today.", "Hi there! Alex from support, what can I do for you?", "Good day, this is the billing team, how may I assist?",
 "Howdy, Jamie here. What seems to be the problem?", "Thanks for getting in touch, my name is Priya and I'll be helping you.", "Hey! Support here, happy to help with your order.",
 "Evening! You're chatting with Leo from the help desk.", "Hello and thanks for waiting, I'm Chris from support.", "Nice to meet you, I'm Mia and I'll look into this."])
add("greeting", "en", False, [
 "Your order has shipped, please watch the tracking page.", "Could you share the order number so I can look it up?", "The refund goes back to your card within three business days.",
 "I need to confirm this with my supervisor.", "Your delivery address is updated.", "Thank you for your patience, have a nice day.",
 "Please restart the app and try once more.", "The invoice has been sent to your email.", "You can return the item within 30 days.",
 "I have added the coupon to your account again.", "I have passed this to our returns team.", "The parcel is out for delivery today."])
add("closing", "zh", True, [
 "那先这样，之后有问题随时联系我们。", "期待再次为您服务，拜拜。", "有其他需要可以随时找我哦。", "那就不打扰您了，生活愉快。",
 "问题已经处理好了，欢迎下次光临。", "如果还有疑问，欢迎随时咨询。", "好的亲，那我们就先结束这次会话了。", "麻烦您给个好评，谢谢亲。",
 "后续有任何问题都可以再来找我们。", "回头有需要再联系，拜拜啦。", "今天的问题就先处理到这里，感谢来电。", "那您先忙，有事再喊我。"])
add("closing", "zh", False, [
 "亲，在的，请问有什么可以帮到您？", "请提供一下订单号，我来核实。", "退款会在三个工作日内原路退回。", "这个问题我需要向主管确认一下。",
 "地址已经为您修改好了。", "请您先重启一下应用试试。", "发票会发送到您的邮箱。", "我帮您查一下物流。",
 "商品支持七天无理由退货。", "请稍等，我看一下系统记录。", "我帮您转给售后同事处理。", "这边看到包裹在派送中。"])
add("closing", "en", True, [
 "Take care, and feel free to reach out if you need more help.", "Cheers, we're here whenever you need us.", "That should do it, enjoy the rest of your week!",
 "Glad we sorted it out, talk soon.", "If something else comes up, just message us again.", "All set then, enjoy your new headphones!",
 "I'll close this chat now, thanks for reaching out.", "Happy to have helped, see you next time.", "Let us know if there's more we can do for you.",
 "That's everything on my side, take it easy.", "Wishing you a lovely evening, and reach out any time.", "We're done here, feel free to rate this chat."])
add("closing", "en", False, [
 "Hey there, Sam from support, how can I help?", "Could you share the order number so I can look it up?", "The refund goes back to your card within three business days.",
 "I need to confirm this with my supervisor.", "Your delivery address is updated.", "Please restart the app and try once more.",
 "The invoice has been sent to your email.", "Let me check the tracking for you.", "You can return the item within 30 days.",
 "One moment while I look at your account.", "I have passed this to our returns team.", "The parcel is out for delivery today."])
add("apology_after_complaint", "zh", True, [
 "这次确实是我们的失误，给您造成困扰了。", "我们深表歉意，马上为您处理。", "让您久等了，实在过意不去。", "是我们工作没做好，请您谅解。",
 "这件事是我们的责任，非常惭愧。", "给您带来这么不好的体验，我们很内疚。", "向您致歉，这次配送确实出了问题。", "真是对不住，包裹被我们发错了。",
 "实在不应该让您等这么久，请原谅。", "这是我们的疏忽，请您多包涵。", "让您失望了，我们会认真改进。", "我代表团队向您赔个不是。"])
add("apology_after_complaint", "zh", False, [
 "请提供一下订单号，我来核实。", "退款会在三个工作日内原路退回。", "这个问题我需要向主管确认一下。", "地址已经为您修改好了。",
 "请您先重启一下应用试试。", "发票会发送到您的邮箱。", "我帮您查一下物流。", "商品支持七天无理由退货。",
 "请稍等，我看一下系统记录。", "我帮您转给售后同事处理。", "按照规定，这种情况无法退款。", "这边看到包裹在派送中。"])
add("apology_after_complaint", "en", True, [
 "That's on us, and I understand how frustrating this is.", "We regret the trouble this has caused you.", "My bad, I should have caught that earlier.",
 "This was our mistake and I'm going to fix it right now.", "I feel terrible that you had to wait this long.", "Please accept our regrets for the mix-up.",
 "We dropped the ball on this one, I'll make it right.", "You deserved better service than that, and I'm on it.", "Our error, the wrong size was packed.",
 "We truly regret the inconvenience with your delivery.", "I understand your frustration, this should not have happened.", "Forgive the delay, that's entirely our fault."])
add("apology_after_complaint", "en", False, [
 "Could you share the order number so I can look it up?", "The refund goes back to your card within three business days.", "I need to confirm this with my supervisor.",
 "Your delivery address is updated.", "Please restart the app and try once more.", "The invoice has been sent to your email.",
 "Let me check the tracking for you.", "You can return the item within 30 days.", "One moment while I look at your account.",
 "I have passed this to our returns team.", "Per our policy, this item cannot be refunded.", "The parcel is out for delivery today."])
import os
out = open(os.path.join(os.path.dirname(__file__), "..", "models/qa/data/required.jsonl"), "w")
for r in rows:
    h = int(hashlib.md5((r["item"] + r["text"]).encode()).hexdigest(), 16)
    r["split"] = "dev" if h % 2 == 0 else "train"
    out.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(rows), sum(r["split"] == "dev" for r in rows))
