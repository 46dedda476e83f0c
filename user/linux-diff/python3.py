# python3 under differential test: threads (Lock, Condition, Queue,
# Barrier, Event, ThreadPoolExecutor), subprocess, json, hashlib, os.walk
# and file operations. Prints nothing that differs between two correct
# systems (no pids, times, inode numbers, CPU counts, readdir order).
import concurrent.futures
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading

print("python", sys.version_info[:3])

# --- threading -------------------------------------------------------
total = 0
lock = threading.Lock()


def part(i):
    global total
    s = sum(x * x for x in range(i * 20000, (i + 1) * 20000))
    with lock:
        total += s


ts = [threading.Thread(target=part, args=(i,)) for i in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("threads sum", total, total == sum(x * x for x in range(80000)))

q = queue.Queue(maxsize=4)
got = []


def producer(base):
    for i in range(50):
        q.put(base + i)


def consumer():
    while True:
        v = q.get()
        if v is None:
            break
        got.append(v)


cons = [threading.Thread(target=consumer) for _ in range(2)]
prods = [threading.Thread(target=producer, args=(b,)) for b in (0, 1000, 2000)]
for t in cons + prods:
    t.start()
for t in prods:
    t.join()
for _ in cons:
    q.put(None)
for t in cons:
    t.join()
print("queue", len(got), sum(got), sorted(got)[:3], sorted(got)[-3:])

cond = threading.Condition()
turn = [0]
order = []


def pinger(me, rounds):
    for _ in range(rounds):
        with cond:
            cond.wait_for(lambda: turn[0] % 2 == me)
            order.append(me)
            turn[0] += 1
            cond.notify_all()


pp = [threading.Thread(target=pinger, args=(m, 20)) for m in (0, 1)]
for t in pp:
    t.start()
for t in pp:
    t.join()
print("condition", "".join(map(str, order)))

barrier = threading.Barrier(3)
ev = threading.Event()
passed = []


def at_barrier(i):
    barrier.wait()
    ev.wait(timeout=30)
    with lock:
        passed.append(i)


bs = [threading.Thread(target=at_barrier, args=(i,)) for i in range(3)]
for t in bs:
    t.start()
ev.set()
for t in bs:
    t.join()
print("barrier", sorted(passed), threading.active_count())

local = threading.local()


def tls(i):
    local.v = i * 7
    return local.v


with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
    print("pool", list(ex.map(tls, range(8))))

# --- subprocess ------------------------------------------------------
r = subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"],
                   capture_output=True, text=True)
print("run", r.returncode, repr(r.stdout), repr(r.stderr))
r = subprocess.run(["sort", "-r"], input="b\na\nc\n", capture_output=True,
                   text=True, check=True)
print("sort", repr(r.stdout))
p = subprocess.Popen(["sh", "-c", "read x; echo got $x; kill -TERM $$"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
out, _ = p.communicate("hello\n")
print("popen", repr(out), p.returncode)
print("check_output", subprocess.check_output("echo $((6*7))", shell=True))
try:
    subprocess.run(["/nonexistent/prog"])
except FileNotFoundError as e:
    print("missing", e.errno, e.strerror)
p1 = subprocess.Popen(["seq", "1", "100"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
print("pipeline", p2.communicate()[0].strip(), p1.wait(), p2.returncode)

# --- json ------------------------------------------------------------
doc = {"name": "rse", "n": [1, 2.5, -3, 10**20], "nested": {"t": True,
       "f": False, "none": None}, "text": "caf\u00e9 \u2603 \"q\"\n"}
s = json.dumps(doc, sort_keys=True)
print("json", s)
print("json indent", json.dumps(doc, sort_keys=True, indent=2,
                                ensure_ascii=False).count("\n"))
back = json.loads(s)
print("json roundtrip", back == doc)
try:
    json.loads('{"a": [1, 2,, 3]}')
except json.JSONDecodeError as e:
    print("json error", e.msg, e.lineno, e.colno)

# --- hashlib ---------------------------------------------------------
data = b"".join(b"line %d\n" % i for i in range(10000))
for name in ("md5", "sha1", "sha256", "sha512", "blake2b", "sha3_256"):
    print("hash", name, hashlib.new(name, data).hexdigest())
h = hashlib.sha256()
for i in range(0, len(data), 4096):
    h.update(data[i:i + 4096])
print("hash chunks", h.hexdigest() == hashlib.sha256(data).hexdigest())
print("pbkdf2", hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000).hex())

# --- os.walk and files -----------------------------------------------
root = "/tmp/pydiff"
shutil.rmtree(root, ignore_errors=True)
for d in ("a/b/c", "a/d", "e"):
    os.makedirs(os.path.join(root, d))
for i, rel in enumerate(("a/x.txt", "a/b/y.txt", "a/b/c/z.bin", "e/w.txt")):
    with open(os.path.join(root, rel), "wb") as f:
        f.write(data[: 1000 * (i + 1)])
os.symlink("x.txt", os.path.join(root, "a/link"))
os.rename(os.path.join(root, "e/w.txt"), os.path.join(root, "e/v.txt"))
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    rel = os.path.relpath(dirpath, root)
    sizes = [(f, os.lstat(os.path.join(dirpath, f)).st_size)
             for f in sorted(filenames)]
    print("walk", rel, dirnames, sizes)
print("readlink", os.readlink(os.path.join(root, "a/link")),
      os.path.realpath(os.path.join(root, "a/link")))
st = os.stat(os.path.join(root, "a/x.txt"))
print("stat", oct(st.st_mode), st.st_size, st.st_nlink)
with open(os.path.join(root, "a/x.txt"), "r+b") as f:
    f.seek(5)
    f.write(b"XY")
    f.seek(0)
    print("rw", f.read(12))
    f.truncate(100)
print("truncated", os.path.getsize(os.path.join(root, "a/x.txt")))
fd = os.open(os.path.join(root, "new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
os.write(fd, b"abc")
os.close(fd)
try:
    os.open(os.path.join(root, "new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
except FileExistsError as e:
    print("excl", e.errno)
print("mode", oct(os.stat(os.path.join(root, "new")).st_mode & 0o777))
r, w = os.pipe()
os.write(w, b"through a pipe")
os.close(w)
print("pipe", os.read(r, 100))
shutil.rmtree(root)
print("removed", os.path.exists(root))
