#!/bin/bash
# #16 U-net recipe experiments on ICBM (4 train / 1 val / 2 test)
set -x
cd /work/main
VG=.venv/bin/vesselgan; D=../shared/data/icbm-mra; O=out/u16
export VESSELGAN_NO_PROGRESS=1
[ -d $O/p500 ] || $VG patches --data $D --out $O/p500 --config $O/base.yaml
[ -d $O/p250 ] || $VG patches --data $D --out $O/p250 --config $O/C_ratio.yaml
for v in A_old B_dicebce C_ratio D_wide; do
  P=$O/p500; [ $v = C_ratio ] && P=$O/p250
  [ -f $O/$v/unet.keras ] || { rm -rf $O/$v; /usr/bin/time -v $VG train-unet --train real --patches $P --out $O/$v --config $O/$v.yaml 2> $O/$v.time; }
  [ -f $O/${v}_test/summary.json ] || $VG evaluate --model $O/$v --data $D --cases test --out $O/${v}_test --overwrite
  [ $v = A_old ] && { [ -f $O/A_old_test_tuned/summary.json ] || { cp $O/A_tuned.yaml $O/A_old/config.yaml; $VG evaluate --model $O/A_old --data $D --cases test --out $O/A_old_test_tuned --overwrite; }; }
done
echo DONE
