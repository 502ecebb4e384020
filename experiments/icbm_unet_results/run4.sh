#!/bin/bash
set -x
cd /work/main
VG=.venv/bin/vesselgan; D=../shared/data/icbm-mra; O=out/u16
export VESSELGAN_NO_PROGRESS=1
M=$O/D_gauss
rm -rf $M; mkdir -p $M; cp $O/D_wide/unet.keras $O/D_wide/versions.json $M/
python3 - $M <<'PY'
import json, sys, yaml
m = sys.argv[1]
st = json.load(open('/work/main/out/u16/D_wide/run.json')); st.pop('tuned_threshold', None); st.pop('tuned_threshold_val_dice', None)
json.dump(st, open(f'{m}/run.json', 'w'), indent=2)
c = yaml.safe_load(open('/work/main/out/u16/D_wide/config.yaml'))
c['unet']['tile_weighting'] = 'gaussian'
yaml.safe_dump(c, open(f'{m}/config.yaml', 'w'))
PY
/usr/bin/time -v $VG evaluate --model $M --data $D --cases test --out $O/D_gauss_test --overwrite 2> $O/D_gauss.evaltime
echo DONE4
