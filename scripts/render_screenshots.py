#!/usr/bin/env python3
"""Render a synthetic evaluation set of error screenshots for screenshot fault recognition.

Renders desktop dialogs, web error pages and sites with alert banners, phone screens, toasts and
crash dialogs for each fault in T, in English and Chinese, some in dark mode, some photographed
with a phone (`phone_photo`, at most 1600 px on the long side, as chat apps send them), some JPEG.

Needs only the standard library and Pillow (`pip install pillow`), plus Debian's fonts
(`apt-get install -y fonts-dejavu fonts-liberation2 fonts-noto-cjk`).

    python3 scripts/render_screenshots.py --out DIR [--n-per-fault 12] [--seed 7] [--n-neutral 40]

Writes PNG/JPEG images and DIR/labels.jsonl, one JSON object per image:
    {"file": "payment_failed_003.png", "fault": "payment_failed", "language": "en",
     "style": "dialog", "dark": false, "font": "DejaVu Sans", "font_px": 14, "scale": 2.0,
     "photo": false, "jpeg_quality": null, "message": "headline\nbody\ndetail",
     "text": "...every string drawn, UI noise included, one line each..."}
Negatives have "fault": null (and "message": null); textless ones have "language": null. They are
  - about 15% of the main set: chats, shop pages, settings screens, photos, blank/loading screens;
  - then --n-neutral more, files neutral_NNN, with "kind": "success" or "neutral": half are success
    screens on the faults' topics (payment successful, order placed, you're up to date, devices
    online, backup complete, signed in, password changed, refund processed, file uploaded,
    connection secure; with "topic"), drawn in the same styles with a green check, the rest are
    neutral screens: shop receipts (mostly photographed), a support agent's ticket console and
    ordinary customer-service chats. They exist so that a matcher that recognises only topics,
    not polarity, is penalised. They use their own random generator, so that adding them left
    the main set unchanged.

The message texts below are written independently of the `examples` in models/faults.toml, so
that an evaluation on these images is honest. Same seed, same images.
"""
import argparse
import json
import os
import random
import re

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ["/usr/share/fonts", "/usr/local/share/fonts"]
LATIN = {  # family -> (regular file, bold file)
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "DejaVu Sans Condensed": ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
    "DejaVu Serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "Liberation Sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    "Liberation Sans Narrow": ("LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf"),
    "Liberation Serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
}
CJK = {
    "Noto Sans CJK SC": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"),
    "Noto Serif CJK SC": ("NotoSerifCJK-Regular.ttc", "NotoSerifCJK-Bold.ttc"),
}
MONO = {"DejaVu Sans Mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"),
        "Liberation Mono": ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf")}

# ---------------------------------------------------------------------------------------------
# Message templates: "headline|body|detail|button,button" (detail and buttons optional).
# A headline starting with a 3-digit status is shown as a giant number on web error pages.
# "D:" marks desktop/browser-only texts (Windows, macOS, desktop browsers), "M:" phone-only ones.
# Placeholders: {app} {site} {dev} {amt} {card} {order} {ref} {ray} {n3} {time}
T = {
    "payment_failed": {"styles": ["dialog", "web", "toast", "mobile"], "en": [
        "Payment declined|Your bank declined the charge of {amt} on the card ending in {card}. Use another card or contact your card issuer.|Reason code: 05 Do Not Honor · Ref {ref}",
        "We couldn't complete your order|Payment authorization failed for Visa •••• {card}. No money was taken from your account.|Error E-PAY-{n3}",
        "Transaction not approved|Insufficient funds. Please choose a different payment option to finish checkout.|Order #{order} · {time}",
        "There was a problem with your payment|The card security code (CVC) is incorrect. Check the 3 digits on the back of your card.|card_error: incorrect_cvc",
        "Card declined|This card doesn't support online purchases in your region. Try PayPal or another card.|Decline code: generic_decline",
    ], "zh": [
        "付款失败|您尾号{card}的银行卡扣款{amt}未成功，请更换银行卡后重新支付。|错误码：E-PAY-{n3}",
        "支付未成功|银行卡余额不足，本次交易已取消，订单将为您保留30分钟。|订单号：{order}",
        "交易失败|发卡行拒绝了此笔交易（代码51），如有疑问请致电银行客服。|{time}",
        "支付遇到问题|该卡暂不支持网上支付，请使用其他付款方式完成购买。|交易流水：{ref}",
    ]},
    "login_failed": {"styles": ["dialog", "web", "toast", "mobile"], "en": [
        "Sign-in failed|The email address or password you entered is incorrect. Please check and try again.|Attempts remaining: 3",
        "Incorrect password|Please try again or tap \"Forgot password?\" to reset it.",
        "Couldn't log you in|Invalid username or password. Passwords are case-sensitive.|Error AUTH-{n3}",
        "Wrong verification code|The SMS code you entered is not valid. Request a new code in 59 s.",
        "Authentication error|Your credentials could not be verified. Check your user ID and try again.|Status: 401",
    ], "zh": [
        "登录失败|账号或密码不正确，请重新输入。|还可尝试4次",
        "密码错误|您输入的密码有误，可点击“忘记密码”找回。",
        "验证码已失效|短信验证码已过期，请重新获取后再登录。",
        "无法登录|用户名或密码错误，请注意区分大小写。|错误码：AUTH-{n3}",
    ]},
    "account_locked": {"styles": ["dialog", "web", "mobile"], "en": [
        "Account locked|For your protection, we've locked your account after 5 unsuccessful sign-in attempts. Try again in 30 minutes or reset your password.",
        "Your account has been suspended|We noticed unusual activity and temporarily suspended access. Contact Customer Support to verify your identity.|Case ID: {ref}",
        "Too many attempts|You've reached the maximum number of login attempts. Your account is temporarily locked.|Error E-LOCK-{n3}",
        "This account is disabled|An administrator has disabled your account. Please reach out to your IT department.",
    ], "zh": [
        "账号已锁定|由于多次输入错误密码，您的账号已被临时锁定，请于30分钟后再试。",
        "账户已冻结|检测到异常登录行为，为保障资金安全，账户已被冻结，请联系客服解冻。|工单号：{ref}",
        "登录受限|尝试次数过多，该账号暂时无法登录，请稍后重试或找回密码。",
        "账号被封禁|您的账号因违反社区规定已被封禁，如有异议可提交申诉。",
    ]},
    "network_error": {"styles": ["web", "toast", "mobile", "dialog"], "en": [
        "D:This site can't be reached|{site} took too long to respond. Try: checking the connection, checking the proxy and the firewall.|ERR_CONNECTION_TIMED_OUT|Reload",
        "No internet|Try: checking the network cables, modem, and router; reconnecting to Wi-Fi.|ERR_INTERNET_DISCONNECTED|Reload",
        "D:502 Bad Gateway|The server, while acting as a gateway or proxy, received an invalid response from the upstream server.|nginx/1.18.0",
        "D:503 Service Temporarily Unavailable|The server is temporarily unable to service your request due to maintenance downtime or capacity problems.|Apache/2.4.41 Server at {site} Port 443",
        "D:504 Gateway time-out|The web server reported a gateway time-out error. Please try again in a few minutes.|Error code 504 · Ray ID: {ray}",
        "M:Request timed out|We couldn't load your orders. Check your connection and pull down to refresh.|(NSURLErrorDomain error -1001)",
        "D:Hmm. We're having trouble finding that site.|We can't connect to the server at {site}. Check the address for typing errors.|DNS_PROBE_FINISHED_NXDOMAIN|Try Again",
    ], "zh": [
        "D:无法访问此网站|{site} 的响应时间过长。请尝试：检查网络连接，检查代理服务器和防火墙。|ERR_CONNECTION_TIMED_OUT|重新加载",
        "网络连接异常|加载失败，请检查网络设置后点击重试。||重试",
        "D:未连接到互联网|请试试以下办法：检查网线、调制解调器和路由器；重新连接到 Wi-Fi 网络。|ERR_INTERNET_DISCONNECTED|重新加载",
        "502 Bad Gateway|服务器作为网关时收到了无效响应，请稍后刷新页面。|nginx",
        "请求超时|服务器响应超时（错误码：504），请稍后再试。",
        "M:网络不给力|当前网络信号较弱，内容加载失败，请切换网络后重试。||重新加载",
    ]},
    "not_found": {"styles": ["web", "web", "mobile"], "en": [
        "404 Page Not Found|The link you followed may be broken, or the page may have been removed.||Go to homepage",
        "D:404 That's an error.|The requested URL /orders/{order} was not found on this server. That's all we know.",
        "404 Looks like you're lost|We can't find the page you're looking for. Try searching or head back to the store.|Error code: 404|Back to store",
        "D:Not Found|The requested URL was not found on this server.|Apache/2.4.52 (Ubuntu) Server at {site} Port 443",
        "404 Oops, this item is no longer available|The product you're looking for has been discontinued or the link has expired.||Continue shopping",
    ], "zh": [
        "404 页面找不到了|您访问的页面可能已被删除、更名或暂时不可用。||返回首页",
        "404 抱歉，页面不存在|请检查网址是否正确，或返回上一页继续浏览。|错误代码：404",
        "页面走丢了|商品已下架或链接已失效，去看看其他商品吧。||去逛逛",
        "404 Not Found|找不到请求的资源：/item/{order}|nginx",
    ]},
    "server_error": {"styles": ["web", "web", "mobile", "toast"], "en": [
        "D:500 Internal Server Error|The server encountered an internal error or misconfiguration and was unable to complete your request.|Apache/2.4.41 Server at {site} Port 443",
        "500 Something went wrong|We're sorry, but something went wrong on our side. Our engineers have been notified.|Request ID: {ray}",
        "Server Error|Sorry, an unexpected error occurred while processing your request (HTTP 500).|Reference #{ref}",
        "D:This page isn't working|{site} is currently unable to handle this request.|HTTP ERROR 500|Reload",
        "Oops! An error occurred|The server returned an error while loading your cart. Please try again in a moment.|Error 500 · {time}",
    ], "zh": [
        "500 服务器内部错误|服务器遇到了意外情况，无法完成您的请求。|Request ID: {ray}",
        "出错了|系统开小差了，请稍后刷新页面重试。|错误码：500",
        "D:该网页无法正常运作|{site} 目前无法处理此请求。|HTTP ERROR 500|重新加载",
        "系统异常|服务器处理请求时发生错误，请联系客服并提供以下编号。|追踪号：{ref}",
    ]},
    "permission_denied": {"styles": ["web", "web", "dialog", "mobile"], "en": [
        "D:403 Forbidden|You don't have permission to access /admin/ on this server.|Apache/2.4.41 Server at {site} Port 443",
        "D:Access Denied|You don't have permission to access \"http://{site}/account/\" on this server.|Reference #18.{ray}",
        "403 Access to this page is restricted|Your account role does not allow viewing this report. Request access from an administrator.",
        "You need permission|You need permission to access this file. Ask the owner to share it with you.|Error 403|Request access",
        "D:Destination Folder Access Denied|You need permission to perform this action.|Error code: 0x80070005|Try Again,Cancel",
    ], "zh": [
        "403 禁止访问|抱歉，您无权访问此页面，请联系网站管理员。|nginx",
        "访问被拒绝|您的账号没有查看该订单的权限。|错误代码：403",
        "权限不足|当前用户无权执行此操作，请申请相应权限后重试。||申请权限",
        "D:拒绝访问|你需要权限来执行此操作。|错误代码：0x80070005|重试,取消",
    ]},
    "app_crash": {"styles": ["crash", "crash", "crash", "mobile"], "en": [
        "D:{app} has stopped working|A problem caused the program to stop working correctly. Windows will close the program and notify you if a solution is available.|Problem Event Name: APPCRASH|Close program",
        "M:{app} keeps stopping||| App info,Close app",
        "M:{app} isn't responding|Do you want to close it?||Wait,Close app",
        "D:{app} quit unexpectedly.|Click Reopen to open the application again. Click Report to see more details or send a report.||Ignore,Report...,Reopen",
        "D:{app} (Not Responding)|If you close the program, you might lose information.||Close the program,Wait",
        "D:Aw, Snap!|Something went wrong while displaying this webpage.|Error code: STATUS_ACCESS_VIOLATION|Reload",
    ], "zh": [
        "D:“{app}”已停止运行|出现了一个问题，导致程序停止正常工作。Windows 将关闭该程序。|问题事件名称：APPCRASH|关闭程序",
        "M:{app}屡次停止运行|||应用信息,关闭应用",
        "M:{app}没有响应|要将其关闭吗？||等待,关闭应用",
        "D:{app}意外退出|点按“重新打开”以再次打开应用程序。||忽略,报告…,重新打开",
        "D:{app} (未响应)|如果关闭该程序，可能会丢失信息。||关闭程序,等待该程序响应",
        "D:喔唷，崩溃啦！|显示此网页时出了点问题。|错误代码：STATUS_ACCESS_VIOLATION|重新加载",
    ]},
    "storage_full": {"styles": ["dialog", "toast", "mobile"], "en": [
        "M:Storage Almost Full|You can manage your storage in Settings.||Done,Settings",
        "Not enough space|{app} needs 450 MB of free space to install. Remove some apps or files and try again.",
        "D:Low Disk Space|You are running out of disk space on Local Disk (C:). To free space on this drive, click here.",
        "M:Can't take photo|Your phone storage is full. Free up space to keep taking photos and videos.|Only 82 MB left|Free up space",
        "D:Error Copying File|There is not enough space on Local Disk (C:). 1.2 GB is needed to copy this item.|Error 0x80070070|Try Again,Cancel",
    ], "zh": [
        "M:存储空间即将用完|可在“设置”中管理存储空间。||好,设置",
        "M:手机存储空间不足|拍照和录像功能可能无法正常使用，请清理不需要的文件。|剩余 86 MB|立即清理",
        "内存不足|{app}需要至少 500 MB 可用空间才能完成下载。",
        "D:磁盘空间不足|本地磁盘 (C:) 上的可用空间不足，是否立即清理？||清理,取消",
    ]},
    "update_failed": {"styles": ["dialog", "web", "mobile"], "en": [
        "D:Updates failed|There were problems installing some updates, but we'll try again later.|Error code: 0x80070002|Retry",
        "M:Software Update Failed|An error occurred downloading iOS 17.4.||Close,Details",
        "M:Can't update {app}|Error retrieving information from server. Try again later.|[DF-DFERH-01]",
        "M:App not installed|The package conflicts with an existing package by the same name.|INSTALL_FAILED_UPDATE_INCOMPATIBLE",
        "Firmware update failed|The device could not verify the downloaded firmware (v2.3.1). Keep it powered on and retry.|Code: FW-{n3}",
        "D:Windows Update|We couldn't install this update, but you can try again.|2024-05 Cumulative Update for Windows 11 (KB5037771) - Error 0x800f0922|Retry",
    ], "zh": [
        "D:更新失败|部分更新安装时出现问题，我们稍后将重试。|错误代码：0x80070002|重试",
        "M:软件更新失败|下载 iOS 17.4 时出错。||关闭,详细信息",
        "升级未完成|新版本安装包校验失败，请重新下载。|当前版本 3.2.1",
        "M:安装失败|应用未安装：软件包与现有软件包存在冲突。",
        "固件升级失败|设备固件升级出错，已恢复到原版本，请保持通电后重试。",
    ]},
    "certificate_error": {"styles": ["web", "web", "mobile"], "en": [
        "D:Your connection is not private|Attackers might be trying to steal your information from {site} (for example, passwords, messages, or credit cards).|NET::ERR_CERT_AUTHORITY_INVALID|Advanced,Back to safety",
        "Your connection is not private|{site} normally uses encryption to protect your information. The certificate is not valid for the current date.|NET::ERR_CERT_DATE_INVALID|Back to safety",
        "D:Warning: Potential Security Risk Ahead|Firefox detected a potential security threat and did not continue to {site}.|Error code: SEC_ERROR_EXPIRED_CERTIFICATE|Go Back,Advanced...",
        "M:This Connection Is Not Private|This website may be impersonating \"{site}\" to steal your personal or financial information.||Show Details,Go Back",
        "D:Secure Connection Failed|An error occurred during a connection to {site}. SSL received a record that exceeded the maximum permissible length.|Error code: SSL_ERROR_RX_RECORD_TOO_LONG|Try Again",
    ], "zh": [
        "D:您的连接不是私密连接|攻击者可能会试图从 {site} 窃取您的信息（例如：密码、通讯内容或信用卡信息）。|NET::ERR_CERT_DATE_INVALID|高级,返回安全连接",
        "此网站的安全证书有问题|该网站出具的安全证书已过期或还未生效。",
        "D:警告：面临潜在的安全风险|Firefox 检测到潜在的安全威胁，因此没有继续前往 {site}。|错误代码：SEC_ERROR_UNKNOWN_ISSUER|返回,高级…",
        "证书校验失败|无法与服务器建立安全连接，请检查手机日期和时间设置。|SSL handshake error",
    ]},
    "device_offline": {"styles": ["mobile", "toast", "dialog", "mobile"], "en": [
        "Camera offline|{dev} was last online at {time}. Make sure it has power and Wi-Fi.",
        "Device unavailable|We can't reach {dev}. Check that it's plugged in and connected to your 2.4 GHz network.|Error E-DEV-{n3}",
        "Printer Offline|Office Printer (Wi-Fi) is offline. Documents will print when the printer is back online.|3 documents waiting",
        "{dev} is disconnected|Tap to reconnect, or check that the device is nearby and powered on.||Reconnect",
        "No response from device|The smart lock did not respond within 10 seconds.|Code: 0x1F|Retry",
    ], "zh": [
        "设备离线|“{dev}”最后在线时间 {time}，请检查设备电源和 Wi-Fi。",
        "摄像机已断开连接|无法获取实时画面，请确认设备通电并靠近路由器。||重新连接",
        "打印机脱机|文档将在打印机恢复联机后打印。|3 个文档正在等待",
        "{dev}不在线|设备可能已断电或网络异常，请检查后下拉刷新。",
    ]},
}
FAULTS = list(T)

