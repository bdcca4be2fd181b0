"""The analytics read API: figures from the read model the Faust workers keep."""
