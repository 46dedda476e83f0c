# Pipelines over generated data: seq, sort, uniq, awk, sed, grep, wc,
# tr, cut, head, tail, md5sum.
exec 2>&1
W=/tmp/rse-text_pipeline
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

seq 1 20000 > nums
wc -l < nums
md5sum < nums
seq 1 20000 | awk '{ s += $1 } END { print "sum", s }'
seq 20000 -1 1 | sort -n | md5sum
seq 1 5000 | sort -r | head -n 3
seq 1 5000 | sort | tail -n 3
seq 1 1000 | grep -c 7
seq 1 1000 | grep -v '[0-8]' | tr '\n' ' '; echo
seq 1 300 | grep -E '^(1|2)?[05]$' | wc -l
seq 1 100 | sed -n '10,15p' | tr '\n' ','; echo
seq 1 100 | sed 's/\([0-9]\)\([0-9]\)/\2\1/' | sort -n | tail -n 4
seq 1 50 | awk '$1 % 7 == 0 { printf "%d:%x:%o\n", $1, $1, $1 }'
seq 1 30000 | awk '{ print $1 % 97 }' | sort -n | uniq -c | sort -k1,1nr -k2,2n | head -n 5
printf 'banana\napple\ncherry\napple\nbanana\napple\n' | sort | uniq -c
printf 'the quick brown fox\njumps over\nthe lazy dog\n' | wc
printf 'the quick brown fox\njumps over\nthe lazy dog\n' | tr 'a-z' 'A-Z' | tr -d 'AEIOU'
printf 'a,b,c\n1,2,3\nx,y,z\n' | cut -d, -f2,3
printf 'one two three\n' | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "\n") }'
seq 1 100000 | md5sum
seq 1 100000 | tail -c 20
seq -w 1 12 | paste -s -d ' '
seq 1 2000 | awk 'NR % 3 == 0' | sed 's/$/ x/' | grep -c x
printf '%s\n' zeta alpha Mu beta | sort -f
printf '3 c\n1 a\n2 b\n1 z\n' | sort -k1,1n -k2,2r

cd /; rm -rf "$W"
