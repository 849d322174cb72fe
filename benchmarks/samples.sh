#!/usr/bin/env bash
# Reruns the figures of docs/results.md "Samples, control and anomalies": the judge classifiers, every family
# on the zoo_mnist preset, the VQ-VAE's learned prior, then FID, conditional accuracy and OOD AUROC
# (MNIST against Fashion-MNIST) for every job. CPU-heavy: hours on 2 shared cores; nice'd, 1 thread.
#   DATA=/path/to/data RUNS=/tmp/zoo EPOCHS=40 bash benchmarks/samples.sh
set -euo pipefail
DATA=${DATA:-data}
RUNS=${RUNS:-runs/samples}
EPOCHS=${EPOCHS:-40}
PY=${PYTHON:-python}
run() { nice -n 10 "$PY" "$@"; }

run -m vaezoo.classifier dataset=mnist paths.data="$DATA" num_threads=1
run -m vaezoo.classifier dataset=fashion_mnist paths.data="$DATA" num_threads=1
run -m vaezoo -m experiment=zoo_mnist model=vanilla,cvae,hvae,vqvae trainer.max_epochs="$EPOCHS" \
  hardware=cpu hardware.num_threads=1 eval.ood_dataset=fashion_mnist logger=csv \
  paths.runs="$RUNS" paths.data="$DATA"
sweep=$(ls -td "$RUNS"/multirun/*/ | head -1)
vqvae=$(ls -d "$sweep"*model=vqvae* | head -1)
run -m vaezoo.prior run="$vqvae" trainer.max_epochs=5 logger=csv hardware=cpu
# The prior makes the VQ-VAE a sampler: evaluate every job again with the sample metrics.
run -m vaezoo.evaluate run="$sweep" "eval.metrics=[fid,conditional_accuracy,ood_auroc]" \
  eval.ood_dataset=fashion_mnist wandb=false
run -m vaezoo.table "$sweep" || true
for job in "$sweep"*/; do
  "$PY" - "$job" <<'PYEOF'
import json, sys
from pathlib import Path
job = Path(sys.argv[1]); results = json.loads((job / "results.json").read_text())
m = results.get("metrics", {})
def v(name, key):
    entry = m.get(name, {})
    return entry.get("values", {}).get(key, entry.get("skipped", "-"))
print(results["model"], "| FID", v("fid", "distance"), "| cond. acc.", v("conditional_accuracy", "accuracy"),
      "| AUROC -ELBO", v("ood_auroc", "neg_elbo"), "| AUROC KL", v("ood_auroc", "kl"))
PYEOF
done
