"""One module per CLI subcommand; each defines ``register(subparsers)`` and keeps module-level imports cheap."""
