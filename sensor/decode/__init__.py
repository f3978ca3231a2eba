"""The decoding core: capture files and radio headers to frozen 802.11 values; bytes in, no I/O."""
