# guardrail-proxy: the OpenAI-compatible guardrail sidecar.
#
#   docker build -t guardrail-proxy .
#   docker run -p 8080:8080 -e GUARDRAIL_UPSTREAM_API_KEY=sk-... guardrail-proxy
#
# Models (MiniLM embeddings, spaCy NER, tiktoken BPE files) come from PyPI packages at
# build time and are loaded once here to prove it, so the container never reaches a
# model hub (HF_HUB_OFFLINE=1). The shipped rules are baked in at /app/rules: mount
# your own over that path (e.g. a ConfigMap; edits are hot-reloaded) or point
# GUARDRAIL_RULES_DIR elsewhere. The install commands mirror the Makefile's `setup`.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with torch (CPU) first, then the package under the constraints ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
# Where the default index serves a CUDA torch, pass a CPU wheel index, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_URL=""
# torch first, pinned: the CPU build (an unpinned torch pulls gigabytes of CUDA).
RUN python -m venv /opt/venv \
 && if [ -n "$TORCH_INDEX_URL" ]; then \
      pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else \
      pip install --no-cache-dir torch==2.13.0; \
    fi
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY proxy/ proxy/
RUN pip install --no-cache-dir -c constraints.txt .

# Offline from here on: the models must load from the installed packages alone.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/hf
COPY rules/ /src/rules/
# The tiktoken BPE files unpack from bpe-openai (sha256-checked; at run time they go to
# /tmp), one embedding proves the model loads, then the shipped rules are validated
# and compiled (spaCy/Presidio included).
RUN python -c "from proxy.limits.tokens import install_encoding_file as f; f('o200k_base'); f('cl100k_base')" \
 && python -c "from proxy.embedding import load_default; load_default().encode(['warm up'])" \
 && guardrail-proxy rules check -q /src/rules

# --- runtime: the virtualenv and the rules, a non-root user, nothing else ---
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="guardrail-proxy" \
      org.opencontainers.image.description="Guardrail sidecar for LLM applications (OpenAI-compatible proxy)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 guardrail \
 && useradd --system --uid 10001 --gid guardrail --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin guardrail
COPY --from=build /opt/venv /opt/venv
COPY rules/ /app/rules/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/tmp/hf \
    GUARDRAIL_CACHE_DIR=/tmp/guardrail-cache \
    GUARDRAIL_RULES_DIR=/app/rules \
    GUARDRAIL_PORT=8080 \
    GUARDRAIL_RELOAD_INTERVAL_S=2
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GUARDRAIL_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["guardrail-proxy"]
CMD ["serve", "--host", "0.0.0.0"]
