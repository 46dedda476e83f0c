# GNU coreutils, grep, sed, gawk and findutils under differential test.
# Run by bash: busybox sh would run its own applets for sort, grep, sed…
# (Debian's static busybox prefers them to PATH), bash runs the GNU
# programs the packages put over the applet links. Prints nothing that differs
# between two correct systems: no times, inode numbers, block counts or
# readdir order (find output is sorted).
d=/tmp/cudiff
rm -rf $d && mkdir -p $d/src/lib/deep $d/src/bin $d/empty && cd $d || exit 1
sort --version | head -1
grep --version | head -1
sed --version | head -1
gawk --version | head -1
find --version | head -1

# coreutils: seq, sort, uniq, wc, cut, tr, head, tail, checksums, ...
seq 1 2000 > nums
seq -w 0 3 20 | tr '\n' ' '; echo
seq 5 -1 1 | paste -sd+ -
sort -n -r nums | head -3
sort nums | tail -n 2
tail -c 15 nums | od -c | head -2
head -c 20 nums | wc -c
for i in $(seq 1 300); do echo "w$((i * i % 17)) g$((i % 4))"; done > pairs
sort pairs | uniq -c | sort -k1,1nr -k2 | head -5
cut -d' ' -f2 pairs | sort | uniq -c
sort -t' ' -k2,2 -k1,1V -u pairs | head -4
sort -u pairs | wc -l
wc nums pairs
wc -l < nums
echo 'Hello, World: 123' | tr 'a-z' 'A-Z'
echo 'aaabbbccc   ddd' | tr -s 'a-z '
echo 'strip 1 the 2 digits 3' | tr -d '0-9'
echo 'root:x:0:0:root:/root:/bin/sh' | cut -d: -f1,6-
echo 'abcdefghij' | cut -c2-4,8-
md5sum nums pairs
sha256sum nums
sha1sum pairs
sha512sum nums | cut -c1-32
md5sum nums pairs > sums && md5sum -c sums
b2sum -l 128 nums
cksum nums
printf 'b 2\na 1\nc 3\n' > x1; printf 'a A\nb B\nd D\n' > x2
join x1 x2
comm -12 x1 x2; paste x1 x2
tac x1; nl -ba x1; fold -w 5 nums | head -3 | tr '\n' ' '; echo
echo 'hello base64 world' | base64 | tee b64 && base64 -d b64
numfmt --to=iec 1048576 123456789; factor 360 9973 1234567
expr 7 \* 6; expr length abcdef; basename /a/b/c.txt .txt; dirname /a/b/c.txt
printf '%5.2f|%-4s|%04x|%s\n' 3.14159 ab 255 "$(echo nested)"
date -u -d @86400000 '+%Y-%m-%d %H:%M:%S %A'
yes abc | head -3
dd if=/dev/zero bs=1k count=64 2>/dev/null | md5sum
dd if=nums of=part bs=100 skip=2 count=3 2>/dev/null; wc -c < part
split -l 700 nums chunk. && ls chunk.* && cat chunk.* | cmp - nums && echo split-ok
truncate -s 1000 part; stat -c '%s %a %F' part
ln -s nums link; readlink link; realpath link; stat -L -c %s link
cp -r src copy; mv copy moved; ls -R moved
chmod 640 nums; stat -c '%a %U %G' nums
env -i A=1 B=2 env | sort
test -f nums && [ -d src ] && echo tests-ok
sleep 0.1; echo slept
cat /dev/null nums | md5sum

# files for find and grep
printf 'alpha\nbeta\nGamma delta\n' > src/a.txt
printf 'int main() { return 0; }\n/* alpha */\n' > src/lib/m.c
printf 'alpha beta alpha\nALPHA\n' > src/lib/deep/n.txt
printf '#!/bin/sh\necho tool\n' > src/bin/tool && chmod 755 src/bin/tool
printf 'nothing here\n' > src/bin/other.txt

# findutils
find src -name '*.txt' -type f | sort
find src -type d | sort
find . -maxdepth 1 -type f -name 'x*' | sort
find src -type f -perm -u+x
find src -type f -size -1k -name '*.c' -exec wc -l {} \;
find src -name '*.txt' -exec grep -l alpha {} + | sort
find src -type f -printf '%P %s %m\n' | sort
find src -empty; find . -path ./moved -prune -o -name '*.c' -print | sort
find src -name '*.txt' -print0 | sort -z | xargs -0 cat | wc -l
seq 1 10 | xargs -n 3 echo
echo 'a b c d' | xargs -n 2 printf '[%s %s]\n'

# grep
grep -r alpha src | sort
grep -ri alpha src | sort
grep -rc alpha src | sort
grep -rl --include='*.txt' alpha src | sort
grep -n -w beta src/a.txt src/lib/deep/n.txt
grep -o 'al[a-z]*' src/lib/deep/n.txt
grep -v -e alpha -e beta src/a.txt
grep -E '^(alpha|ALPHA)$' -r src | sort
grep -c '' nums; grep -x 1999 nums; grep -F -q 'a.b' src/a.txt; echo "grep-q $?"
grep nosuch nums; echo "grep-none $?"
grep alpha /nonexistent 2>&1; echo "grep-missing $?"

# sed
sed 's/alpha/OMEGA/g' src/lib/deep/n.txt
sed -n '/^1[0-2]$/p' nums
sed -E 's/([a-z]+) ([a-z]+)/\2 \1/' src/a.txt
sed -e '1d' -e '$s/$/ (last)/' src/a.txt
sed '3,1995d' nums | tr '\n' ' '; echo
sed 'y/abc/xyz/' src/a.txt
sed -n '$=' nums
cp src/a.txt edit.txt && sed -i 's/beta/BETA/; /Gamma/i inserted' edit.txt && cat edit.txt
printf 'one\ntwo\nthree\n' | sed -n 'h;n;G;p'
printf 'key=val\n' | sed 's/\(.*\)=\(.*\)/\2=\1/'

# gawk: arrays, printf, functions, sorting
gawk '{ c[$2]++; s[$2] += substr($1, 2) } END {
  PROCINFO["sorted_in"] = "@ind_str_asc"
  for (k in c) printf "%-3s %3d %6.2f\n", k, c[k], s[k] / c[k] }' pairs
gawk -F: '{ print NF, $1, toupper($NF) }' /etc/passwd
gawk 'BEGIN { n = split("z y x w", a); asort(a); for (i = 1; i <= n; i++) printf "%s ", a[i]; print "" }'
gawk 'function fib(n) { return n < 2 ? n : fib(n-1) + fib(n-2) } BEGIN { print fib(20) }'
gawk '{ gsub(/a/, "4"); print NR ": " $0 }' src/a.txt
gawk 'NR % 500 == 0 { sum += $1 } END { printf "%d %.3e %x %o %c\n", sum, sum, sum, sum, 65 }' nums
gawk 'BEGIN { printf "%5.1f|%-6s|%06d|%s\n", 2.25, "ab", 42, sprintf("%03d", 7) }'
gawk 'BEGIN { s = "hello world"; print length(s), index(s, "wor"), match(s, /o w/), RSTART, RLENGTH; print gensub(/(o)/, "[\\1]", "g", s) }'
gawk 'BEGIN { while (("seq 3" | getline l) > 0) t += l; close("seq 3"); print "getline", t; print "to-cmd" | "cat"; close("cat") }'
gawk 'BEGIN { x["a"] = 1; delete x["a"]; print length(x), ("a" in x) ; print 2^53, int(-3.7), 7 % 3, srand(1) >= 0 }'

cd / && rm -rf $d
echo done
