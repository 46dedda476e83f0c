# A running program whose file is removed keeps running: its pages come
# in from the file on demand (execve maps the binary lazily), so the
# kernel must keep the file's data until the last mapping goes.
exec 2>&1

d=/tmp/rse-exec_unlinked
rm -rf "$d"
mkdir "$d" || exit 1
cp /bin/busybox "$d/busybox" || exit 1
"$d/busybox" sh -c '
    rm "$0"
    [ -e "$0" ] || echo "binary unlinked"
    i=0
    while [ $i -lt 5 ]; do i=$((i + 1)); done
    printf "%s %d %x\n" "still running" $i 3054
    echo "sum of 1..100: $(seq 100 | awk "{ s += \$1 } END { print s }")"
' "$d/busybox"
echo "status $?"
rm -rf "$d"
