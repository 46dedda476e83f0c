# File trees in /tmp: mkdir -p, touch, redirections, ls -R, find, cp -r,
# mv, ln -s, readlink, cat, rm -r, test, wc -c, chmod.
exec 2>&1
umask 022
W=/tmp/rse-file_tree
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

mkdir -p a/b/c a/d e
touch a/b/c/empty a/d/f1
echo hello > a/b/c/hello.txt
printf 'line1\nline2\n' > a/d/two.txt
seq 1 1000 > a/numbers
ln -s b/c/hello.txt a/link
ln -s ../a/d e/dlink
ls
ls -R a
ls -a a/b
find . | sort
find . -type f | sort
find . -type l | sort
find . -type d | sort
find . -name '*.txt' | sort
cat a/link
readlink a/link
cat e/dlink/two.txt
wc -c a/b/c/hello.txt a/d/two.txt a/numbers
cp -r a copy
find copy | sort
cmp a/numbers copy/numbers && echo same
mv copy/numbers copy/renamed
ls copy
mv copy moved
test -d copy || echo "copy is gone"
test -f moved/renamed && echo "moved/renamed exists"
test -L moved/link && echo "moved/link is a symlink"
cat moved/link
echo more >> a/b/c/hello.txt
cat a/b/c/hello.txt
cat a/b/c/hello.txt a/d/two.txt | wc -l
chmod 700 a/d/two.txt
test -x a/d/two.txt && echo "two.txt is executable"
chmod 644 a/d/two.txt
test -x a/d/two.txt || echo "two.txt is not executable"
rm a/d/f1
ls a/d
rm -r moved
rmdir a/b/c 2>/dev/null || echo "rmdir a/b/c failed: not empty"
rm a/b/c/*
rmdir a/b/c && echo "rmdir a/b/c ok"
mkdir -p deep/1/2/3/4/5/6/7/8/9
for i in 1 2 3 4 5 6 7 8 9; do echo "$i" > "deep/f$i"; done
find deep | sort | wc -l
cat deep/f* | tr '\n' ' '; echo
rm -r deep a e
ls -A
cd /; rm -rf "$W"
test -e "$W" || echo "work dir removed"
