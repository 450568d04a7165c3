#!/bin/sh
# One-shot: create the namespace and the engine's search attributes (idempotent).
# The attribute list must equal offramp/search_attributes.py (a test checks it).
set -eu
NS="${TEMPORAL_NAMESPACE:-default}"
temporal operator namespace describe --namespace "$NS" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NS" --retention 30d
for attr in \
  OrderId=Keyword \
  Provider=Keyword \
  Stage=Keyword \
  TransferStatus=Keyword \
  Chain=Keyword \
  Asset=Keyword \
  Amount=Keyword \
  TxHash=Keyword \
  HotWallet=Keyword \
  NeedsAttention=Bool
do
  temporal operator search-attribute create --namespace "$NS" --name "${attr%%=*}" --type "${attr#*=}" --yes \
    || temporal operator search-attribute list --namespace "$NS" | grep -q "${attr%%=*}"
done
echo "namespace $NS and search attributes ready"
