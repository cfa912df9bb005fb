"""The chat: its rules (service), payloads (schemas), announcements and socket events."""
