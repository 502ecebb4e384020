#!/bin/bash
set -x
cd /work/main
VG=.venv/bin/vesselgan; D=../shared/data/icbm-mra; O=out/u16
export VESSELGAN_NO_PROGRESS=1
for v in gauss_tta; do
  M=$O/B_$v
  [ -f $O/B_${v}_test/summary.json ] && continue
  rm -rf $M; mkdir -p $M; cp $O/B_dicebce/unet.keras $O/B_dicebce/versions.json $M/
  python3 - $M $v <<'PY'
import json, sys, yaml
m, v = sys.argv[1], sys.argv[2]
st = json.load(open('/work/main/out/u16/B_dicebce/run.json')); st.pop('tuned_threshold', None); st.pop('tuned_threshold_val_dice', None)
json.dump(st, open(f'{m}/run.json', 'w'), indent=2)
c = yaml.safe_load(open('/work/main/out/u16/B_dicebce/config.yaml'))
c['unet']['tile_weighting'] = 'gaussian'; c['unet']['tta_flips'] = True
yaml.safe_dump(c, open(f'{m}/config.yaml', 'w'))
PY
  /usr/bin/time -v $VG evaluate --model $M --data $D --cases test --out $O/B_${v}_test --overwrite 2> $O/B_${v}.evaltime
done
echo DONE3
