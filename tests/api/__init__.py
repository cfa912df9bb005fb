"""Tests of miaubloom/api: the HTTP routes."""
