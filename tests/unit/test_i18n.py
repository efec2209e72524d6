"""Every text a page shows has a Simplified Chinese translation, and every label key an English one."""

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from app.domain.evidence import KINDS
from app.domain.inventory import BindingType, Disposition
from app.domain.legacy import CaseStatus, HeirStatus
from app.services.new_holders import HARASSMENT_KINDS
from app.web.i18n import catalog, gettext, negotiate

ROOT = Path(__file__).resolve().parents[2]


def extracted() -> set[str]:
    found = set()
    for directory, method in [(ROOT / "templates", "jinja2"), (ROOT / "app" / "web", "python")]:
        pattern = "**.j2" if method == "jinja2" else "**.py"
        for _file, _line, message, _comments, _context in extract_from_dir(
            directory, method_map=[(pattern, method)]
        ):
            if isinstance(message, str) and message:
                found.add(message)
    return found


LABELS = ([f"binding:{t.value}" for t in BindingType] + [f"disposition:{d.value}" for d in Disposition]
          + ["contact:email", "contact:phone"] + [f"case:{s.value}" for s in CaseStatus]
          + [f"heir:{s.value}" for s in HeirStatus] + [f"evidence:{k}" for k in KINDS]
          + ["source:claim", "source:carrier_event"] + [f"harassment:{k}" for k in HARASSMENT_KINDS])


def test_every_extracted_text_has_a_chinese_translation():
    texts = extracted()
    assert "Sign up" in texts and len(texts) > 40
    missing = sorted(t for t in texts if t not in catalog("zh"))
    assert missing == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_label_key_is_translated(lang):
    missing = [key for key in LABELS if key not in catalog(lang)]
    assert missing == []


def test_placeholders_survive_translation():
    assert "+86138" in gettext("zh")("We sent a code to %(number)s. It is valid for 10 minutes.", number="+86138")


@pytest.mark.parametrize("cookie, header, expected", [
    (None, "zh-CN,zh;q=0.9", "zh"), (None, "en-US,en;q=0.8", "en"), (None, "fr-FR,en;q=0.5", "en"),
    (None, "fr-FR,zh-TW;q=0.5", "zh"), (None, None, "zh"), ("en", "zh-CN", "en"), ("xx", "en", "en"),
    (None, "en;q=0.2,zh;q=0.9", "zh"), (None, "garbage;;q=x", "en"),
])
def test_negotiation(cookie, header, expected):
    assert negotiate(cookie, header) == expected
