"""World bootstrap: detect how this process was started and build the world communicator."""
