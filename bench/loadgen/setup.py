"""Users, pairs and their conversations, made through the chat's HTTP API."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

PASSWORD = "bench-password-123"


async def _post(s: aiohttp.ClientSession, url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with s.post(url, json=body, headers=headers) as r:
        data = await r.json()
        if r.status >= 300:
            raise RuntimeError(f"POST {url} -> {r.status} {data}")
        return data


async def register(s: aiohttp.ClientSession, base: str, rol: str, tag: str) -> tuple[str, str]:
    """Register and log in a new user; (user id, token)."""
    email = f"bench-{tag}-{uuid.uuid4().hex[:10]}@bench.miaubloom"
    body = {"email": email, "password": PASSWORD, "nombreCompleto": f"Bench {tag}", "rol": rol}
    user = (await _post(s, base + "/api/auth/register", body))["user"]
    login = await _post(s, base + "/api/auth/login", {"email": email, "password": PASSWORD})
    return user["id"], login["token"]


async def chat_pair(s: aiohttp.ClientSession, base: str, i: int) -> tuple[str, str, str]:
    """A psychologist, their assigned patient and their conversation: tokens and room."""
    psi_id, psi_tok = await register(s, base, "Psicólogo", f"psi{i}")
    pac_id, pac_tok = await register(s, base, "Paciente", f"pac{i}")
    await _post(s, base + "/api/psicologo/asignar-paciente", {"pacienteId": pac_id}, psi_tok)
    conv = await _post(s, base + "/api/chat/conversaciones", {"otroUsuarioId": psi_id}, pac_tok)
    return pac_tok, psi_tok, conv["conversacion"]["id"]


async def setup_pairs(target: str, base: str, n: int) -> list[dict]:
    """n pairs ready to connect: for the chat through its HTTP API, for echo just rooms."""
    if target == "echo":
        run = uuid.uuid4().hex[:8]
        return [{"patient": None, "psych": None, "room": f"echo-{run}-{i}"} for i in range(n)]
    sem = asyncio.Semaphore(8)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as s:

        async def one(i: int) -> dict:
            async with sem:
                pac, psi, room = await chat_pair(s, base, i)
                return {"patient": pac, "psych": psi, "room": room}

        return list(await asyncio.gather(*(one(i) for i in range(n))))
