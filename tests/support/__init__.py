"""Helpers shared by the tests (and bench/): live servers, sockets, proxies, a mailbox, Redis."""
