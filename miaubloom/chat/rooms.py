"""Room names: one per conversation, one per user, one per token."""

from __future__ import annotations


def conversation(conversacion_id: str) -> str:
    """The room of a conversation's joined sockets."""
    return f"conv:{conversacion_id}"


def user(user_id: str) -> str:
    """The personal room of every socket of one user."""
    return f"user:{user_id}"


def token(token_hash: str) -> str:
    """The room of every socket opened with one token (ended by logout)."""
    return f"token:{token_hash}"
