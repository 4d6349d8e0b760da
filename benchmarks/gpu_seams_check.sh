#!/usr/bin/env bash
# Issue 39's learning checks on the GPU machine, in one call (see ../shared/gpu/README.md):
# the previous main (.gpu/old: a wheel of jarob at that commit) and this one, side by side with
# the same seeds: default QMIX and VDN (3 seeds x 1M env steps), ATSA-trained QMIX (3 seeds x
# 500k); IQL (3 seeds x 1M); QMIX NoAdv (2M) and FGSM-trained (3M) teams, 3 seeds each, then
# evaluated against malicious agents at rates 0.03 and 0.05. All runs share the GPU, each in
# its own process, at most four at a time: nine at once time-slice the GPU so badly (about 11k env
# steps/s each) that they outlast a call (measured 2026-12-04). Summaries and teams go to $OUT.
set -u
. .gpu/setup.sh >/dev/null || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_old .gpu/old/*.whl || exit 1
cd /tmp  # not the project root: its jarob/ source folder would shadow the installed wheels
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
R=/tmp/runs; mkdir -p $R $OUT/runs
common="progress=false tensorboard=false seeds=3"
run() {  # run <name> <pythonpath> <args...>
  local name=$1 path=$2; shift 2
  ( PYTHONPATH=$path timeout 400 python3 -m jarob.train $common run_dir=$R/$name "$@" > $OUT/$name.log 2>&1
    echo "exit $?" >> $OUT/$name.log
    mkdir -p $OUT/runs/$name; cp $R/$name/summary.json $R/$name/config.yaml $R/$name/metrics.csv $R/$name/team.msgpack $R/$name/adversary.msgpack $OUT/runs/$name/ 2>/dev/null ) &
}
OLD=/tmp/site_old:/tmp/site NEW=/tmp/site
run old_qmix $OLD total_steps=1000000
run new_qmix $NEW total_steps=1000000
run old_vdn $OLD alg=vdn total_steps=1000000
run new_vdn $NEW alg=vdn total_steps=1000000
wait
run old_atsa $OLD adv=atsa total_steps=500000
run new_atsa $NEW adv=atsa total_steps=500000
run new_iql $NEW alg=iql total_steps=1000000
wait
run noadv $NEW total_steps=2000000
run fgsm $NEW adv=fgsm total_steps=3000000
wait
PYTHONPATH=$NEW timeout 150 python3 -m jarob.evaluate "runs=[$R/noadv,$R/fgsm]" "adversaries=[none,'malicious:rate=0.03','malicious:rate=0.05','malicious:rate=0.05,mode=random']" episodes=500 out=$OUT/malicious progress=false > $OUT/malicious.log 2>&1
echo "exit $?" >> $OUT/malicious.log
nvidia-smi --query-gpu=name,memory.used --format=csv > $OUT/gpu.txt 2>&1