# Success screens: negatives (fault null) on the same topics as the faults, so that a matcher that
# only sees topics (payment, update, device...) and not polarity is caught out. Same format as T.
S = {
    "payment": {"styles": ["dialog", "web", "toast", "mobile"], "en": [
        "Payment successful|We've received your payment of {amt}. A receipt has been sent to your email.|Transaction ID: {ref}|Done",
        "Thank you! You've paid {amt}|Visa •••• {card} was charged successfully. Your order is being prepared.|Order #{order} · {time}|View order",
        "Payment complete|Your payment was approved. No further action is needed.|Ref {ref}",
        "M:Paid {amt}|Payment to {app} completed with Apple Pay.|{time}|Done",
    ], "zh": [
        "支付成功|您已成功支付{amt}，电子发票将发送至您的邮箱。|交易单号：{ref}|完成",
        "付款成功|尾号{card}的银行卡已扣款{amt}，商家正在为您备货。|订单号：{order}|查看订单",
        "M:支付完成|{amt}已支付给{app}，感谢您的购买。|{time}|返回商家",
        "交易成功|本次付款已完成，无需重复支付。|流水号：{ref}",
    ]},
    "order": {"styles": ["web", "mobile", "toast", "web"], "en": [
        "Order placed!|Thanks for shopping with {app}. We'll email you when your package ships.|Order #{order}|Track order",
        "Your order is confirmed|Estimated delivery: Thursday. You paid {amt} for 2 items.|Order number: {order}|Continue shopping",
        "Thanks, your order has been received|A confirmation email is on its way.|Order #{order} · placed at {time}",
    ], "zh": [
        "下单成功|感谢您在{app}购物，商品发货后我们会短信通知您。|订单号：{order}|查看订单",
        "订单已确认|预计周四送达，共2件商品，实付{amt}。|订单编号：{order}|继续购物",
        "提交成功|您的订单已提交，商家将尽快为您发货。|下单时间：{time}",
    ]},
    "update": {"styles": ["dialog", "mobile", "web", "toast"], "en": [
        "Update complete|{app} has been updated to version 4.2.0. Enjoy the new features!||Open",
        "You're up to date|{app} 4.2.0 is the latest version.|Last checked: today at {time}",
        "D:Your device is up to date|Last checked: Today, {time}. No updates are available right now.||Check for updates",
        "Firmware updated|{dev} is now running firmware v2.3.1.||Done",
        "M:iOS is up to date|iOS 17.4.1 is installed on this iPhone.||OK",
    ], "zh": [
        "更新完成|{app}已更新至 4.2.0 版本，快来体验新功能吧。||打开",
        "已是最新版本|当前版本 4.2.0 已是最新版本，无需更新。|上次检查：今天 {time}",
        "固件升级成功|{dev}已升级到 v2.3.1。||完成",
        "D:你使用的是最新版本|上次检查时间：今天 {time}||检查更新",
    ]},
    "device": {"styles": ["mobile", "toast", "dialog", "mobile"], "en": [
        "All devices online|5 devices are connected and working normally.|Last sync {time}",
        "{dev} is online|Connected to Home-WiFi (5 GHz). Signal strength: excellent.||Done",
        "Device added|{dev} has been set up and is ready to use.||Go to home",
        "Printer ready|Office Printer (Wi-Fi) is online. There are no documents in the queue.",
    ], "zh": [
        "设备在线|“{dev}”已连接，运行正常。|最近同步：{time}",
        "全部设备在线|5 台设备均已连接，运行状态良好。",
        "添加成功|{dev}已完成配网，可以开始使用了。||完成",
        "打印机已就绪|办公室打印机已联机，当前没有等待打印的文档。",
    ]},
    "backup": {"styles": ["mobile", "toast", "dialog"], "en": [
        "Backup complete|All 2,318 photos and videos are backed up to {app}.|Last backup: today, {time}",
        "Your data is backed up|Contacts, messages and settings were saved to the cloud.||Done",
        "M:Backup finished|1.4 GB backed up over Wi-Fi.|{time}",
    ], "zh": [
        "备份完成|2318 张照片和视频已全部备份到{app}。|上次备份：今天 {time}",
        "备份成功|通讯录、短信和设置已保存到云端。||完成",
        "数据已同步|所有数据均已是最新状态。|同步时间：{time}",
    ]},
    "signin": {"styles": ["toast", "web", "mobile"], "en": [
        "Welcome back!|You're signed in to {app}.||Continue",
        "Signed in successfully|You're now signed in on this device.|{time}",
        "Hi there, welcome back|Good to see you again. Your cart has 2 items.||Go to cart",
    ], "zh": [
        "登录成功|欢迎回来！|{time}",
        "欢迎回来|您已登录{app}。||进入首页",
        "已登录|您已在本设备上成功登录。",
    ]},
    "password": {"styles": ["web", "mobile", "dialog", "toast"], "en": [
        "Password changed|Your password was updated successfully. Use your new password next time you sign in.||Done",
        "Your password has been reset|You can now sign in with your new password.||Sign in",
        "Password updated successfully|We've sent a confirmation to your email address.|{time}",
    ], "zh": [
        "密码修改成功|下次登录请使用新密码。||完成",
        "密码已重置|请使用新密码重新登录。||去登录",
        "修改成功|您的登录密码已更新，确认邮件已发送至您的邮箱。",
    ]},
    "refund": {"styles": ["web", "mobile", "toast"], "en": [
        "Refund processed|We've refunded {amt} to your Visa •••• {card}. It may take 3-5 business days to appear.|Refund ID: {ref}",
        "Your refund is on its way|{amt} will be returned to your original payment method.|Order #{order}|View details",
        "Return accepted|Your refund of {amt} has been issued.|{time}",
    ], "zh": [
        "退款成功|{amt}已原路退回至尾号{card}的银行卡，预计1-3个工作日到账。|退款单号：{ref}",
        "退款已到账|{amt}已退回您的账户余额。|订单号：{order}|查看详情",
        "退款处理完成|您的售后申请已处理，退款{amt}已发放。",
    ]},
    "upload": {"styles": ["toast", "dialog", "mobile"], "en": [
        "File uploaded|report-Q2.pdf (2.4 MB) was uploaded successfully.||Open",
        "Upload complete|12 photos were added to the album \"Holiday\".|{time}",
        "Done! Your document is uploaded|We'll review it within 24 hours.|Reference {ref}",
    ], "zh": [
        "上传成功|文件“季度报告.pdf”（2.4 MB）已上传。||查看",
        "上传完成|12 张照片已添加到相册“旅行”。|{time}",
        "提交成功|资料已上传，我们将在24小时内完成审核。|受理编号：{ref}",
    ]},
    "secure": {"styles": ["dialog", "mobile", "toast"], "en": [
        "Connection is secure|Your information (for example, passwords or credit card numbers) is private when it is sent to {site}.|Certificate is valid",
        "D:This site is secure|{site} has a valid certificate issued by a trusted authority.||Got it",
        "Secure payment|Your card details are encrypted and sent securely.|256-bit SSL · {site}",
    ], "zh": [
        "连接是安全的|您发送到 {site} 的信息（例如密码或信用卡卡号）会受到保护。|证书有效",
        "安全连接|该网站的证书有效，由受信任的机构颁发。|{site}",
        "支付环境安全|您的银行卡信息已加密传输。|{site}",
    ]},
}
OK_PAGES = {"payment": ("Order confirmation", "订单详情"), "order": ("Order confirmation", "订单详情"),
            "update": ("Software update", "软件更新"), "device": ("My devices", "我的设备"), "backup": ("Backup", "备份与恢复"),
            "signin": ("My account", "我的账户"), "password": ("Security", "账号与安全"), "refund": ("Refund details", "退款详情"),
            "upload": ("My files", "我的文件"), "secure": ("Site information", "网站信息")}
