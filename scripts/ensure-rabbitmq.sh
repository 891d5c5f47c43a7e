#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672; start the local one if it is installed.
set -euo pipefail
host=${RABBITMQ_HOST:-127.0.0.1}
port=${RABBITMQ_PORT:-5672}

reachable() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

# The work queues are partitions fed by a consistent-hash exchange (a plugin bundled with
# RabbitMQ, off by default). Enabled on the local broker; a remote one needs it enabled there.
enable_plugins() {
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins enable rabbitmq_consistent_hash_exchange >/dev/null \
      || echo "could not enable rabbitmq_consistent_hash_exchange; enable it on the broker" >&2
  fi
}

if reachable; then
  echo "RabbitMQ is reachable on $host:$port"
  enable_plugins
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "RabbitMQ is not running on $host:$port and is not installed." >&2
  echo "Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) or point WINBACK_AMQP_URL at a broker." >&2
  exit 1
fi
echo "Starting RabbitMQ (rabbitmq-server -detached)..."
rabbitmq-server -detached
if command -v rabbitmqctl >/dev/null 2>&1; then
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
for _ in $(seq 1 60); do
  if reachable; then echo "RabbitMQ is up on $host:$port"; enable_plugins; exit 0; fi
  sleep 1
done
echo "RabbitMQ did not come up on $host:$port within 60 s; see /var/log/rabbitmq/." >&2
exit 1
