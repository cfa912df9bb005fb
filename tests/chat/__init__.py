"""Tests of miaubloom/chat: the service, writer, presence, events and the live chat."""
