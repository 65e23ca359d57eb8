#!/usr/bin/env bash
# Offline checks of the Helm chart: helm lint, helm template, kubernetes-validate --strict,
# and the committed renders in helm/rendered/ are current (--update rewrites them).
#
# Tools (no network needed once installed; see /work/shared/GUIDE.md section 5):
#   HELM_BIN                 default: helm on PATH, else .venv/bin/helm (make setup installs it)
#   KUBERNETES_VALIDATE_BIN  default: kubernetes-validate on PATH, else .venv/bin/kubernetes-validate
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
HELM="${HELM_BIN:-$(command -v helm || echo ../.venv/bin/helm)}"
KV="${KUBERNETES_VALIDATE_BIN:-$(command -v kubernetes-validate || echo ../.venv/bin/kubernetes-validate)}"
update=0
[[ "${1:-}" == "--update" ]] && update=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

quiet() { grep -v 'found symbolic link in path' || true; }

echo "== helm lint"
"$HELM" lint --strict guardrail-proxy 2>&1 | quiet
"$HELM" lint --strict guardrail-proxy --set mode=sidecar 2>&1 | quiet
"$HELM" lint --strict guardrail-proxy -f examples/standalone-values.yaml 2>&1 | quiet
"$HELM" lint --strict examples/app-with-sidecar 2>&1 | quiet

echo "== helm template"
"$HELM" template demo guardrail-proxy 2>/dev/null >"$out/default.yaml"
"$HELM" template demo guardrail-proxy --set mode=sidecar 2>/dev/null >"$out/sidecar-only.yaml"
"$HELM" template guardrail guardrail-proxy -f examples/standalone-values.yaml 2>/dev/null >"$out/standalone.yaml"
"$HELM" template chat examples/app-with-sidecar 2>/dev/null >"$out/app-with-sidecar.yaml"

echo "== values.schema.json rejects unknown values"
if "$HELM" template demo guardrail-proxy --set rules.sorce=chart >/dev/null 2>&1; then
  echo "FAIL: an unknown value was accepted" >&2
  exit 1
fi

echo "== kubernetes-validate --strict"
"$KV" --strict --quiet "$out/default.yaml" "$out/standalone.yaml" "$out/app-with-sidecar.yaml"

echo "== committed renders (helm/rendered/)"
status=0
for name in standalone app-with-sidecar; do
  if [[ $update == 1 ]]; then
    cp "$out/$name.yaml" "rendered/$name.yaml"
  elif ! diff -u "rendered/$name.yaml" "$out/$name.yaml"; then
    echo "FAIL: helm/rendered/$name.yaml is stale; run helm/check.sh --update" >&2
    status=1
  fi
done
[[ $status == 0 ]] && echo "OK"
exit $status