OK_ROWS = {  # summary lines under the green banner on success web pages
    "payment": (["Order number: {order}", "Amount paid: {amt}", "Payment method: Visa •••• {card}"],
                ["订单编号：{order}", "实付金额：{amt}", "支付方式：尾号{card}的银行卡"]),
    "order": (["Order number: {order}", "Total: {amt}", "Delivery: Standard (2-3 days)"],
              ["订单编号：{order}", "订单金额：{amt}", "配送方式：快递，预计2-3天送达"]),
    "update": (["Current version: 4.2.0", "Last checked: today {time}"], ["当前版本：4.2.0", "上次检查：今天 {time}"]),
    "device": (["{dev}: Online", "Wi-Fi: Home-WiFi (5 GHz)"], ["{dev}：在线", "Wi-Fi：Home-WiFi (5 GHz)"]),
    "backup": (["Last backup: today {time}", "Backup size: 1.4 GB"], ["上次备份：今天 {time}", "备份大小：1.4 GB"]),
    "signin": (["Signed in as alex.chen@example.com", "Last sign-in: today {time}"], ["当前账号：138****5621", "上次登录：今天 {time}"]),
    "password": (["Password last changed: just now", "Two-step verification: On"], ["密码修改时间：刚刚", "两步验证：已开启"]),
    "refund": (["Refund ID: {ref}", "Amount: {amt}", "Status: Completed"], ["退款单号：{ref}", "退款金额：{amt}", "退款状态：已完成"]),
    "upload": (["Files: 12", "Storage used: 4.2 GB of 15 GB"], ["文件数：12", "已用空间：4.2 GB / 15 GB"]),
    "secure": (["Certificate: valid", "Connection: TLS 1.3"], ["证书：有效", "连接：TLS 1.3"]),
}
OK_PATHS = {"payment": "/checkout/success", "order": "/order/confirmation", "update": "/settings/update", "device": "/devices",
            "backup": "/backup", "signin": "/account", "password": "/account/security", "refund": "/orders/refunds",
            "upload": "/files", "secure": "/"}
OK_BUTTONS = {"en": [["OK"], ["Done"], ["Close"], ["Continue"]], "zh": [["确定"], ["完成"], ["关闭"], ["知道了"]]}

APPS = {"en": ["ShopFast", "Lumina Home", "MetroPay", "Parcelly", "Photo Vault", "Notely", "TripMate"],
        "zh": ["快购商城", "智家", "云相册", "畅聊", "易行出行", "好邻居", "美食汇"]}
SITES = ["www.northwind-store.com", "account.lumina.io", "shop.parcelly.co.uk", "m.kuaigou.cn",
         "pay.metropay.com", "help.tripmate.net", "www.meishihui.com.cn"]
DEVS = {"en": ["Living Room Camera", "Smart Plug 2", "Front Door Lock", "Kitchen Speaker", "Robot Vacuum"],
        "zh": ["客厅摄像头", "智能插座", "入户门锁", "卧室空调", "扫地机器人"]}
NAV = {"en": ["Home", "Shop", "Deals", "Orders", "Help", "Account"], "zh": ["首页", "分类", "优惠", "我的订单", "帮助中心", "我的"]}
MENU = {"en": ["File", "Edit", "View", "Window", "Help"], "zh": ["文件", "编辑", "视图", "窗口", "帮助"]}
BUTTONS = {"en": [["OK"], ["Retry", "Cancel"], ["Close"], ["Try again"], ["OK", "Details"]],
           "zh": [["确定"], ["重试", "取消"], ["关闭"], ["再试一次"], ["确定", "详情"]]}
LIST_ITEMS = {"en": ["Order #{order} · Delivered", "Wireless mouse  $19.99", "Track package", "Returns & refunds",
                     "Recently viewed", "Messages (2)", "Wallet", "Coupons"],
              "zh": ["订单 {order} · 已签收", "无线鼠标  ¥89", "查看物流", "退换货/售后", "最近浏览", "消息 (2)", "钱包", "优惠券"]}
CHATS = {"en": [["Hi, can I change my delivery date?", "Sure! What date works for you?", "Next Tuesday if possible",
                 "Done, order #{order} will now arrive on Tuesday.", "Great, thanks a lot!"],
                ["Do you have this jacket in size M?", "Yes, we have it in black and navy.",
                 "Perfect. Thanks, the payment went through. When will it ship?", "It ships within 24 hours."],
                ["Hello, is the store open on Sunday?", "Yes, from 10am to 6pm.", "OK see you then"]],
         "zh": [["你好，可以改一下收货地址吗？", "可以的，请把新地址发给我哦", "上海市浦东新区世纪大道100号", "好的已经帮您修改了", "谢谢！"],
                ["这款有红色的吗？", "有的亲，现在下单今天就发货", "好的，已经付款了", "收到，稍后给您发货~"],
                ["请问周末可以送货吗？", "周末正常配送的", "好的"]]}
SHOP = {"en": ["Wireless Headphones X2", "$59.99", "4.6 out of 5 stars (1,284 reviews)", "Free delivery by Friday",
               "Colour: Black", "Add to cart", "Buy now", "Noise cancelling, 30 h battery, USB-C fast charging."],
        "zh": ["无线蓝牙耳机 X2", "¥299", "4.8分 · 2万+条评价", "预计周五送达 · 包邮", "颜色：黑色", "加入购物车", "立即购买",
               "主动降噪，30小时续航，支持快充。"]}
SETTINGS = {"en": ["Settings", "Wi-Fi", "Bluetooth", "Notifications", "Display & Brightness", "Storage", "Privacy", "About phone",
                   "Language & region", "Battery"],
            "zh": ["设置", "无线局域网", "蓝牙", "通知", "显示与亮度", "存储空间", "隐私", "关于本机", "语言与地区", "电池"]}
PAGE_TITLES = {"payment_failed": {"en": "Checkout", "zh": "确认订单"}, "login_failed": {"en": "Sign in", "zh": "登录"},
               "update_failed": {"en": "Software update", "zh": "软件更新"}}
FIELDS = {"payment_failed": {"en": ["Card number", "Expiry date", "CVC"], "zh": ["卡号", "有效期", "安全码"]},
          "login_failed": {"en": ["Email", "Password"], "zh": ["手机号/邮箱", "密码"]},
          "update_failed": {"en": ["Current version: 3.2.1", "Last checked: today"], "zh": ["当前版本：3.2.1", "上次检查：今天"]}}
