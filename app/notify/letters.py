"""The wording of the messages people receive (their number's events, heirs, legacy cases), in both languages.

One place for every text, so that translations stay side by side. Placeholders are filled by
:func:`compose`; links are absolute, built from ``HEIRLINE_ISSUER`` (the public base URL).
"""

from __future__ import annotations

from app.notify.base import Message
from app.settings import get_settings

LETTERS: dict[str, dict[str, tuple[str, str]]] = {
    "number_suspended": {
        "zh": ("您的号码已被停机", "运营商报告您的号码 {number} 已停机。如果不是您本人的安排，请尽快联系运营商；号码注销前，您在 Heirline 登记的账户安排不会执行。"),
        "en": ("Your number was suspended", "Your carrier reports that {number} is suspended. If you did not expect this, contact your carrier: nothing in your Heirline plan runs until the number is cancelled."),
    },
    "number_disconnected": {
        "zh": ("您的号码已注销", "运营商报告您的号码 {number} 已注销。Heirline 将按您的安排通知各个应用。如有误，请立即联系运营商恢复号码。"),
        "en": ("Your number was cancelled", "Your carrier reports that {number} was cancelled. Heirline will tell the apps what your plan says. If this is a mistake, ask your carrier to restore the number now."),
    },
    "heir_invitation": {
        "zh": ("{owner} 邀请您成为 Heirline 继承人",
               "{name}，您好：\n\n号码 {owner} 的主人在 Heirline 指定您为{role}。接受邀请后，如有一天需要，您可以依照 TA 的安排接收指定给您的账户。\n\n接受邀请（{days} 天内有效）：{link}\n\n如果您不认识对方，请忽略本邮件。"),
        "en": ("{owner} invites you to be an heir on Heirline",
               "Hello {name},\n\nThe holder of {owner} named you as {role} on Heirline. If you accept, you may one day receive the accounts they leave to you, with their instructions.\n\nAccept the invitation (valid for {days} days): {link}\n\nIf you do not know them, ignore this message."),
    },
    "heir_accepted": {
        "zh": ("{name} 已接受您的继承人邀请", "{name} 已接受邀请。请登录 Heirline 确认 TA 为您的继承人：{link}"),
        "en": ("{name} accepted your invitation", "{name} accepted your invitation. Log in to Heirline to confirm them as your heir: {link}"),
    },
    "heir_lapsed": {
        "zh": ("{name} 未回应继承人邀请", "您对 {name} 的继承人邀请已过期。指定给 TA 的账户将按顺序交给下一位已确认的继承人。您可以重新发送邀请：{link}"),
        "en": ("{name} did not answer your invitation", "Your invitation to {name} expired. Accounts left to them go to your next confirmed heir, in your order. You can send the invitation again: {link}"),
    },
    "claim_alert": {
        "zh": ("紧急：有人报告您已去世",
               "有人（{claimant}）在 Heirline 上报告号码 {number} 的主人已去世，并申请接收其账户。\n\n如果您仍健在，请点击下面的链接取消，此申请将立即终止：\n{link}\n\n否准期截止于 {ends}（UTC）。截止前您还会收到提醒。此链接只能使用一次。"),
        "en": ("Urgent: someone reported your death",
               "Someone ({claimant}) reported on Heirline that the holder of {number} has died, and asked to receive their accounts.\n\nIf you are alive, click this link to cancel it at once:\n{link}\n\nThe veto window ends {ends} (UTC). You will be reminded before then. The link works once."),
    },
    "claim_vetoed": {
        "zh": ("继承申请已被取消", "号码 {number} 的主人已确认本人健在，相关继承申请已终止，不会交付任何账户。"),
        "en": ("The claim was cancelled", "The holder of {number} confirmed they are alive. The claim is closed and nothing will be released."),
    },
    "claim_rejected": {
        "zh": ("继承申请未获批准", "关于号码 {number} 的继承申请未获批准。原因：{reason}"),
        "en": ("The claim was not approved", "The claim about {number} was not approved. Reason: {reason}"),
    },
    "claim_review": {
        "zh": ("有继承申请等待审核", "关于号码 {number} 的继承申请否准期已结束，等待审核：{link}"),
        "en": ("A claim waits for review", "The veto window of the claim about {number} has ended; it waits for review: {link}"),
    },
    "handover_ready": {
        "zh": ("您可以查看留给您的账户了", "关于号码 {number} 的继承申请已获批准。请在 {until}（UTC）前登录查看留给您的账户和说明：{link}"),
        "en": ("The accounts left to you are ready", "The claim about {number} was approved. Log in before {until} (UTC) to see the accounts and instructions left to you: {link}"),
    },
}


def link(path: str) -> str:
    return get_settings().issuer + path


def compose(letter: str, locale: str, to: str, channel: str = "email", **values: object) -> Message:
    subject, body = LETTERS[letter].get(locale, LETTERS[letter]["en"])
    return Message(to=to, channel=channel, subject=subject.format(**values), body=body.format(**values))
