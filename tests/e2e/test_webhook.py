"""Webhook mode, as deployed behind HTTPS: the stand-in posts updates to the bot with the
secret token, as Telegram does, and refuses getUpdates meanwhile."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from devkit.harness import Stack, running_stack
from tests.conftest import fresh_postgres_database, pbc_fixtures

SECRET = "a-long_Secret-token-0123456789-abcdefgh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_port()
    env = {"HV_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram-updates",
           "HV_WEBHOOK_SECRET": SECRET, "HV_WEBHOOK_LISTEN": "127.0.0.1",
           "HV_WEBHOOK_PORT": str(port)}
    with fresh_postgres_database() as url, \
            running_stack(tmp_path_factory.mktemp("webhook"), url, redis_url, env) as running:
        yield running


def test_a_photo_arrives_by_webhook_and_is_answered(stack: Stack) -> None:
    state = stack.standin.api.state
    assert state.webhook == (stack.env["HV_WEBHOOK_URL"], SECRET)
    user = stack.new_user()
    stack.standin.send_photo(user, pbc_fixtures()["neutrophil"].read_bytes())
    assert "Neutrophil" in (stack.result_for(user).text or ""), stack.logs()
    assert state.webhook_posts and set(state.webhook_posts) == {200}


def test_an_update_without_the_secret_is_refused_and_never_handled(stack: Stack) -> None:
    user = stack.new_user()
    forged = {"update_id": 10**9, "message": {
        "message_id": 1, "date": int(time.time()), "text": "/help",
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "Mallory"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        response = httpx.post(stack.env["HV_WEBHOOK_URL"], json=forged, headers=headers,
                                 timeout=10)
        assert response.status_code == 403
    time.sleep(2)
    assert stack.standin.wait_for(user, 0, 0) == []
