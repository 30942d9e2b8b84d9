"""The signature on every kind of SMS the daemon sends, Chinese and English, each one part as
the npm SMSC receives it; `sms preview` prints the very text the SMSC then gets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.daemon import RunningDaemon, answered_call, ccshortlink, start_peers
from tests.support.smsc_peer import ReceivedSms, SmscFactory

SIGNATURES = {"zh-CN": "【云客服】", "en": "[CloudCS]"}
WEB = {"company": "CloudCS", "hotline": "4008123123"}
ZH_CARD, EN_CARD = "+8613800138000", "+8613912345678"  # CS1001 is zh-CN, CS1002 en
ZH, EN = "8615012345678", "12025550123"  # a mainland and a US number reply


async def test_every_sms_starts_with_the_signature_and_fits_one_part(
        tmp_path: Path, smsc_factory: SmscFactory) -> None:
    peers = await start_peers(smsc_factory, [])
    config = peers.config(tmp_path, sms={"signature": SIGNATURES}, web=WEB)
    check = ccshortlink(config, "check-config")
    assert check.returncode == 0, check.stderr
    assert "parts" not in check.stdout and "needs" not in check.stderr  # all one part
    assert "signature" not in check.stderr and "opt out" not in check.stderr
    daemon = await RunningDaemon.start(config)
    try:
        await daemon.wait_event("daemon_ready")
        await peers.deliver(answered_call(1, ZH_CARD) + answered_call(2, EN_CARD, "1002"))
        for number, text in ((ZH, "帮助"), (EN, "help"), (ZH + "0", "TD"), (EN[:-1] + "4", "STOP")):
            await peers.smsc.reply(number, text)
        await peers.smsc.wait_for(lambda: len(peers.smsc.messages()) == 6, timeout=20)
        preview = ccshortlink(config, "sms", "preview", "--agent", "CS1002", "--to", EN_CARD,
                              "--json")
    finally:
        code = await daemon.stop()
        await peers.ami.stop()
    assert code == 0, daemon.log[-3000:]

    def one(number: str) -> ReceivedSms:
        [sms] = [m for m in peers.smsc.messages() if m.destination.lstrip("+") ==
                 number.lstrip("+")]
        assert sms.total == 1 and sms.complete, sms  # counted with the signature: one part
        return sms

    for number in (ZH_CARD, ZH, ZH + "0"):
        sms = one(number)
        assert sms.data_coding == 8 and sms.text.startswith("【云客服】"), sms.text
        assert sms.text.count("【云客服】") == 1
    for number in (EN_CARD, EN, EN[:-1] + "4"):
        sms = one(number)
        assert sms.data_coding == 0 and sms.text.startswith("[CloudCS] "), sms.text
    assert "王小梅" in one(ZH_CARD).text and one(ZH_CARD).text.endswith("回TD退订")
    assert one(EN_CARD).text.endswith("Reply STOP to opt out")
    assert one(ZH).text == "【云客服】CloudCS客服热线：4008123123。回TD退订"
    assert one(EN).text == "[CloudCS] CloudCS: call 4008123123. Reply STOP to opt out"
    assert one(EN[:-1] + "4").text.startswith("[CloudCS] You have opted out")

    shown = json.loads(preview.stdout)
    assert preview.returncode == 0, preview.stderr
    assert shown["text"] == one(EN_CARD).text  # the live link reused: the exact text sent
    assert (shown["encoding"], shown["parts"]) == ("GSM 7-bit", 1)


def test_preview_says_what_a_signature_costs(tmp_path: Path) -> None:
    from tests.support.configfile import write_config

    config = write_config(tmp_path, sms={"signature": "【云客服】"})
    zh = ccshortlink(config, "sms", "preview", "--agent", "CS1001", "--to", "13800138000")
    assert zh.returncode == 0, zh.stderr
    lines = zh.stdout.splitlines()
    assert "Encoding:  UCS-2" in lines and "Costs:     1 part (68 of 70 characters)" in lines
    assert lines[-1].startswith("【云客服】王小梅（工号CS1001）为您服务，再次联系TA：https://cs.")
    assert "a new link" in zh.stdout  # no database yet: the code is an example
    # the same signature on an English text: not GSM-7 any more, three parts
    en = ccshortlink(config, "sms", "preview", "--agent", "CS1002", "--to", "13800138000")
    assert "Encoding:  UCS-2" in en.stdout and "Costs:     3 parts" in en.stdout
    check = ccshortlink(config, "check-config")
    assert "[sms] the en template needs 3 SMS parts" in check.stderr
    answer = ccshortlink(config, "sms", "preview", "--reply", "opt_out_confirmation",
                         "--to", "13800138000")
    assert answer.stdout.splitlines()[-1] == (
        "【云客服】您已退订短信，将不再收到我们的消息。回复订阅可恢复。")
    unknown = ccshortlink(config, "sms", "preview", "--agent", "CS9", "--to", "13800138000")
    assert unknown.returncode == 2 and "unknown agent 'CS9'" in unknown.stderr
