"""Development tooling that never ships to a Pi or a server: the generator, frame crafting, README tables."""
