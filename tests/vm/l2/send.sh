#!/bin/sh
# Send FILE to L1 through the virtio-serial port rkvm.out (/dev/rkvm-out,
# made by /init); typed as `/l2/send.sh FILE` by scripts/l2-boot.sh.
# Prints "RKVM-L2-VIRTIO-RC <status>".
test -c /dev/rkvm-out && cat "$1" > /dev/rkvm-out
echo "RKVM-L2-VIRTIO-RC $?"
