"""Believable demo data: two owners with inventories and heirs. Loading twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import json

from app.domain.numbers import normalize
from app.services import accounts, carriers, heirs, inventory, streams
from app.settings import get_settings
from app.storage.tables import Carrier, Platform


@dataclass(frozen=True)
class DemoPerson:
    label: str
    login: str  # a number (owners) or an e-mail (heirs)
    password: str


LI_HUA = DemoPerson("Li Hua (李华), Beijing", "+8613800138000", "peony-garden-1957")
ALEX = DemoPerson("Alex Morgan, San Francisco", "+14155552671", "harbor-lights-1962")
LI_MING = DemoPerson("Li Ming (李明), Li Hua's son and executor, a confirmed heir", "liming@example.com",
                     "lotus-pond-1985")


async def _platform_ids() -> dict[str, object]:
    return {r["slug"]: r["id"] for r in await Platform.select(Platform.slug, Platform.id)}


async def load() -> list[DemoPerson]:
    platforms = await _platform_ids()
    number = normalize(LI_HUA.login)
    if await accounts.owner_of(number) is None:
        owner = await accounts.register_owner(number, LI_HUA.password, "lihua.family@example.com", locale="zh")
        son = await inventory.add_heir(owner, "李明", "liming@example.com", "儿子", "+8613912345678", is_executor=True)
        wife = await inventory.add_heir(owner, "王芳", "wangfang@example.com", "配偶")
        I = inventory.BindingInput
        await inventory.add_binding(owner, I(platform_id=platforms["wechat"], binding_types=["login", "payment"],
                                             account_hint="wxid_lihua57", disposition="handover", heir_id=son["id"],
                                             instructions="聊天记录里有家里的老照片，请导出后再注销。"))
        await inventory.add_binding(owner, I(platform_id=platforms["alipay"], binding_types=["payment", "login"],
                                             account_hint="138****8000", disposition="handover", heir_id=wife["id"],
                                             instructions="余额宝里的钱转到王芳的银行卡。"))
        await inventory.add_binding(owner, I(platform_id=platforms["weibo"], binding_types=["login"],
                                             account_hint="@李华的花园", disposition="memorialize"))
        await inventory.add_binding(owner, I(platform_id=platforms["taobao"], binding_types=["login", "payment"],
                                             disposition="delete"))
        await inventory.add_binding(owner, I(platform_id=platforms["meituan"], binding_types=["login", "payment"],
                                             disposition="unbind"))
        await inventory.add_binding(owner, I(platform_id=platforms["12306"], binding_types=["login"],
                                             disposition="unbind"))
        # the son accepted his invitation and his father confirmed him: he can open a claim
        token = await heirs.send_invitation(owner, son["id"])
        await heirs.accept(token, LI_MING.password, client="demo", locale="zh")
        await heirs.confirm(owner, son["id"])
    number = normalize(ALEX.login)
    if await accounts.owner_of(number) is None:
        owner = await accounts.register_owner(number, ALEX.password, "alex.morgan@example.com", locale="en")
        sam = await inventory.add_heir(owner, "Sam Morgan", "sam.morgan@example.com", "daughter", is_executor=True)
        I = inventory.BindingInput
        await inventory.add_binding(owner, I(platform_id=platforms["google"], binding_types=["recovery", "2fa"],
                                             account_hint="alex.morgan@gmail.example", disposition="handover",
                                             heir_id=sam["id"], instructions="Photos are in the 'Family' album."))
        await inventory.add_binding(owner, I(platform_id=platforms["whatsapp"], binding_types=["login"],
                                             disposition="unbind"))
        await inventory.add_binding(owner, I(platform_id=platforms["paypal"], binding_types=["2fa", "payment"],
                                             disposition="delete"))
    return [LI_HUA, ALEX, LI_MING]


async def load_clients() -> dict:
    """A demo carrier and two polling platforms; their secrets are kept in var/demo-credentials.json
    (demo only) so that each `heirline demo` can show them again."""
    path = get_settings().var_dir / "demo-credentials.json"
    if path.exists() and await Carrier.exists().where(Carrier.name == "Demo Mobile"):
        return json.loads(path.read_text())
    creds = await carriers.add("Demo Mobile", "CN")
    result = {"carrier": {"id": str(creds.id), "webhook_secret": creds.webhook_secret, "api_token": creds.api_token}}
    reviewer_id, password = await accounts.add_reviewer("reviewer@heirline.example")
    result["reviewer"] = {"id": str(reviewer_id), "email": "reviewer@heirline.example", "password": password}
    for name in ("WeChat", "Alipay"):
        platform = await streams.add_platform(name, poll=True)
        result[name] = {"id": str(platform.id), "api_token": platform.api_token, "stream_id": platform.stream_id}
    path.write_text(json.dumps(result, indent=2))
    path.chmod(0o600)
    return result
