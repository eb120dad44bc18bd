"""Pure rules of Keepstone: no I/O, no clock reads, no wire formats."""
