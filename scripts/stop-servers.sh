#!/usr/bin/env bash
# Stops the nats-server, PostgreSQL and Redis that demo.sh, test.sh or bench started.
source "$(dirname "$0")/servers.sh"
atw_stop_servers
