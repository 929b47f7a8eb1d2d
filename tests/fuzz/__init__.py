"""The fuzz suite: no input, however malformed, earns UNKNOWN or INTERNAL (issue 12).

- ``test_grpc_methods.py``: every method of every service the server serves (the pacache
  services, health, reflection) against real servers in three configurations
  (``--workers 2``, ``--workers 0``, ``--auth``), with raw bytes and hostile but
  well-formed requests (``requests.py``); the server must stay healthy with the same
  processes and no traceback in its log.
- ``test_loader_decoders.py``: every loader decoder with random bytes and mutations of
  valid documents (``corpus.py``, ``mutations.py``); only the decoder's own error, and no
  hang.

``PACACHE_FUZZ_EXAMPLES`` sets the number of inputs (``budget.py``), ``PACACHE_FUZZ_SEED``
the seed; ``make test-fuzz`` runs 100,000. Every run writes its outcome table to
``bench/results/fuzz-latest.json`` (``conftest.py``).
"""