ACCENTS = [(0, 120, 215), (26, 115, 232), (220, 53, 69), (255, 87, 34), (7, 193, 96), (98, 0, 238), (0, 150, 136)]
# Neutral screens (fault null): ordinary chats, shop receipts, a support agent's console.
CHATS2 = {"en": [["Hi! When will my order arrive?", "Hi, it's out for delivery today between 2 and 5 pm.", "Great, thank you!",
                  "You're welcome, have a nice day!"],
                 ["Does the dress run small?", "It fits true to size. If you're between sizes, we suggest the larger one.",
                  "OK, I'll take an M then", "Good choice! It ships tomorrow morning."],
                 ["What are your opening hours on public holidays?", "We're open from 9am to 5pm on public holidays.", "Thanks!"],
                 ["Just wanted to say thanks, the shoes fit perfectly", "So glad to hear that! Thanks for shopping with us.",
                  "Will definitely order again"],
                 ["Can I pick up order #{order} in store?", "Yes! It will be ready for collection in about 2 hours.",
                  "Perfect, see you later"]],
          "zh": [["你好，我的快递什么时候到？", "您好，今天下午2点到5点之间派送哦", "好的，谢谢！", "不客气，祝您生活愉快~"],
                 ["身高165，体重50公斤穿什么码？", "建议您选S码，这款版型偏宽松", "好的，那我拍S码", "好的亲，今天就给您发出"],
                 ["你们店国庆节营业吗？", "国庆期间正常营业，时间是早上9点到晚上9点", "好的，知道了"],
                 ["衣服收到了，很合身，谢谢！", "感谢您的支持，欢迎再次光临~"],
                 ["订单{order}可以到店自提吗？", "可以的，2小时后到门店前台取货即可", "好的，谢谢"]]}
RECEIPT = {
    "en": {"stores": [("GREEN BASKET MARKET", "412 Elm Street, Springfield"), ("CORNER COFFEE CO.", "88 Harbour Road, Bristol"),
                      ("NORTHWIND STORE", "1200 Market St, San Francisco"), ("CITY PHARMACY", "5 Station Square, Leeds")],
           "items": [("Organic milk 1L", 1.89), ("Sourdough bread", 4.50), ("Bananas 1.2 lb", 0.79), ("Cheddar cheese", 5.25),
                     ("Flat white", 3.80), ("Blueberry muffin", 2.95), ("USB-C cable 1m", 12.99), ("AA batteries 4-pack", 6.49),
                     ("Toothpaste", 3.29), ("Vitamin C 60 tabs", 8.99), ("Orange juice", 3.49), ("Greek yogurt", 4.10)],
           "cur": "$%.2f", "labels": ["Subtotal", "Tax 8%", "TOTAL", "Paid: Visa •••• {card}", "Receipt #{n}", "Cashier: {who}",
                                      "Thank you for shopping with us!", "Please keep your receipt for returns."],
           "cashiers": ["Anna", "Marcus", "Priya", "Tom"]},
    "zh": {"stores": [("好邻居便利店", "上海市徐汇区漕溪北路 88 号"), ("美食汇餐厅", "北京市朝阳区建国路 93 号"),
                      ("快购超市", "广州市天河区体育西路 191 号"), ("一点点奶茶", "杭州市西湖区文三路 259 号")],
           "items": [("矿泉水 550ml", 2.0), ("全麦面包", 12.5), ("鲜牛奶 1L", 15.8), ("香蕉 1.2斤", 6.6), ("珍珠奶茶 大杯", 16.0),
                     ("宫保鸡丁", 38.0), ("米饭", 3.0), ("纸巾 3包", 9.9), ("洗发水 400ml", 45.9), ("酸奶", 7.5),
                     ("苹果 2斤", 13.8), ("薯片", 8.5)],
           "cur": "¥%.2f", "labels": ["小计", "税额 6%", "合计", "支付方式：{pay}", "单号：{n}", "收银员：{who}",
                                      "谢谢惠顾，欢迎再次光临！", "请保留小票作为售后凭证"],
           "cashiers": ["001 王芳", "002 李强", "003 陈静"], "pay": ["微信支付", "支付宝", "银联卡 尾号{card}"]},
}
CONSOLE = {
    "en": {"app": ["HelpDesk Pro", "SupportHub", "CareDesk"], "nav": ["Inbox", "Tickets", "Customers", "Reports", "Knowledge base",
                                                                     "Macros", "Settings"],
           "title": "Tickets", "search": "Search tickets…",
           "kpis": [("Open tickets", "{a}"), ("Avg. first response", "{m}m {s}s"), ("Solved today", "{b}"), ("CSAT", "{p}%")],
           "cols": ["ID", "Subject", "Customer", "Status", "Updated"], "status": ["Open", "Pending", "Solved", "Open"],
           "ago": ["{k} min ago", "{k} min ago", "{h} h ago"],
           "subjects": ["Refund request for order #{order}", "Login question", "Change delivery address", "Can I pay with PayPal?",
                        "Invoice copy for March", "Size exchange - blue jacket", "Where is my parcel?", "Update phone number on account",
                        "Question about the warranty", "Smart plug setup help", "Gift card balance", "Cancel subscription renewal",
                        "Password reset question", "Bulk order discount?", "Payment method question"],
           "names": ["Emma Clark", "Liam Chen", "Sofia Rossi", "Noah Patel", "Mia Müller", "James O'Brien", "Ava Kim", "Lucas Silva"]},
    "zh": {"app": ["客服工作台", "智能客服中心", "售后服务台"], "nav": ["收件箱", "工单", "客户", "数据报表", "知识库", "快捷回复", "设置"],
           "title": "工单列表", "search": "搜索工单…",
           "kpis": [("待处理工单", "{a}"), ("平均首次响应", "{m}分{s}秒"), ("今日已解决", "{b}"), ("客户满意度", "{p}%")],
           "cols": ["编号", "主题", "客户", "状态", "更新时间"], "status": ["待处理", "处理中", "已解决", "待处理"],
           "ago": ["{k}分钟前", "{k}分钟前", "{h}小时前"],
           "subjects": ["订单{order}申请退款", "登录问题咨询", "修改收货地址", "能否开具发票", "尺码换货", "快递到哪了",
                        "更换绑定手机号", "保修政策咨询", "智能插座如何配网", "礼品卡余额查询", "取消自动续费", "密码找回咨询",
                        "批量采购有优惠吗", "支付方式咨询"],
           "names": ["王女士", "李先生", "张伟", "刘洋", "陈静", "赵敏", "孙先生", "周婷"]},
}


def find_fonts():
    files = {}
    for d in FONT_DIRS:
        for root, _, names in os.walk(d):
            for n in names:
                files.setdefault(n, os.path.join(root, n))
    fams = {}
    for table in (LATIN, CJK, MONO):
        for fam, pair in table.items():
            if all(p in files for p in pair):
                fams[fam] = tuple(files[p] for p in pair)
    if not any(f in fams for f in CJK) or not any(f in fams for f in LATIN):
        raise SystemExit("fonts missing: apt-get install -y fonts-dejavu fonts-liberation2 fonts-noto-cjk")
    return fams


class Fonts:
    def __init__(self):
        self.paths, self.cache = find_fonts(), {}

    def get(self, family, px, bold=False):
        key = (family, int(px), bold)
        if key not in self.cache:
            path = self.paths[family][1 if bold else 0]
            index = 0
            if path.endswith(".ttc"):  # pick the Simplified Chinese face by name
                for i in range(16):
                    if ImageFont.truetype(path, 10, index=i).getname()[0] == family:
                        index = i
                        break
            self.cache[key] = ImageFont.truetype(path, max(6, int(px)), index=index)
        return self.cache[key]


def has_cjk(s):
    return re.search(r"[\u3000-\u9fff\uff00-\uffef]", s) is not None


def wrap(text, font, max_w):
    """Greedy wrap: ASCII runs are words, every CJK character can break."""
    out = []
    for para in text.split("\n"):
        line = ""
        for tok in re.findall(r"[\x21-\x7e•·]+\s*|[^\x21-\x7e\s]\s*|\s+", para):
            if line and font.getlength(line + tok.rstrip()) > max_w:
                out.append(line.rstrip())
                line = tok.lstrip()
            else:
                line += tok
        out.append(line.rstrip())
    return out


class Ctx:
    """One image: language, palette, fonts and the list of strings drawn (the ground truth)."""

    def __init__(self, rng, fonts, lang, dark, px, scale):
        self.rng, self.fonts, self.lang, self.dark = rng, fonts, lang, dark
        self.s, self.px = scale, px * scale  # px: body text size in device pixels
        cjk = [f for f in CJK if f in fonts.paths]
        lat = [f for f in LATIN if f in fonts.paths]
        self.family = (rng.choice(cjk[:1] * 3 + cjk) if lang == "zh" else rng.choice(lat))
        self.mono = rng.choice([f for f in MONO if f in fonts.paths] or [self.family])
        a = rng.choice(ACCENTS)
        if dark:
            b = rng.randint(14, 40)
            self.bg, self.fg, self.muted = (b, b, b + rng.randint(0, 8)), (rng.randint(215, 245),) * 3, (150, 152, 158)
            self.panel, self.line = (b + 18, b + 18, b + 22), (b + 40, b + 40, b + 44)
            self.accent = tuple(min(255, c + 70) for c in a)
        else:
            b = rng.randint(238, 255)
            self.bg, self.fg, self.muted = (b, b, b), (rng.randint(15, 60),) * 3, (105, 108, 115)
            self.panel, self.line = (255, 255, 255), (215, 218, 222)
            self.accent = a
        self.truth, self.mobile = [], False

    def font(self, size, bold=False, mono=False):
        return self.fonts.get(self.mono if mono else self.family, size, bold)

    def text(self, d, x, y, s, size, color, bold=False, max_w=None, align="left", mono=False, lh=1.35, record=True):
        """Draw (wrapped) text at device-pixel size `size`; returns the y below it."""
        if not s:
            return y
        f = self.font(size, bold, mono and not has_cjk(s))
        lines = wrap(s, f, max_w) if max_w else [s]
        for ln in lines:
            w = f.getlength(ln)
            xx = x + (max_w - w) / 2 if align == "center" else x + max_w - w if align == "right" else x
            d.text((xx, y), ln, font=f, fill=color)
            y += int(size * lh)
        if record:
            self.truth.extend(lines)
        return y

    def button(self, d, x, y, label, size, filled, w=None):
        f = self.font(size)
        w = w or int(f.getlength(label) + size * 2)
        h = int(size * 2.2)
        d.rounded_rectangle([x, y, x + w, y + h], radius=int(size * 0.4),
                            fill=self.accent if filled else self.panel, outline=self.accent if not filled else None)
        self.text(d, x, y + (h - size * 1.2) / 2, label, size, (255, 255, 255) if filled else self.accent, max_w=w, align="center")
        return w, h


def fill_vars(rng, lang):
    return {"app": rng.choice(APPS[lang]), "site": rng.choice(SITES), "dev": rng.choice(DEVS[lang]),
            "amt": ("¥%d.%02d" if lang == "zh" else "$%d.%02d") % (rng.randint(9, 899), rng.randint(0, 99)),
            "card": "%04d" % rng.randint(0, 9999), "order": str(rng.randint(10 ** 9, 10 ** 10)),
            "ref": "%X" % rng.getrandbits(40), "ray": "%016x" % rng.getrandbits(64), "n3": "%03d" % rng.randint(100, 999),
            "time": "%02d:%02d" % (rng.randint(0, 23), rng.randint(0, 59))}


