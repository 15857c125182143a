"""Studio tests: a package, so that its conftest is `studio.conftest`, not a second `conftest` module."""
