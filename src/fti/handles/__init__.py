"""The objects users hold: a frozen definition plus the store context it belongs to."""
