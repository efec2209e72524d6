"""The platform catalog owners pick from, seeded with well-known apps (Chinese and international)."""

from __future__ import annotations

from app.storage.engine import write_transaction
from app.storage.tables import Platform

# slug, English name, Chinese name, region, category
WELL_KNOWN: list[tuple[str, str, str, str, str]] = [
    ("wechat", "WeChat", "微信", "CN", "messaging"),
    ("qq", "QQ", "QQ", "CN", "messaging"),
    ("alipay", "Alipay", "支付宝", "CN", "payment"),
    ("taobao", "Taobao", "淘宝", "CN", "shopping"),
    ("jd", "JD.com", "京东", "CN", "shopping"),
    ("pinduoduo", "Pinduoduo", "拼多多", "CN", "shopping"),
    ("meituan", "Meituan", "美团", "CN", "services"),
    ("eleme", "Ele.me", "饿了么", "CN", "services"),
    ("didi", "DiDi", "滴滴出行", "CN", "transport"),
    ("douyin", "Douyin", "抖音", "CN", "social"),
    ("weibo", "Weibo", "微博", "CN", "social"),
    ("xiaohongshu", "Xiaohongshu (RED)", "小红书", "CN", "social"),
    ("bilibili", "Bilibili", "哔哩哔哩", "CN", "social"),
    ("kuaishou", "Kuaishou", "快手", "CN", "social"),
    ("baidu", "Baidu", "百度", "CN", "search"),
    ("ctrip", "Trip.com (Ctrip)", "携程旅行", "CN", "travel"),
    ("12306", "China Railway 12306", "铁路12306", "CN", "transport"),
    ("netease-mail", "NetEase Mail", "网易邮箱", "CN", "email"),
    ("dingtalk", "DingTalk", "钉钉", "CN", "work"),
    ("icbc", "ICBC Mobile Banking", "中国工商银行", "CN", "banking"),
    ("cmb", "China Merchants Bank", "招商银行", "CN", "banking"),
    ("google", "Google", "谷歌", "INTL", "email"),
    ("apple", "Apple ID", "Apple ID", "INTL", "devices"),
    ("microsoft", "Microsoft", "微软", "INTL", "email"),
    ("facebook", "Facebook", "脸书", "INTL", "social"),
    ("instagram", "Instagram", "Instagram", "INTL", "social"),
    ("whatsapp", "WhatsApp", "WhatsApp", "INTL", "messaging"),
    ("telegram", "Telegram", "Telegram", "INTL", "messaging"),
    ("x", "X (Twitter)", "X（推特）", "INTL", "social"),
    ("linkedin", "LinkedIn", "领英", "INTL", "work"),
    ("amazon", "Amazon", "亚马逊", "INTL", "shopping"),
    ("paypal", "PayPal", "PayPal", "INTL", "payment"),
    ("uber", "Uber", "Uber", "INTL", "transport"),
    ("signal", "Signal", "Signal", "INTL", "messaging"),
    ("github", "GitHub", "GitHub", "INTL", "work"),
]


async def seed() -> int:
    """Add the well-known platforms that are missing; returns how many were added. Idempotent."""
    async with write_transaction():
        have = {r["slug"] for r in await Platform.select(Platform.slug)}
        missing = [
            Platform(slug=slug, name=name, name_zh=name_zh, region=region, category=category)
            for slug, name, name_zh, region, category in WELL_KNOWN
            if slug not in have
        ]
        if missing:
            await Platform.insert(*missing)
    return len(missing)
