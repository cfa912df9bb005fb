"""The load generator for the chat, the bare echo server and the Node reference server.

One job a module: `setup` (users, pairs and conversations through the chat's HTTP
API), `protocol` (each server's event names and payloads, the Socket.IO client),
`workers` (a generator process's share of the sockets, and the parent's handle on
those processes), `stats` (percentiles, the run's summary, server CPU and RSS from
/proc), `cli` (the commands). Run it as `python bench/loadgen ...`.
"""
