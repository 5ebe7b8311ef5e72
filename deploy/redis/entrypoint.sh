#!/bin/sh
# Render the ACL file from $REDIS_PASSWORD (never committed), then run redis-server.
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD (see deploy/.env.example)}"
umask 077
sed "s|\${REDIS_PASSWORD}|${REDIS_PASSWORD}|" /usr/local/etc/redis/users.acl.template \
    > /tmp/users.acl
exec redis-server /usr/local/etc/redis/redis.conf "$@"
