"""Tiny Django sites for the peers part (6) of the benchmark (bench/peers_part.py).

Each module is a whole settings module and its URLconf at once (ROOT_URLCONF = the module), with
the minimal settings the peer's documentation gives plus what every variant of the benchmark
shares (base.py): the same Argon2 hasher, the same PostgreSQL server (a database per peer),
DEBUG off. The peers are installed packages (pyproject's optional group `bench`); nothing of
their code is copied here.
"""
