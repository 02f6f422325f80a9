"""Reading interaction logs: sources (files, compression, stdin, hashing), format sniffing, typed
columns and the streaming readers."""
