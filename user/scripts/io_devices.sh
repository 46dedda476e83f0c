# I/O: /dev/null, /dev/zero, /dev/urandom (length only), dd, head -c,
# od, cmp, large redirections, appends, here-strings through pipes.
exec 2>&1
W=/tmp/rse-io_devices
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

echo discarded > /dev/null; echo "null: $?"
wc -c < /dev/null
head -c 1000000 /dev/zero | wc -c
head -c 4096 /dev/zero | md5sum
dd if=/dev/zero bs=1024 count=300 2>/dev/null | md5sum
head -c 1000 /dev/urandom | wc -c
dd if=/dev/urandom of=rand bs=512 count=8 2>/dev/null; wc -c < rand
printf 'ABC\001\377' | od -An -tx1
printf 'hello world\n' | od -c
seq 1 200000 > big
wc -c < big
cat big big big > big3
wc -c < big3
md5sum < big3
tail -c 100000 big3 | md5sum
cp big copy && cmp big copy && echo "copy identical"
printf 'x' >> copy
cmp -s big copy || echo "differs after append"
dd if=big of=part bs=1000 skip=10 count=5 2>/dev/null; md5sum < part
: > empty; wc -c < empty
exec 3> fd3.txt; echo "via fd 3" >&3; exec 3>&-; cat fd3.txt
exec 4< big; read -r first <&4; read -r second <&4; exec 4<&-; echo "$first $second"
{ echo a; echo b >&2; echo c; } 2>&1 | sort
yes 0123456789 | head -c 1048576 | md5sum

cd /; rm -rf "$W"
