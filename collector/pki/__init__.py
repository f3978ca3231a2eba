"""The deployment's certificate authority and the broker's ACL."""
