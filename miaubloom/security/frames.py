"""What a client may send over Socket.IO: text packets of the chat's shapes, nothing else.

python-socketio decodes whatever arrives and dispatches any event name, the
reserved ones included (a client-sent "disconnect" reaches the namespace's
on_disconnect); it waits for up to 10 digits of binary attachments per
packet, buffering every binary frame until they are all there; and a frame
it cannot decode costs a logged traceback, frame after frame. The chat uses
no binary events and no client acknowledgements, so here a frame is either
one of the packets below, well formed, or a violation that closes its
connection, as the reference server (socket.io-parser) closes on a parse
error.
"""

from __future__ import annotations

from typing import Any

from socketio import packet

# socket.io-parser's reserved names: a client sending one is refused, never dispatched.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
# Packet types that carry binary attachments, as the first character of a frame.
_BINARY_TYPES = (str(packet.BINARY_EVENT), str(packet.BINARY_ACK))


class Violation(Exception):
    """A frame the chat refuses: the connection that sent it is closed."""


def decode(packet_class: type[packet.Packet], data: object) -> Any:
    """The Socket.IO packet a client sent, checked; Violation says why it is refused."""
    if not isinstance(data, str):
        raise Violation("binary frame")
    if not data:
        raise Violation("empty packet")
    if data[:1] in _BINARY_TYPES:
        # Refused before decoding: no attachment is ever waited for, so none is kept.
        raise Violation("binary packet")
    try:
        pkt = packet_class(encoded_packet=data)
    except (ValueError, TypeError, RecursionError):  # bad JSON, over-deep JSON, bad header
        raise Violation("undecodable packet") from None
    if pkt.attachment_count:
        raise Violation("binary packet")
    if pkt.packet_type == packet.EVENT:
        name = pkt.data[0] if isinstance(pkt.data, list) and pkt.data else None
        if not isinstance(name, str):
            raise Violation("malformed event")
        if name in RESERVED_EVENTS:
            raise Violation("reserved event name")
    elif pkt.packet_type == packet.CONNECT:
        if pkt.data is not None and not isinstance(pkt.data, dict):
            raise Violation("malformed connect")
    elif pkt.packet_type != packet.DISCONNECT:
        # ACK (the server never asks a client for one), CONNECT_ERROR, unknown types.
        raise Violation("unexpected packet type")
    return pkt
