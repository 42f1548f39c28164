"""typing.Protocol contracts for every external system."""
