"""Backend plugins: the contract (``base``) and discovery (``registry``)."""
