"""mesh subpackage."""