def gradient(size, c1, c2, vertical=True):
    w, h = size
    img = Image.new("RGB", size)
    d = ImageDraw.Draw(img)
    n = h if vertical else w
    for i in range(n):
        t = i / max(1, n - 1)
        c = tuple(int(a + (b - a) * t) for a, b in zip(c1, c2))
        d.line([(0, i), (w, i)] if vertical else [(i, 0), (i, h)], fill=c)
    return img


def status_bar(c, d, W, px):
    rng = c.rng
    c.text(d, px, px * 0.5, "%d:%02d" % (rng.randint(7, 23), rng.randint(0, 59)), px * 0.95, c.fg, bold=True)
    c.text(d, W - px * 4.2, px * 0.5, "%d%%" % rng.randint(12, 99), px * 0.9, c.fg)
    d.rectangle([W - px * 1.8, px * 0.65, W - px * 0.6, px * 1.3], outline=c.fg)


def icon(c, d, cx, cy, r, kind):
    col = {"error": (220, 53, 69), "warn": (240, 173, 0), "info": c.accent, "ok": (40, 167, 69)}[kind]
    if kind == "warn":
        d.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=col)
    else:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    glyph = {"error": "×", "warn": "!", "info": "i", "ok": "✓"}[kind]  # ✓ is in DejaVu Sans Bold
    f = c.fonts.get("DejaVu Sans" if "DejaVu Sans" in c.fonts.paths else c.family, r * 1.3, True)
    d.text((cx, cy + (r * 0.15 if kind == "warn" else 0)), glyph, font=f, fill=(255, 255, 255), anchor="mm")


def app_content(c, d, W, H, top, px):
    """Background noise of a phone app: a list of rows."""
    y, rng, items = top, c.rng, []
    while y < H - px * 3:
        items = items or rng.sample(LIST_ITEMS[c.lang], len(LIST_ITEMS[c.lang]))
        d.rectangle([px, y + px * 0.5, px * 3.5, y + px * 3], fill=c.line)
        c.text(d, px * 4.5, y + px * 0.6, items.pop().format(order=rng.randint(10 ** 5, 10 ** 6)), px, c.fg)
        c.text(d, px * 4.5, y + px * 2.0, "%d-%02d-%02d" % (2024, rng.randint(1, 12), rng.randint(1, 28)), px * 0.8, c.muted)
        y += px * 4
        d.line([(px, y), (W - px, y)], fill=c.line)


# ---------------------------------------------------------------------------------------------
# Styles. Each takes (ctx, message dict) and returns an RGB image.
def desktop_dialog(c, m, buttons):
    rng, px = c.rng, c.px
    W, H = int(rng.choice([800, 960, 1024]) * c.s), int(rng.choice([560, 640, 720]) * c.s)
    img = gradient((W, H), tuple(rng.randint(20, 120) for _ in range(3)), tuple(rng.randint(60, 200) for _ in range(3)))
    d = ImageDraw.Draw(img)
    if rng.random() < 0.6:  # an application window behind the dialog
        d.rectangle([W * 0.05, H * 0.04, W * 0.9, H * 0.85], fill=c.panel, outline=c.line)
        x = W * 0.05 + px
        for item in MENU[c.lang]:
            c.text(d, x, H * 0.04 + px * 0.4, item, px * 0.9, c.fg)
            x += c.font(px * 0.9).getlength(item) + px * 1.5
    d.rectangle([0, H - px * 2.6, W, H], fill=(30, 32, 38))  # taskbar with a clock
    c.text(d, W - px * 5, H - px * 2.0, "%02d:%02d" % (rng.randint(0, 23), rng.randint(0, 59)), px * 0.9, (230, 230, 230))
    dw = min(W - px * 2, max(px * 26, W * rng.uniform(0.45, 0.6)))
    x0 = (W - dw) / 2 + rng.uniform(-0.1, 0.1) * W
    y0 = H * rng.uniform(0.15, 0.3)
    tb = px * 2.2
    body_x, body_w = x0 + px * 5, dw - px * 6.5
    n_head, n_body = len(wrap(m["head"], c.font(px * 1.15, True), body_w)), len(wrap(m["body"], c.font(px), body_w)) if m["body"] else 0
    n_det = len(wrap(m["detail"], c.font(px * 0.85), body_w)) if m["detail"] else 0
    text_h = n_head * px * 1.55 + n_body * px * 1.35 + n_det * px * 1.15 + px * 0.6
    dh = tb + px * 1.3 + max(text_h, px * 3.5) + px * 5
    d.rectangle([x0 + 6, y0 + 6, x0 + dw + 6, y0 + dh + 6], fill=(0, 0, 0))  # shadow
    d.rectangle([x0, y0, x0 + dw, y0 + dh], fill=c.panel, outline=c.line)
    bar = c.accent if rng.random() < 0.4 else c.bg
    d.rectangle([x0, y0, x0 + dw, y0 + tb], fill=bar)
    tcol = (255, 255, 255) if bar == c.accent else c.fg
    c.text(d, x0 + px * 0.7, y0 + px * 0.45, m["title"], px * 0.95, tcol)
    c.text(d, x0 + dw - px * 1.6, y0 + px * 0.3, "×", px * 1.2, tcol, record=False)
    icon(c, d, x0 + px * 2.6, y0 + tb + px * 2.4, px * 1.3, m["icon"])
    y = c.text(d, body_x, y0 + tb + px * 1.3, m["head"], px * 1.15, c.fg, bold=True, max_w=body_w)
    y = c.text(d, body_x, y + px * 0.3, m["body"], px, c.fg, max_w=body_w)
    c.text(d, body_x, y + px * 0.3, m["detail"], px * 0.85, c.muted, max_w=body_w)
    d.rectangle([x0 + 1, y0 + dh - px * 3.6, x0 + dw - 1, y0 + dh - 1], fill=c.bg)
    bx = x0 + dw - px
    for i, b in enumerate(reversed(buttons)):
        w = max(px * 6, c.font(px * 0.9).getlength(b) + px * 2)
        c.button(d, bx - w, y0 + dh - px * 3.0, b, px * 0.9, i == len(buttons) - 1, w=w)
        bx -= w + px * 0.7
    return img


def style_dialog(c, m):
    return desktop_dialog(c, m, m["buttons"])


def browser(c, W, H, url, tab):
    px = c.px * 0.9
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    chrome = tuple(max(0, v - 14) for v in c.panel) if not c.dark else (c.bg[0] + 10,) * 3
    d.rectangle([0, 0, W, px * 5.2], fill=chrome)
    d.rounded_rectangle([px * 5, px * 0.5, px * 22, px * 2.4], radius=px * 0.4, fill=c.panel)
    c.text(d, px * 5.8, px * 0.85, tab[:28], px * 0.85, c.fg)
    d.rounded_rectangle([px * 6, px * 2.8, W - px * 4, px * 4.6], radius=px * 0.9, fill=c.panel if not c.dark else c.line)
    nav = c.fonts.get("DejaVu Sans" if "DejaVu Sans" in c.fonts.paths else c.family, px * 1.05)
    for i, ch in enumerate("←→↻"):  # drawn with DejaVu (it has the arrows); not part of the text
        d.text((px * (0.8 + i * 1.7), px * 3.05), ch, font=nav, fill=c.muted)
    c.text(d, px * 7.2, px * 3.15, url, px * 0.95, c.fg)
    return img, d, px * 5.2


def site_header(c, d, W, top, name):
    px = c.px
    d.rectangle([0, top, W, top + px * 3.2], fill=c.accent)
    c.text(d, px * 1.5, top + px * 0.8, name, px * 1.3, (255, 255, 255), bold=True)
    x = px * 12
    for item in NAV[c.lang]:
        c.text(d, x, top + px * 1.0, item, px * 0.95, (255, 255, 255))
        x += c.font(px * 0.95).getlength(item) + px * 2
    return top + px * 3.2


def style_web(c, m):
    rng, px = c.rng, c.px
    W, H = int(rng.choice([1024, 1280, 1366, 1440]) * c.s), int(rng.choice([700, 768, 800, 900]) * c.s)
    path = rng.choice(["/checkout", "/account/login", "/orders", "/item/%d" % rng.randint(1000, 99999), "/"])
    if m.get("ok"):  # drawn above either way, so the random sequence stays the same
        path = OK_PATHS[m["topic"]]
    big = re.match(r"^(\d{3})\s+(.*)$", m["head"])
    error_page = big or m["fault"] in ("network_error", "certificate_error", "not_found", "server_error", "permission_denied", "app_crash")
    page_title = m["page"] if m.get("ok") else PAGE_TITLES.get(m["fault"], PAGE_TITLES["login_failed"])[c.lang]
    tab = m["head"] if error_page else m["vars"]["app"] + " - " + page_title
    img, d, top = browser(c, W, H, "https://" + m["vars"]["site"] + path, tab)
    if error_page:
        x0 = W * rng.uniform(0.12, 0.3)
        mw = min(W - x0 - px * 2, px * 40)
        y = top + H * rng.uniform(0.08, 0.18)
        center = big is not None and rng.random() < 0.5
        if center:
            x0, mw = (W - px * 40) / 2, px * 40
        if big:
            y = c.text(d, x0, y, big.group(1), px * rng.uniform(4, 7), c.accent if rng.random() < 0.5 else c.fg,
                       bold=True, max_w=mw, align="center" if center else "left", lh=1.2)
            head = big.group(2)
        else:
            icon(c, d, x0 + px * 1.5, y + px * 1.5, px * 1.5, m["icon"])
            y += px * 4.5
            head = m["head"]
        al = "center" if center else "left"
        y = c.text(d, x0, y + px * 0.5, head, px * 1.8, c.fg, bold=rng.random() < 0.6, max_w=mw, align=al)
        y = c.text(d, x0, y + px * 0.8, m["body"], px, c.fg, max_w=mw, align=al)
        y = c.text(d, x0, y + px * 0.8, m["detail"], px * 0.8, c.muted, max_w=mw, align=al, mono=True)
        bx, btns = x0, m["buttons"][:2] if m["own_buttons"] else m["buttons"][:rng.randint(0, 1)]
        for i, b in enumerate(btns):
            w, _ = c.button(d, bx, y + px * 1.5, b, px * 0.95, i == len(btns) - 1)
            bx += w + px
    else:  # an ordinary site with an alert banner in the main panel
        top = site_header(c, d, W, top, m["vars"]["app"])
        pw = min(W * 0.6, px * 36)
        x0, y = (W - pw) / 2, top + px * 2.8
        y = c.text(d, x0, y, page_title, px * 1.6, c.fg, bold=True)
        banner_h = px * 1.5 + len(wrap(m["body"], c.font(px), pw - px * 3)) * px * 1.35 + px * 2.6 + (px * 1.3 if m["detail"] else 0)
        if m.get("ok"):  # a green success banner
            fill, edge, hcol = ((230, 246, 234) if not c.dark else (28, 62, 38)), (40, 167, 69), ((25, 125, 50) if not c.dark else (130, 220, 150))
        else:
            fill, edge, hcol = ((253, 236, 234) if not c.dark else (70, 30, 32)), (220, 53, 69), ((200, 35, 51) if not c.dark else (255, 160, 160))
        d.rectangle([x0, y + px, x0 + pw, y + px + banner_h], fill=fill, outline=edge)
        yy = c.text(d, x0 + px * 1.5, y + px * 1.8, m["head"], px * 1.05, hcol, bold=True)
        yy = c.text(d, x0 + px * 1.5, yy + px * 0.3, m["body"], px, c.fg, max_w=pw - px * 3)
        c.text(d, x0 + px * 1.5, yy + px * 0.2, m["detail"], px * 0.8, c.muted)
        y += banner_h + px * 2.5
        if m.get("ok"):  # a summary of the completed action instead of a form
            for row in m["rows"]:
                c.text(d, x0, y, row, px * 0.95, c.fg)
                y += px * 2.1
                d.line([(x0, y - px * 0.5), (x0 + pw, y - px * 0.5)], fill=c.line)
            y += px * 1.5
        else:
            for label in FIELDS.get(m["fault"], FIELDS["login_failed"])[c.lang]:
                c.text(d, x0, y, label, px * 0.9, c.muted)
                d.rectangle([x0, y + px * 1.7, x0 + pw, y + px * 3.9], outline=c.line, fill=c.panel)
                y += px * 5
        c.button(d, x0, y, m["buttons"][0] if m["fault"] == "update_failed" or m.get("ok") else {"en": "Continue", "zh": "继续"}[c.lang],
                 px, True, w=pw)
    return img


