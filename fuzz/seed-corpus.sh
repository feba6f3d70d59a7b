#!/usr/bin/env bash
# Build seed corpora from the recorded fixtures in ../shared/fixtures (kept out of git).
# Usage: fuzz/seed-corpus.sh   then   cargo +nightly fuzz run codec -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")"
fx=../../shared/fixtures
mkdir -p corpus/codec corpus/capture
python3 - "$fx" <<'PY'
import json, sys, os, hashlib
fx = sys.argv[1]
protos = {"binance-spot": 0, "coinbase-advanced": 1, "coinbase-exchange": 2, "kraken-v1": 4, "bitfinex-v2": 5}
for name, pick in protos.items():
    frames = []
    for line in open(os.path.join(fx, name + ".capture.jsonl")):
        r = json.loads(line)
        if r.get("t") == "recv" and len(r["data"]) < 20000:
            frames.append(r["data"])
        elif r.get("t") == "http" and len(r["data"]) < 200000:
            frames.append("HTTP" + r["data"])
    for i in range(0, len(frames), 20):
        blob = bytes([pick]) + "\n".join(frames[i:i + 20]).encode()
        h = hashlib.sha1(blob).hexdigest()
        open(f"corpus/codec/{name}-{h}", "wb").write(blob)
    head = open(os.path.join(fx, name + ".capture.jsonl")).read(50000).rsplit("\n", 1)[0]
    open(f"corpus/capture/{name}", "w").write(head + "\n")
PY
ls corpus/codec | wc -l
