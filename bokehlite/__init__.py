"""bokehlite: the installed package; its subpackages live in the top-level stage folders
(model/, export/, runtime/, benchmarks/), mapped here by pyproject.toml."""