def phone_canvas(c):
    lw, lh = c.rng.choice([(390, 844), (360, 780), (412, 915), (375, 667)])
    return int(lw * c.s), int(lh * c.s)


def style_mobile(c, m):
    rng, px = c.rng, c.px
    W, H = phone_canvas(c)
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    status_bar(c, d, W, px)
    c.text(d, px, px * 3.2, "‹", px * 2, c.accent, record=False)
    c.text(d, px * 3, px * 3.5, m["vars"]["app"] if m["fault"] != "certificate_error" else m["vars"]["site"], px * 1.15, c.fg, bold=True)
    d.line([(0, px * 6), (W, px * 6)], fill=c.line)
    cx, cy, r = W / 2, H * rng.uniform(0.24, 0.32), W * 0.13
    d.ellipse([cx - r * 1.4, cy - r * 1.4, cx + r * 1.4, cy + r * 1.4], fill=c.line)
    icon(c, d, cx, cy, r * 0.7, m["icon"])
    mw = W - px * 4
    y = c.text(d, px * 2, cy + r * 1.9, m["head"], px * 1.3, c.fg, bold=True, max_w=mw, align="center")
    y = c.text(d, px * 2, y + px * 0.6, m["body"], px, c.muted if rng.random() < 0.5 else c.fg, max_w=mw, align="center")
    y = c.text(d, px * 2, y + px * 0.5, m["detail"], px * 0.8, c.muted, max_w=mw, align="center")
    by = max(y + px * 2, H - px * 9)
    for i, b in enumerate(m["buttons"][:2]):
        c.button(d, px * 2, by + i * px * 3, b, px, i == 0, w=mw)
    return img


def style_toast(c, m):
    rng, px = c.rng, c.px
    W, H = phone_canvas(c)
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    status_bar(c, d, W, px)
    c.text(d, px, px * 3.3, m["vars"]["app"], px * 1.3, c.fg, bold=True)
    app_content(c, d, W, H, px * 6, px)
    msg = m["head"] + ("" if not m["body"] or len(m["body"]) > 70 else ("，" if c.lang == "zh" else ". ") + m["body"])
    if rng.random() < 0.5:  # Material snackbar with an action
        sb = (50, 50, 54) if not c.dark else (225, 225, 228)
        tc = (240, 240, 240) if not c.dark else (30, 30, 30)
        action = m["buttons"][0].upper() if c.lang == "en" else m["buttons"][0]
        aw = c.font(px, True).getlength(action) + px * 2
        lines = wrap(msg, c.font(px), W - px * 4 - aw)
        h = len(lines) * px * 1.35 + px * 2
        y0 = H - px * 3 - h
        d.rounded_rectangle([px, y0, W - px, y0 + h], radius=px * 0.4, fill=sb)
        c.text(d, px * 2, y0 + px, msg, px, tc, max_w=W - px * 4 - aw)
        c.text(d, W - px - aw, y0 + h / 2 - px * 0.6, action, px, c.accent if not c.dark else tuple(v // 2 for v in c.accent), bold=True)
    else:  # centred toast
        tw = W * 0.7
        lines = wrap(msg, c.font(px), tw - px * 2)
        h = len(lines) * px * 1.35 + px * 1.6
        y0 = H * rng.uniform(0.45, 0.8)
        d.rounded_rectangle([(W - tw) / 2, y0, (W + tw) / 2, y0 + h], radius=px * 0.8, fill=(40, 40, 40) if not c.dark else (90, 90, 94))
        c.text(d, (W - tw) / 2 + px, y0 + px * 0.8, msg, px, (245, 245, 245), max_w=tw - px * 2, align="center")
    return img


def style_crash(c, m):
    if m["head"].startswith(("Aw", "喔唷")):  # a crashed browser tab
        return style_web(c, m)
    if not c.mobile:
        return desktop_dialog(c, m, m["buttons"])
    px = c.px  # Android-style alert over a dimmed app screen
    W, H = phone_canvas(c)
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    status_bar(c, d, W, px)
    app_content(c, d, W, H, px * 6, px)
    img = Image.blend(img, Image.new("RGB", (W, H), (0, 0, 0)), 0.55)
    d = ImageDraw.Draw(img)
    cw = W - px * 4
    n = len(wrap(m["head"], c.font(px * 1.25), cw - px * 3)) + len(wrap(m["body"], c.font(px), cw - px * 3))
    ch = px * 4 + n * px * 1.5 + len(m["buttons"]) * px * 2.6
    y0 = (H - ch) / 2
    d.rounded_rectangle([px * 2, y0, W - px * 2, y0 + ch], radius=px * 1.2, fill=c.panel)
    y = c.text(d, px * 3.5, y0 + px * 1.5, m["head"], px * 1.25, c.fg, bold=True, max_w=cw - px * 3)
    y = c.text(d, px * 3.5, y + px * 0.4, m["body"], px, c.muted, max_w=cw - px * 3)
    for b in m["buttons"]:  # stacked text buttons with icons, as in Android 10+
        d.ellipse([px * 3.5, y + px * 0.9, px * 4.7, y + px * 2.1], outline=c.fg)
        y = c.text(d, px * 5.5, y + px * 0.8, b, px, c.fg) + px * 0.9
    return img


# ---------------------------------------------------------------------------------------------
# Negatives
def photo_like(rng, W, H):
    img = gradient((W, H), tuple(rng.randint(0, 255) for _ in range(3)), tuple(rng.randint(0, 255) for _ in range(3)), rng.random() < 0.5)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 18)):
        x, y, r = rng.randint(0, W), rng.randint(0, H), rng.randint(W // 40, W // 4)
        col = tuple(rng.randint(0, 255) for _ in range(3))
        if rng.random() < 0.5:
            d.ellipse([x - r, y - r, x + r, y + r * rng.uniform(0.5, 1.5)], fill=col)
        else:
            d.polygon([(x + rng.randint(-r, r), y + rng.randint(-r, r)) for _ in range(rng.randint(3, 6))], fill=col)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(2, 9)))


def neg_photo(c):
    return noise(photo_like(c.rng, *c.rng.choice([(1024, 768), (800, 1066), (1200, 900)])), c.rng, 0.12)


def neg_blank(c):
    W, H = phone_canvas(c) if c.rng.random() < 0.5 else (int(1280 * c.s), int(800 * c.s))
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    if c.rng.random() < 0.6:  # a loading spinner or an empty header bar
        r = W * 0.04
        d.arc([W / 2 - r, H / 2 - r, W / 2 + r, H / 2 + r], 0, c.rng.randint(90, 300), fill=c.accent, width=max(2, int(r / 5)))
        d.rectangle([0, 0, W, H * 0.06], fill=c.panel)
    return img


def neg_chat(c, chats=None):
    rng, px = c.rng, c.px
    W, H = phone_canvas(c)
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    status_bar(c, d, W, px)
    c.text(d, px * 3, px * 3.4, {"en": "Customer Support", "zh": "在线客服"}[c.lang], px * 1.15, c.fg, bold=True)
    d.line([(0, px * 6), (W, px * 6)], fill=c.line)
    y = px * 8
    for i, msg in enumerate(rng.choice((chats or CHATS)[c.lang])):
        msg = msg.format(order=rng.randint(10 ** 5, 10 ** 6))
        f = c.font(px)
        lines = wrap(msg, f, W * 0.62)
        bw = max(f.getlength(ln) for ln in lines) + px * 2
        bh = len(lines) * px * 1.35 + px * 1.2
        me = i % 2 == 0
        x = W - px - bw if me else px * 3.5
        if not me:
            d.ellipse([px * 0.6, y, px * 2.8, y + px * 2.2], fill=c.accent)
        d.rounded_rectangle([x, y, x + bw, y + bh], radius=px * 0.7, fill=c.accent if me else c.panel, outline=None if me else c.line)
        c.text(d, x + px, y + px * 0.6, msg, px, (255, 255, 255) if me else c.fg, max_w=bw - px * 1.5)
        y += bh + px * 1.2
        if rng.random() < 0.3:
            c.text(d, 0, y, "%02d:%02d" % (rng.randint(8, 22), rng.randint(0, 59)), px * 0.75, c.muted, max_w=W, align="center")
            y += px * 1.5
    d.rectangle([0, H - px * 4, W, H], fill=c.panel)
    c.text(d, px * 1.5, H - px * 2.7, {"en": "Type a message…", "zh": "请输入消息…"}[c.lang], px, c.muted)
    return img


