"""Messages that are not text go to the flow the user is in (handlers/menu.py on_media): every section's media
step, the form engine's photo questions, a clear answer elsewhere; outside a flow, the menu hint. Before one
dispatcher, the first section's media handler took every video and file, and other sections' flows never saw them.
"""

from __future__ import annotations

from models.members import Role
from tests.conftest import make_member

STICKER = {
    "file_id": "CAAD",
    "file_unique_id": "st",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
VIDEO = {"file_id": "BAAD", "file_unique_id": "vi", "width": 640, "height": 360, "duration": 5}
LOCATION = {"latitude": 31.2, "longitude": 121.5}


async def _cadre_at_the_photo_question(bot):
    await make_member(bot.db, 9601, "i801", role=Role.CADRE)
    cadre = bot.user(9601)
    await cadre.send("/admin")
    await cadre.click("福利管理")
    await cadre.click("新建福利")
    await cadre.click("普惠")
    await cadre.send("年货礼包")
    await cadre.click("跳过")
    await cadre.click("跳过")
    return cadre


async def test_a_form_asking_for_a_photo_says_so_for_anything_else(bot):
    cadre = await _cadre_at_the_photo_question(bot)
    for content in ({"sticker": STICKER}, {"video": VIDEO}, {"location": LOCATION}):
        await cadre.send_content(**content)
        assert cadre.last.text == "这一步请发送一张照片（或使用下方的按钮）。"
    await cadre.send_photo("AgACgift")
    assert "需要多少积分" in cadre.last.text
    await cadre.send_content(sticker=STICKER)
    assert cadre.last.text == "这一步请输入文字回答（或使用下方的按钮）。"


async def test_a_flow_that_takes_text_says_so(bot):
    await make_member(bot.db, 9602, "i801", language="en")
    member = bot.user(9602, language_code="en")
    await member.send("/feedback")
    await member.click("Named message")
    await member.send_content(video=VIDEO)
    assert member.last.text == "Please answer this step with text (or use the buttons below)."


async def test_each_section_gets_its_own_flows_media(bot):
    await make_member(bot.db, 9603, "i801")
    member = bot.user(9603)
    await member.send("/ideas")
    await member.click("提交想法")
    await member.send_content(video=VIDEO)
    assert member.last.text == "请用文字输入。"  # ideas' own answer, in its form
    bot.clock.advance(seconds=5)  # the newest flow is the one answered (the frozen clock would tie them)
    await member.send("/newrun")
    await member.send_content(location=LOCATION)
    assert member.last.text.startswith("现在不需要发送位置")  # runs' own answer: the pin is asked later


async def test_outside_any_flow_every_kind_gets_the_hint(bot):
    await make_member(bot.db, 9604, "i801")
    member = bot.user(9604)
    for content in ({"sticker": STICKER}, {"video": VIDEO}, {"location": LOCATION}):
        await member.send_content(**content)
        assert "发送 /menu 打开首页" in member.last.text
