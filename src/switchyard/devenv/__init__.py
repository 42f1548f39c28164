"""The local infrastructure harness: real servers on loopback for the demo and the tests."""
