"""Built-in encoder and model plugins."""
