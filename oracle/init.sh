#!/bin/sh
# oracle/init.sh: /init of the oracle's initramfs (docs/oracle.md). Mounts
# what the runner needs, loads the HMM test driver, replays the lowered traces
# in /traces/all.lt, writing results on the second serial port (ttyS1; the
# kernel's console is ttyS0), then powers the machine off.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
out=/dev/ttyS1
# Devices 2 and 3 are device-coherent: they need the special-purpose memory
# that the kernel command line's memmap=512M$0x100000000 sets aside.
if ! /bin/busybox insmod /test_hmm.ko spm_addr_dev0=0x100000000 spm_addr_dev1=0x110000000; then
  echo "@@HMMREF-ORACLE-ERROR insmod test_hmm.ko failed" >"$out"
elif [ ! -f /traces/all.lt ]; then
  echo "@@HMMREF-ORACLE-ERROR no /traces/all.lt in the initramfs" >"$out"
else
  /bin/runner "$out" /traces/all.lt || echo "@@HMMREF-ORACLE-ERROR runner exited $?" >"$out"
fi
/bin/busybox sync
/bin/busybox poweroff -f
