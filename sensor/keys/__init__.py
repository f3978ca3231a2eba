"""Keys and the privacy filter: salts, their ratchet and key files, pseudonyms, opt-outs and consents."""
