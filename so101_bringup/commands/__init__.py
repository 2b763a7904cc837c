"""One module per `so101` command: its options (add_parser) and what it runs."""
