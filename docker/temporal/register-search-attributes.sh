#!/bin/sh
# Registers Forge's search attributes on the namespace, once; an attribute that already exists is left alone,
# so this is safe on every `docker compose up`. Uses the `temporal` CLI of the auto-setup image, else `tctl`.
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
# name:type — the names the workflows set (ForgePipeline/ForgeSession/ForgePhase/ForgeBackend/ForgeParent keyword,
# ForgeStep int, ForgeLoss/ForgeSuccessRate double).
ATTRIBUTES="ForgePipeline:Keyword ForgeSession:Keyword ForgePhase:Keyword ForgeStep:Int ForgeLoss:Double ForgeSuccessRate:Double ForgeBackend:Keyword ForgeParent:Keyword"

echo "waiting for the Temporal frontend at $ADDRESS (namespace $NAMESPACE)"
i=0
until temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1 \
  || tctl --address "$ADDRESS" --namespace "$NAMESPACE" namespace describe >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 120 ]; then echo "Temporal at $ADDRESS did not answer within 4 minutes" >&2; exit 1; fi
  sleep 2
done

if command -v temporal >/dev/null 2>&1; then
  existing="$(temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE")"
else
  existing="$(tctl --address "$ADDRESS" --namespace "$NAMESPACE" admin cluster get-search-attributes)"
fi
for entry in $ATTRIBUTES; do
  name="${entry%%:*}"
  type="${entry#*:}"
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
    continue
  fi
  echo "registering search attribute $name ($type)"
  if command -v temporal >/dev/null 2>&1; then
    temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" --name "$name" --type "$type"
  else
    tctl --address "$ADDRESS" --namespace "$NAMESPACE" admin cluster add-search-attributes --yes --name "$name" --type "$type"
  fi
done
echo "search attributes ready"
