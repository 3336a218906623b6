"""coordination subpackage."""
