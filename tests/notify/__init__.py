"""Tests of miaubloom/notify: e-mail notifications."""
