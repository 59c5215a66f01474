"""Experiment files (TOML): validated, frozen settings for ``find`` and ``compare``, and the
plans built from them. The only place in lrscope that uses pydantic."""
