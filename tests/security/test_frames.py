"""What a client may send over Socket.IO (security/frames.py), and who the expiry sweep checks."""

from __future__ import annotations

import inspect

import pytest
from socketio import base_server, packet

from miaubloom.chat.events import ChatNamespace
from miaubloom.extensions import socketio
from miaubloom.security import frames
from miaubloom.state import app_state
from tests.security.conftest import people_of

# Engine.IO frames as a client sends them: "4" (message) + the Socket.IO packet.
ACCEPTED = [
    ("40", packet.CONNECT),
    ('40{"token":"x"}', packet.CONNECT),
    ("41", packet.DISCONNECT),
    ('42["chat:sync",{"conversacionId":"c","afterSeq":0}]', packet.EVENT),
    ('427["chat:typing",{}]', packet.EVENT),  # with an ack id
    ('42["chat:send-message"]', packet.EVENT),
]

REFUSED = [
    ("4", "empty packet"),  # an Engine.IO message with no Socket.IO packet in it
    ("42[", "undecodable packet"),
    ("42[" * 5 + "x", "undecodable packet"),
    ("42" + "[" * 20_000 + "]" * 20_000, "undecodable packet"),  # nested past the recursion limit
    ("42" + "1" * 101 + "[]", "undecodable packet"),  # an ack id too long
    ("42[]", "malformed event"),
    ("42{}", "malformed event"),
    ('42"abc"', "malformed event"),
    ("42[1]", "malformed event"),
    ("42", "malformed event"),
    ("42null", "malformed event"),
    ('40"token"', "malformed connect"),
    ("40[]", "malformed connect"),
    ("43[1]", "unexpected packet type"),  # an ack: the server never asks a client for one
    ('431["x"]', "unexpected packet type"),
    ("44{}", "unexpected packet type"),  # CONNECT_ERROR comes from servers only
    ("47", "unexpected packet type"),
    ("49", "unexpected packet type"),
    ('45999999999-["chat:sync",{"_placeholder":true,"num":0}]', "binary packet"),
    ('451-["chat:sync",{"_placeholder":true,"num":0}]', "binary packet"),
    ('461-[{"_placeholder":true,"num":0}]', "binary packet"),
    ('421-["chat:sync",{}]', "binary packet"),  # an attachment count on a text event
    (b"\x00\x01binary", "binary frame"),
    (b'42["chat:sync",{}]', "binary frame"),
]


def _decode(frame: str | bytes) -> packet.Packet:
    """What python-socketio's message handler gets: the frame after Engine.IO's "4"."""
    return frames.decode(packet.Packet, frame[1:] if isinstance(frame, str) else frame)


@pytest.mark.parametrize(("frame", "kind"), ACCEPTED)
def test_the_chats_packets_pass(frame, kind):
    assert _decode(frame).packet_type == kind


@pytest.mark.parametrize(("frame", "why"), REFUSED, ids=lambda v: repr(v)[:40])
def test_anything_else_is_a_violation(frame, why):
    with pytest.raises(frames.Violation) as refused:
        _decode(frame)
    assert str(refused.value) == why


def test_every_reserved_event_name_is_refused():
    # python-socketio's own list, and socket.io-parser's (what the JS client refuses to emit).
    assert set(base_server.BaseServer.reserved_events) <= frames.RESERVED_EVENTS
    for name in frames.RESERVED_EVENTS:
        with pytest.raises(frames.Violation, match="reserved event name"):
            _decode("42" + f'["{name}",{{}}]')


def test_every_event_of_the_namespace_passes():
    handlers = [n for n, _ in inspect.getmembers(ChatNamespace) if n.startswith("on_chat_")]
    assert len(handlers) >= 7
    for handler in handlers:
        # on_chat_send_message is the event chat:send-message.
        name = "chat:" + handler.removeprefix("on_chat_").replace("_", "-")
        pkt = _decode("42" + f'["{name}",{{}}]')
        assert pkt.data[0] == name


def test_the_expiry_sweep_checks_sockets_the_namespace_forgot(app):
    """Whatever a handler did to the namespace's callers, a connected socket is checked."""
    people = people_of(app)
    ana = people.register()
    client = socketio.test_client(app, auth={"token": ana.token})
    try:
        namespace = socketio.server.namespace_handlers["/"]
        sid = next(iter(namespace.callers))
        sessions = app_state(app).sessions
        assert sessions.ended(namespace) == []
        namespace.callers.clear()  # what a client-sent "disconnect" did before frames.py
        assert sessions.ended(namespace) == [sid]
    finally:
        client.disconnect()
