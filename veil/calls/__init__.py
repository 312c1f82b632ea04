"""Call control: the masking B2BUA on top of ``veil.sip``."""
