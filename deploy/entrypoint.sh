#!/bin/sh
# Runs `ates "$@"`. The session-signing secret comes from ATES_SECRET_KEY if set; else it is
# read from the shared secrets volume, where the first container that needs it (the one-shot
# `migrate`) writes a random one. So the stack starts with a strong secret and no setup,
# and a secret from the environment (or an orchestrator's secret store) wins.
set -eu

if [ -z "${ATES_SECRET_KEY:-}" ]; then
    secrets_dir="${ATES_SECRETS_DIR:-/var/lib/ates/secrets}"
    file="$secrets_dir/secret_key"
    if [ ! -s "$file" ]; then
        umask 077
        python -c 'import secrets; print(secrets.token_urlsafe(48))' > "$file.$$"
        # Another container may have written it meanwhile: keep the first one.
        mv -n "$file.$$" "$file"
        rm -f "$file.$$"
    fi
    ATES_SECRET_KEY="$(cat "$file")"
    export ATES_SECRET_KEY
fi

exec ates "$@"
