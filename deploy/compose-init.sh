#!/bin/sh
# Writes deploy/.env for compose.yml: the elastic user's password, random, once.
# Run it before the first `docker compose -f deploy/compose.yml up -d`; it never overwrites.
set -eu
cd "$(dirname "$0")"
if [ -f .env ] && grep -q '^ELASTIC_PASSWORD=.' .env; then
    echo "deploy/.env already has ELASTIC_PASSWORD; keeping it."
    exit 0
fi
umask 077
password=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
printf 'ELASTIC_PASSWORD=%s\n' "$password" >> .env
echo "Wrote ELASTIC_PASSWORD to deploy/.env (mode 0600)."
