"""Real adapters and their in-memory twins; both pass the contract suites in tests/contract."""
