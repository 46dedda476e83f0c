# awk-generated data (a deterministic LCG) through sort, uniq, join,
# awk reports and md5sum; floating-point formatting by awk.
exec 2>&1
W=/tmp/rse-awk_data
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

awk 'BEGIN {
    x = 12345
    for (i = 1; i <= 20000; i++) {
        x = (x * 75 + 74) % 65537
        printf "%d,user%03d,%d.%02d\n", i, x % 500, x % 1000, x % 100
    }
}' > data.csv
wc -l < data.csv
md5sum < data.csv
head -n 3 data.csv
tail -n 2 data.csv
cut -d, -f2 data.csv | sort | uniq -c | sort -k1,1nr -k2 | head -n 5
sort -t, -k3,3n -k1,1n data.csv | head -n 4
sort -t, -k3,3nr -k1,1n data.csv | md5sum
awk -F, '{ n[$2]++; s[$2] += $3 } END { for (k in n) printf "%s %d %.2f\n", k, n[k], s[k] / n[k] }' data.csv | sort | md5sum
awk -F, '{ s += $3 } END { printf "total %.2f mean %.4f\n", s, s / NR }' data.csv
awk -F, '$3 > 990 { c++ } END { print c + 0 }' data.csv
awk -F, '{ print $2 }' data.csv | sort -u | wc -l
awk 'BEGIN { for (i = 0; i < 12; i++) printf "%.3f %e %g\n", i / 7, i * 1234.5, 2 ^ i }'
awk 'BEGIN { print length("hello"), substr("hello world", 7), index("abc", "c"), toupper("x") tolower("Y") }'
awk 'BEGIN { s = "a-b-c-d"; n = split(s, p, "-"); print n, p[1], p[n]; gsub("-", "+", s); print s }'
cut -d, -f2 data.csv | sort -u > users
awk -F, '$1 <= 40 { print $2 }' data.csv | sort -u > some
grep -Fxf some users | wc -l
grep -Fvxf some users | head -n 3
grep -c ',user00[0-9],' data.csv
grep -n ',user499,' data.csv | head -n 2
sed -n '/,user123,/{s/,.*//;p}' data.csv | tr '\n' ' '; echo

cd /; rm -rf "$W"
