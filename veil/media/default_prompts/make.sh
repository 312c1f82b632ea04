#!/bin/sh
# Regenerates the default prompts Veil plays when a session gives no URL (veil.media.prompts).
# Needs Debian's espeak-ng and sox:
#   apt-get install -y --no-install-recommends espeak-ng sox
# Each file is espeak-ng's 22.05 kHz speech (US English, 160 words/min) turned by sox into
# what rtpengine's `play media` takes: 8 kHz, mono, 16-bit PCM WAV. `silence` trims the
# leading and trailing quiet; `norm -3` peaks at -3 dBFS; -R seeds the dither the same on
# every run, so the output is reproducible for a given espeak-ng and sox version.
set -eu
cd "$(dirname "$0")"

say() {  # say NAME TEXT
	espeak-ng -v en-us -s 160 --stdout "$2" \
		| sox -R -t wav - -r 8000 -c 1 -b 16 -e signed-integer "$1.wav" \
			silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
}

# "pin" in lower case: espeak-ng spells out "PIN" letter by letter.
say pin_prompt "Please enter your pin, followed by the hash key."
say incorrect_pin "The pin you entered is incorrect."
say unknown_caller "Sorry, this number cannot connect your call."
