#!/usr/bin/env bash
# smtp.sh: a real SMTP server on loopback for the alerting tests: aiosmtpd
# (PyPI) in ~/.cache/liminal/venv-smtp, storing what it receives in a
# Maildir. Prints the python to run it with:
#   python -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox MAILDIR
set -euo pipefail
cache="${LIMINAL_CACHE:-$HOME/.cache/liminal}"
venv="$cache/venv-smtp"
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --cache-dir "$cache/pip" aiosmtpd==1.4.6 >&2
fi
echo "$venv/bin/python"
