"""Every workaround of a faust-streaming / aiokafka / mode internal, one per module
(the table in docs/architecture.md lists them; tests/test_faust_fixes.py checks each
private attribute they rely on):

- reliable_flush: the producer flush before a commit really drains;
- commit_guard: commits never pass a record the agent did not process;
- in_order (+ recovery_gate): partitions applied in offset order, records that arrive
  while tables recover skipped and read again, never held;
- recovery_restart: a table recovery overtaken by a rebalance starts over;
- highwaters: table recovery reads changelogs to the true log end (broker quirk);
- initial_offsets: every input partition has a committed offset before the first join;
- bounded_shutdown: SIGTERM ends the worker within a deadline;
- event_context: a record applied after the agent moved on (the event-time merge)
  writes its table changes to its own partition's changelog.

`install(app, ...)` (streams/faust_fixes/install.py) is the one entry point, called once
by the app factory; it refuses
to run on library versions other than those in versions.py (pinned in pyproject.toml).

This file imports nothing, so that the CLI can check versions (versions.py) without
loading Faust.
"""
