"""Media plane: talking to rtpengine (NG control protocol, DTMF events) and supervising it."""
