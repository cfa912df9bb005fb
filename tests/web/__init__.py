"""Tests of miaubloom/web: the chat page in Chromium, and the app's JavaScript client."""
