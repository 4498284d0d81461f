"""The clinic's nameko services, one package each."""
