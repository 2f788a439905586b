#!/usr/bin/env bash
# Deploy (or upgrade) Convect with plain kubectl, migrations first:
#
#   k8s/deploy.sh k8s/overlays/prod            # namespace taken from the overlay
#
# 1. render the overlay once (so both steps apply the very same objects);
# 2. delete the previous migration Job (a Job's pod template is immutable);
# 3. apply only the objects labelled convect.dev/phase=migrate (the Job, and in
#    dev the in-cluster PostgreSQL and Redis) and wait for the Job to complete;
# 4. apply everything else and wait for the API and worker rollouts.
# A failed migration stops here, before any Deployment changes.
set -euo pipefail

overlay="${1:?usage: $0 OVERLAY_DIR (e.g. k8s/overlays/prod)}"
timeout="${MIGRATE_TIMEOUT:-900}"
kubectl="${KUBECTL:-kubectl}"

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
"$kubectl" kustomize "$overlay" >"$rendered"

ns="$(awk '/^kind: Job$/{j=1} j && /^  namespace:/{print $2; exit}' "$rendered")"
ns="${ns:-default}"
job=convect-migrate

echo "==> migrating (namespace $ns)"
"$kubectl" -n "$ns" delete job "$job" --ignore-not-found --wait=true
"$kubectl" apply -f "$rendered" -l convect.dev/phase=migrate

deadline=$((SECONDS + timeout))
while :; do
  conditions="$("$kubectl" -n "$ns" get job "$job" \
    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
  case " $conditions " in
    *" Complete "*) echo "==> migration complete"; break ;;
    *" Failed "*)
      echo "==> migration FAILED; nothing was rolled out. Logs:" >&2
      "$kubectl" -n "$ns" logs "job/$job" --all-containers --tail=200 >&2 || true
      exit 1 ;;
  esac
  if ((SECONDS > deadline)); then
    echo "==> migration did not finish within ${timeout}s" >&2
    "$kubectl" -n "$ns" logs "job/$job" --all-containers --tail=200 >&2 || true
    exit 1
  fi
  sleep 3
done

echo "==> rolling out"
"$kubectl" apply -f "$rendered"
"$kubectl" -n "$ns" rollout status deployment/convect-api --timeout="${timeout}s"
"$kubectl" -n "$ns" rollout status deployment/convect-worker --timeout="${timeout}s"
echo "==> done"
