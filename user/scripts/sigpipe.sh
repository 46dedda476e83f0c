# Writers ended by SIGPIPE: yes | head, seq | head, and pipefail
# reporting 141 (128 + SIGPIPE).
exec 2>&1

yes | head -n 5
echo "status $?"
yes abc | head -c 20 | wc -c
seq 1 1000000 | head -n 3
set -o pipefail
yes | head -n 2 > /dev/null
echo "yes | head with pipefail: $?"
seq 1 10000000 | head -n 1 > /dev/null
echo "seq | head with pipefail: $?"
set +o pipefail
yes | head -n 100000 | tail -n 1
yes "a longer line of text to fill the pipe faster" | head -n 50000 | md5sum
sh -c 'yes | (exit 0); echo "inner: $?"'
( trap '' PIPE; yes 2>/dev/null | head -n 1 )
echo "done"