def neg_shop(c):
    rng, px = c.rng, c.px
    W, H = int(1280 * c.s), int(800 * c.s)
    img, d, top = browser(c, W, H, "https://" + rng.choice(SITES) + "/item/%d" % rng.randint(1000, 99999), SHOP[c.lang][0])
    s = SHOP[c.lang]
    top = site_header(c, d, W, top, rng.choice(APPS[c.lang]))
    img.paste(photo_like(rng, int(W * 0.37), int(H - top - px * 6)), (int(W * 0.08), int(top + px * 3)))
    x, mw = W * 0.5, W * 0.42
    y = c.text(d, x, top + px * 3, s[0], px * 1.8, c.fg, bold=True, max_w=mw)
    y = c.text(d, x, y + px * 0.5, s[2], px * 0.9, c.muted)
    y = c.text(d, x, y + px * 0.8, s[1], px * 2, (200, 35, 51), bold=True)
    y = c.text(d, x, y + px, s[3], px, c.fg)
    y = c.text(d, x, y + px * 0.5, s[4], px, c.fg)
    y = c.text(d, x, y + px, s[7], px, c.fg, max_w=mw)
    w, _ = c.button(d, x, y + px * 2, s[5], px, True)
    c.button(d, x + w + px, y + px * 2, s[6], px, False)
    return img


def neg_settings(c):
    rng, px = c.rng, c.px
    W, H = phone_canvas(c)
    img = Image.new("RGB", (W, H), c.bg)
    d = ImageDraw.Draw(img)
    status_bar(c, d, W, px)
    s = SETTINGS[c.lang]
    c.text(d, px * 1.2, px * 3.2, s[0], px * 2, c.fg, bold=True)
    y = px * 7
    for item in s[1:]:
        d.rounded_rectangle([px * 1.2, y + px * 0.5, px * 3, y + px * 2.3], radius=px * 0.4, fill=rng.choice(ACCENTS))
        c.text(d, px * 4, y + px * 0.7, item, px * 1.05, c.fg)
        if rng.random() < 0.35:
            d.rounded_rectangle([W - px * 4.5, y + px * 0.5, W - px * 1.2, y + px * 2.3], radius=px, fill=(52, 199, 89))
            d.ellipse([W - px * 3, y + px * 0.6, W - px * 1.3, y + px * 2.2], fill=(255, 255, 255))
        else:
            c.text(d, W - px * 2.2, y + px * 0.5, "›", px * 1.4, c.muted, record=False)
        y += px * 3.2
        d.line([(px * 4, y), (W, y)], fill=c.line)
    return img


def fit(c, s, size, w, bold=False):
    """Cut s with an ellipsis so that it fits in w device pixels on one line."""
    f = c.font(size, bold)
    if f.getlength(s) <= w:
        return s
    while s and f.getlength(s + "…") > w:
        s = s[:-1]
    return s.rstrip() + "…"


def neg_chat2(c):
    return neg_chat(c, CHATS2)


