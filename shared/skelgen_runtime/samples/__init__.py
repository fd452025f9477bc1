"""Sample datasets that skelgen generates itself, so that nothing has to be downloaded."""