def neg_receipt(c):
    """A paper shop receipt on a table (usually photographed afterwards); paper is never dark."""
    rng, px, R = c.rng, c.px * 0.9, RECEIPT[c.lang]
    ink = (rng.randint(20, 60),) * 3
    pw = int(px * rng.uniform(21, 25))
    paper = Image.new("RGB", (pw, int(px * 90)), (rng.randint(240, 252), rng.randint(238, 250), rng.randint(228, 242)))
    d = ImageDraw.Draw(paper)
    m, w = px * 1.2, pw - px * 2.4
    mono = c.lang == "en" and rng.random() < 0.7
    store, addr = rng.choice(R["stores"])
    y = c.text(d, m, px * 1.5, store, px * 1.3, ink, bold=True, max_w=w, align="center", mono=mono)
    y = c.text(d, m, y + px * 0.2, addr, px * 0.85, ink, max_w=w, align="center", mono=mono)
    y = c.text(d, m, y, "Tel. %03d-%04d-%04d" % (rng.randint(10, 999), rng.randint(0, 9999), rng.randint(0, 9999)) if c.lang == "zh"
               else "Tel. (%03d) %03d-%04d" % (rng.randint(200, 999), rng.randint(200, 999), rng.randint(0, 9999)),
               px * 0.85, ink, max_w=w, align="center", mono=mono)
    sep = lambda yy: d.line([(m, yy + px * 0.5), (m + w, yy + px * 0.5)], fill=ink, width=max(1, int(px / 12))) or yy + px * 1.2
    y = sep(y + px * 0.3)
    lab = R["labels"]
    date = "%d-%02d-%02d %02d:%02d" % (rng.choice([2024, 2025]), rng.randint(1, 12), rng.randint(1, 28), rng.randint(8, 21), rng.randint(0, 59))
    y = c.text(d, m, y, date, px * 0.9, ink, mono=mono)
    y = c.text(d, m, y, lab[4].format(n=rng.randint(100000, 999999)), px * 0.9, ink, mono=mono)
    y = c.text(d, m, y, lab[5].format(who=rng.choice(R["cashiers"])), px * 0.9, ink, mono=mono)
    y = sep(y + px * 0.2)
    sub = 0.0
    for name, price in rng.sample(R["items"], rng.randint(3, 7)):
        q = rng.choice([1, 1, 1, 2, 3])
        sub += q * price
        c.text(d, m, y, (name if q == 1 else "%s x%d" % (name, q)), px * 0.95, ink, mono=mono)
        y = c.text(d, m, y, R["cur"] % (q * price), px * 0.95, ink, max_w=w, align="right", mono=mono)
    y = sep(y + px * 0.2)
    tax = round(sub * (0.08 if c.lang == "en" else 0.06), 2)
    for label, val, big in ((lab[0], sub, False), (lab[1], tax, False), (lab[2], sub + tax, True)):
        size = px * (1.15 if big else 0.95)
        c.text(d, m, y, label, size, ink, bold=big, mono=mono)
        y = c.text(d, m, y, R["cur"] % val, size, ink, bold=big, max_w=w, align="right", mono=mono)
    pay = lab[3].format(card="%04d" % rng.randint(0, 9999), pay=rng.choice(R.get("pay", [""])).format(card="%04d" % rng.randint(0, 9999)))
    y = c.text(d, m, y + px * 0.5, pay, px * 0.9, ink, mono=mono)
    y = sep(y + px * 0.2)
    y = c.text(d, m, y + px * 0.3, lab[6], px, ink, bold=True, max_w=w, align="center", mono=mono)
    y = c.text(d, m, y, lab[7], px * 0.8, ink, max_w=w, align="center", mono=mono)
    x = m + w * 0.1  # a barcode
    while x < m + w * 0.9:
        bw = px * rng.choice([0.1, 0.1, 0.2, 0.3])
        d.rectangle([x, y + px, x + bw, y + px * 3.5], fill=ink)
        x += bw + px * rng.choice([0.1, 0.15, 0.25])
    paper = paper.crop((0, 0, pw, int(y + px * 5)))
    bg = tuple(rng.randint(90, 190) for _ in range(3)) if not c.dark else tuple(rng.randint(25, 70) for _ in range(3))
    W, H = int(pw * rng.uniform(1.3, 1.6)), int(paper.size[1] * rng.uniform(1.08, 1.18))
    img = Image.new("RGB", (W, H), bg)
    x0, y0 = (W - pw) // 2 + rng.randint(-int(px), int(px)), (H - paper.size[1]) // 2
    ImageDraw.Draw(img).rectangle([x0 + 4, y0 + 4, x0 + pw + 4, y0 + paper.size[1] + 4], fill=tuple(v // 2 for v in bg))
    img.paste(paper, (x0, y0))
    return img


def neg_console(c):
    """A support agent's console: sidebar, KPI tiles and a table of tickets (no error messages)."""
    rng, px, K = c.rng, c.px, CONSOLE[c.lang]
    W, H = int(rng.choice([1280, 1366, 1440]) * c.s), int(rng.choice([768, 800, 900]) * c.s)
    app = rng.choice(K["app"])
    img, d, top = browser(c, W, H, "https://support.%s/agent/tickets" % rng.choice(SITES).split(".", 1)[1], app + " - " + K["title"])
    sb = px * 13  # sidebar
    side = (32, 36, 48) if not c.dark else tuple(max(0, v - 8) for v in c.bg)
    d.rectangle([0, top, sb, H], fill=side)
    c.text(d, px * 1.2, top + px * 1.2, app, px * 1.15, (255, 255, 255), bold=True)
    y = top + px * 4
    cur = rng.randint(0, 2)
    for i, item in enumerate(K["nav"]):
        if i == cur:
            d.rectangle([0, y - px * 0.5, sb, y + px * 1.8], fill=c.accent if not c.dark else tuple(v * 11 // 20 for v in c.accent))
        c.text(d, px * 1.5, y, item, px * 0.95, (255, 255, 255) if i == cur else (190, 195, 205))
        y += px * 2.6
    x0, mw = sb + px * 2, W - sb - px * 4
    d.rectangle([sb, top, W, top + px * 3.4], fill=c.panel)
    d.line([(sb, top + px * 3.4), (W, top + px * 3.4)], fill=c.line)
    d.rounded_rectangle([x0, top + px * 0.7, x0 + px * 18, top + px * 2.7], radius=px * 0.4, outline=c.line, fill=c.bg)
    c.text(d, x0 + px * 0.8, top + px * 1.05, K["search"], px * 0.9, c.muted)
    d.ellipse([W - px * 3.2, top + px * 0.6, W - px * 1.2, top + px * 2.6], fill=c.accent)
    y = c.text(d, x0, top + px * 5, K["title"], px * 1.6, c.fg, bold=True) + px
    tw = (mw - px * 3) / 4
    vals = {"a": rng.randint(8, 95), "b": rng.randint(20, 240), "m": rng.randint(1, 9), "s": rng.randint(0, 59), "p": rng.randint(82, 99)}
    for i, (label, val) in enumerate(K["kpis"]):
        tx = x0 + i * (tw + px)
        d.rounded_rectangle([tx, y, tx + tw, y + px * 5], radius=px * 0.5, fill=c.panel, outline=c.line)
        c.text(d, tx + px, y + px * 0.8, fit(c, label, px * 0.85, tw - px * 2), px * 0.85, c.muted)
        c.text(d, tx + px, y + px * 2.3, val.format(**vals), px * 1.7, c.fg, bold=True)
    y += px * 6.5
    cw = [0.1, 0.42, 0.2, 0.12, 0.16]
    cx = [x0 + sum(cw[:i]) * mw for i in range(len(cw))]
    d.rectangle([x0, y, x0 + mw, y + px * 2.2], fill=c.panel)
    for x, col in zip(cx, K["cols"]):
        c.text(d, x + px * 0.6, y + px * 0.55, col, px * 0.85, c.muted, bold=True)
    y += px * 2.2
    subjects, names = rng.sample(K["subjects"], len(K["subjects"])), rng.sample(K["names"], len(K["names"]))
    tid, k = rng.randint(10000, 90000), 0
    stcol = {0: (220, 120, 0), 1: (0, 120, 215), 2: (40, 150, 70), 3: (220, 120, 0)}
    while y + px * 2.6 < H - px and k < len(subjects):
        st = rng.randrange(4)
        tid -= rng.randint(1, 9)
        cells = ["#%d" % tid, subjects[k].format(order=rng.randint(10 ** 7, 10 ** 8)), names[k % len(names)],
                 K["status"][st], rng.choice(K["ago"]).format(k=rng.randint(1, 59), h=rng.randint(1, 9))]
        for i, (x, cell) in enumerate(zip(cx, cells)):
            cell = fit(c, cell, px * 0.9, cw[i] * mw - px * 1.2)
            c.text(d, x + px * 0.6, y + px * 0.7, cell, px * 0.9, stcol[st] if i == 3 else c.fg)
        y += px * 2.6
        d.line([(x0, y), (x0 + mw, y)], fill=c.line)
        k += 1
    return img


NEUTRALS = {"receipt": neg_receipt, "console": neg_console, "chat": neg_chat2}


# ---------------------------------------------------------------------------------------------
# Degradations
def noise(img, rng, alpha):
    n = Image.frombytes("L", img.size, rng.randbytes(img.size[0] * img.size[1])).convert("RGB")
    return Image.blend(img, n, alpha)


def phone_photo(img, rng):
    """A photo of the screen: bezel, skew, slight rotation, blur, uneven light, sensor noise."""
    w, h = img.size
    pad = int(max(w, h) * 0.06)
    desk = tuple(rng.randint(60, 200) for _ in range(3))
    canvas = Image.new("RGB", (w + 2 * pad, h + 2 * pad), desk)
    b = int(pad * 0.35)
    ImageDraw.Draw(canvas).rectangle([pad - b, pad - b, pad + w + b, pad + h + b], fill=(15, 15, 18))
    canvas.paste(img, (pad, pad))
    W, H = canvas.size
    j = lambda v: rng.uniform(-0.04, 0.04) * v
    quad = (j(W), j(H), j(W), H + j(H), W + j(W), H + j(H), W + j(W), j(H))
    canvas = canvas.transform((W, H), Image.Transform.QUAD, quad, resample=Image.Resampling.BICUBIC, fillcolor=desk)
    canvas = canvas.rotate(rng.uniform(-5, 5), resample=Image.Resampling.BICUBIC, fillcolor=desk)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.6) * max(1.0, W / 1400)))
    light = gradient((W, H), (255, 255, 255), tuple(rng.randint(150, 220) for _ in range(3)), rng.random() < 0.5)
    canvas = Image.composite(canvas, Image.new("RGB", (W, H), (0, 0, 0)), light.convert("L"))
    canvas = noise(canvas, rng, rng.uniform(0.04, 0.1))
    if max(W, H) > 1600:  # chat apps compress photos to at most 1600 px on the long side
        f = 1600 / max(W, H)
        canvas = canvas.resize((max(1, round(W * f)), max(1, round(H * f))), Image.Resampling.LANCZOS)
    return canvas


def parse(fault, tpl, rng, lang):
    v = fill_vars(rng, lang)
    parts = (re.sub(r"^[DM]:", "", tpl).format(**v).split("|") + ["", "", ""])[:4]
    head, body, detail, btns = (p.strip() for p in parts)
    icon_kind = "warn" if fault in ("storage_full", "certificate_error", "account_locked", "device_offline") else "error"
    title = v["app"] if fault not in ("update_failed",) else ("Windows Update" if "0x8" in detail else v["app"])
    buttons = [b.strip() for b in btns.split(",") if b.strip()] or rng.choice(BUTTONS[lang])
    return {"fault": fault, "head": head, "body": body, "detail": detail, "buttons": buttons, "own_buttons": bool(btns),
            "vars": v, "icon": icon_kind, "title": title}


def parse_ok(topic, tpl, rng, lang):
    """A success message in the same shape as parse(), with fault None and ok True."""
    v = fill_vars(rng, lang)
    parts = (re.sub(r"^[DM]:", "", tpl).format(**v).split("|") + ["", "", ""])[:4]
    head, body, detail, btns = (p.strip() for p in parts)
    buttons = [b.strip() for b in btns.split(",") if b.strip()] or rng.choice(OK_BUTTONS[lang])
    li = 0 if lang == "en" else 1
    return {"fault": None, "ok": True, "topic": topic, "head": head, "body": body, "detail": detail, "buttons": buttons,
            "own_buttons": bool(btns), "vars": v, "icon": "ok", "title": v["app"], "page": OK_PAGES[topic][li],
            "rows": [r.format(**v) for r in OK_ROWS[topic][li]]}


STYLES = {"dialog": style_dialog, "web": style_web, "mobile": style_mobile, "toast": style_toast, "crash": style_crash}
NEGATIVES = {"chat": neg_chat, "shop": neg_shop, "settings": neg_settings, "photo": neg_photo, "blank": neg_blank}


def pick_px(rng):
    r = rng.random()
    return rng.randint(11, 13) if r < 0.2 else rng.randint(14, 18) if r < 0.7 else rng.randint(19, 26)


def finish(img, rng, out, stem, rec):
    """Rescale, maybe photograph, maybe JPEG; save and return the label record."""
    if rng.random() < 0.25:
        f = rng.uniform(0.6, 0.9)
        img = img.resize((int(img.size[0] * f), int(img.size[1] * f)), Image.Resampling.LANCZOS)
        rec["scale"] = round(rec["scale"] * f, 3)
    if rec["photo"]:
        img = phone_photo(img, rng)
    q = rng.randint(30, 70) if rec["photo"] or rng.random() < 0.2 else None
    rec["jpeg_quality"] = q
    rec["file"] = stem + (".jpg" if q else ".png")
    if q:
        img.save(os.path.join(out, rec["file"]), quality=q)
    else:
        img.save(os.path.join(out, rec["file"]), optimize=True)
    return rec


def render_neutral(a, fonts):
    """Success and neutral screens (fault null), after the main set and with their own RNG so that
    the main set stays the same for a seed."""
    rng, n = random.Random(a.seed * 7919 + 1), a.n_neutral
    topics, n_ok, jobs = list(S), n // 2, []
    for j in range(n):
        lang = "en" if j % 2 == 0 else "zh"
        if j < n_ok:  # each topic in both languages, the styles spread evenly
            t = topics[(j // 2) % len(topics)]
            want = ["web", "dialog", "mobile", "toast"][(j // 2 + (j % 2) * 2) % 4]
            jobs.append(("success", t, lang, want if want in S[t]["styles"] else S[t]["styles"][j % len(S[t]["styles"])]))
        else:
            kind = ["receipt", "console", "chat"][(j - n_ok) % 3]
            jobs.append(("neutral", kind, lang, kind))
    rng.shuffle(jobs)
    others = [k for k, job in enumerate(jobs) if job[1] != "receipt"]  # receipt paper has no dark mode
    darks = set(rng.sample(others, min(len(others), round(0.3 * n))))
    photos = {k for k, job in enumerate(jobs) if job[1] == "receipt" and rng.random() < 0.75}
    photos |= set(rng.sample(others, max(0, min(len(others), round(0.25 * n) - len(photos)))))
    records = []
    for k, (kind, sub, lang, style) in enumerate(jobs):
        px = pick_px(rng)
        mobile = style in ("mobile", "toast", "chat")
        if kind == "success":
            ok = [t for t in S[sub][lang] if not t.startswith("D:" if mobile else "M:")]
            m = parse_ok(sub, rng.choice(ok or S[sub][lang]), rng, lang)
        if style == "receipt":
            scale = rng.choice([1.5, 2.0, 2.0])
        else:
            scale = rng.choice([1.5, 2.0, 2.0, 2.77]) if mobile else rng.choice([1.0, 1.0, 1.25, 1.5])
        if mobile or style == "receipt":
            px = min(max(px, 13), 22)
        c = Ctx(rng, fonts, lang, k in darks, px, scale)
        c.mobile = mobile
        img = STYLES[style](c, m) if kind == "success" else NEUTRALS[style](c)
        rec = {"file": "", "fault": None, "language": lang, "style": style, "dark": k in darks,
               "font": c.family if c.truth else None, "font_px": px, "scale": scale, "photo": k in photos}
        rec = finish(img.convert("RGB"), rng, a.out, "neutral_%03d" % k, rec)
        rec["message"] = None
        rec["kind"] = kind
        if kind == "success":
            rec["topic"] = sub
        rec["text"] = "\n".join(c.truth)
        records.append(rec)
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-per-fault", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--n-neutral", type=int, default=40, help="success and neutral negatives, rendered after the rest")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng, fonts = random.Random(a.seed), Fonts()
    jobs = []
    for fault in FAULTS:
        langs = (["en", "zh"] * a.n_per_fault)[:a.n_per_fault]
        styles = (T[fault]["styles"] * a.n_per_fault)[:a.n_per_fault]
        rng.shuffle(langs)
        for i in range(a.n_per_fault):
            jobs.append((fault, i, langs[i], styles[i]))
    n_neg = round(len(jobs) * 0.15 / 0.85)
    kinds = list(NEGATIVES)
    jobs += [(None, i, "en" if i % 2 == 0 else "zh", kinds[i % len(kinds)]) for i in range(n_neg)]
    def share(p):  # exact proportions, shuffled
        flags = [k < round(p * len(jobs)) for k in range(len(jobs))]
        rng.shuffle(flags)
        return flags
    darks, photos, records = share(0.3), share(0.2), []
    for (fault, i, lang, style), dark, photo in zip(jobs, darks, photos):
        px = pick_px(rng)
        mobile = style in ("mobile", "toast", "chat", "settings") or (style == "crash" and rng.random() < 0.5)
        if fault:
            ok = [t for t in T[fault][lang] if not t.startswith("D:" if mobile else "M:")]
            m = parse(fault, rng.choice(ok or T[fault][lang]), rng, lang)
        scale = rng.choice([1.5, 2.0, 2.0, 2.77]) if mobile else rng.choice([1.0, 1.0, 1.25, 1.5, 2.0])
        if mobile:
            px = min(max(px, 13), 22)  # phone UIs rarely go below 13 logical px
        c = Ctx(rng, fonts, lang, dark, px, scale)
        c.mobile = mobile
        if fault:
            img = STYLES[style](c, m)
            stem = "%s_%03d" % (fault, i)
        else:
            img = NEGATIVES[style](c)
            stem = "negative_%03d" % i
            if style in ("photo", "blank"):
                lang = None
        rec = {"file": "", "fault": fault, "language": lang, "style": style, "dark": dark,
               "font": c.family if c.truth else None, "font_px": px, "scale": scale, "photo": photo}
        rec = finish(img.convert("RGB"), rng, a.out, stem, rec)
        rec["message"] = "\n".join(x for x in (m["head"], m["body"], m["detail"]) if x) if fault else None
        rec["text"] = "\n".join(c.truth)
        records.append(rec)
    records += render_neutral(a, fonts)
    with open(os.path.join(a.out, "labels.jsonl"), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_ok = sum(1 for r in records if r.get("kind") == "success")
    print("wrote %d images (%d negatives, of which %d success and %d neutral screens) to %s"
          % (len(records), n_neg + a.n_neutral, n_ok, a.n_neutral - n_ok, a.out))


if __name__ == "__main__":
    main()
