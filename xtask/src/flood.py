# The host side of `net_tap_syn_flood_malformed_frames` (xtask), run
# inside the scenario's network namespace: legitimate GETs from the
# namespace's own address, and raw frames written to the bridge: a SYN
# flood from spoofed addresses that never answer, then malformed frames
# of every layer. Prints one line per step; exits 1 on a failed GET.
import random, socket, struct, sys, time

IFACE, GUEST, GUEST_MAC, SYNS, BAD = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(14)
mac = bytes.fromhex(GUEST_MAC.replace(":", ""))
src_mac = bytes.fromhex("020000000001")
gip = socket.inet_aton(GUEST)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, proto, payload, ihl=5, total=None, frag=0x4000, ok=True):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, rnd.randrange(65536), frag, 64, proto, 0, src, gip)
    if ok:
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def tcp(src, sport, dport, flags, seq=None, ack=0, off=5, data=b"", ok=True):
    seq = rnd.randrange(1 << 32) if seq is None else seq
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 64240, 0, 0) + data
    if ok:
        ph = src + gip + struct.pack("!BBH", 0, 6, len(t))
        t = t[:16] + struct.pack("!H", csum(ph + t)) + t[18:]
    return t


def eth(payload, ty=0x0800):
    return mac + src_mac + struct.pack("!H", ty) + payload


def spoofed():
    return bytes([10, 77, rnd.randrange(1, 250), rnd.randrange(1, 254)])


def get(path, timeout):
    t = time.time()
    s = socket.create_connection((GUEST, 80), timeout=timeout)
    s.settimeout(timeout)
    s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data, time.time() - t


def must_get(what, timeout):
    try:
        data, took = get("/index.html", timeout)
    except OSError as e:
        print("FAIL %s: %s" % (what, e), flush=True)
        sys.exit(1)
    if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\r\n")[0] or not data.endswith(b"flood-test-page\n"):
        print("FAIL %s: got %r" % (what, data[:200]), flush=True)
        sys.exit(1)
    print("GET %s ok in %.1f s" % (what, took), flush=True)


def done():
    # The guest waits on port 9 to take its after-snapshot.
    try:
        socket.create_connection((GUEST, 9), timeout=60).close()
    except OSError as e:
        print("port 9: %s" % e, flush=True)


raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((IFACE, 0))
try:
    must_get("before the flood", 60)
except SystemExit:
    done()
    raise

t = time.time()
for i in range(SYNS):
    src = spoofed()
    raw.send(eth(ip4(src, 6, tcp(src, rnd.randrange(1024, 65536), 80, 0x02))))
    if i % 200 == 199:
        time.sleep(0.01)
print("sent %d SYNs from spoofed addresses in %.1f s" % (SYNS, time.time() - t), flush=True)

good = tcp(b"\x0a\x4d\x00\x01", 40000, 80, 0x02)
kinds = {}
def bad(kind, frame):
    kinds[kind] = kinds.get(kind, 0) + 1
    try:
        raw.send(frame)
    except OSError:  # past the bridge's MTU: the host refuses it
        kinds[kind + " (refused by the host)"] = kinds.get(kind + " (refused by the host)", 0) + 1

for i in range(BAD):
    src = spoofed()
    k = i % 14
    if k == 0:  # truncated anywhere in a valid SYN frame
        f = eth(ip4(src, 6, tcp(src, 1234, 80, 0x02)))
        bad("truncated", f[: rnd.randrange(14, len(f))])
    elif k == 1:  # IHL below 5
        bad("ihl<5", eth(ip4(src, 6, good, ihl=rnd.randrange(0, 5))))
    elif k == 2:  # IHL past the packet
        bad("ihl>len", eth(ip4(src, 6, b"", ihl=15)))
    elif k == 3:  # total length past the frame / below the header
        bad("totlen", eth(ip4(src, 6, good, total=rnd.choice([0, 3, 19, 1500, 65535]))))
    elif k == 4:  # bad IP checksum
        bad("ip csum", eth(ip4(src, 6, tcp(src, 1234, 80, 0x02), ok=False)))
    elif k == 5:  # bad TCP checksum
        bad("tcp csum", eth(ip4(src, 6, tcp(src, 1234, 80, 0x02, ok=False))))
    elif k == 6:  # TCP data offset out of range
        bad("tcp off", eth(ip4(src, 6, tcp(src, 1234, 80, 0x02, off=rnd.choice([0, 1, 4, 15])))))
    elif k == 7:  # every flag at once, and FIN/RST/ACK to nothing
        bad("tcp flags", eth(ip4(src, 6, tcp(src, 1234, 80, rnd.choice([0x3F, 0x01, 0x04, 0x10, 0x03, 0x06])))))
    elif k == 8:  # fragments (more-fragments set, and an offset)
        bad("fragment", eth(ip4(src, 6, tcp(src, 1234, 80, 0x02), frag=rnd.choice([0x2000, 0x0010, 0x2FFF]))))
    elif k == 9:  # garbage IPv4, ARP and IPv6
        ty = rnd.choice([0x0800, 0x0806, 0x86DD])
        bad("garbage", eth(bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200))), ty))
    elif k == 10:  # short or odd ARP
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + src + b"\0" * 6 + gip
        bad("arp", eth(arp[: rnd.randrange(0, len(arp) + 1)] if i % 28 == 10 else arp.replace(b"\x06\x04", bytes([rnd.randrange(256), rnd.randrange(256)]), 1), 0x0806))
    elif k == 11:  # UDP with lengths that lie, to DHCP's and other ports
        u = struct.pack("!HHHH", 67, rnd.choice([68, 53, 9, 80]), rnd.choice([0, 7, 9, 4000]), 0) + bytes(rnd.randrange(256) for _ in range(20))
        bad("udp", eth(ip4(src, 17, u)))
    elif k == 12:  # ICMP: echo with a bad checksum, short, and odd types
        ic = bytes([rnd.choice([8, 0, 3, 11, 5, 255]), 0, 0, 0]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
        bad("icmp", eth(ip4(src, 1, ic[: rnd.randrange(0, len(ic) + 1)])))
    else:  # oversized: jumbo frame past the MTU
        bad("oversized", eth(ip4(src, 6, tcp(src, 1234, 80, 0x18, data=b"x" * 1600))))
    if i % 200 == 199:
        time.sleep(0.01)
print("sent %d malformed frames: %s" % (BAD, ", ".join("%s %d" % kv for kv in sorted(kinds.items()))), flush=True)

# The flood's half-open connections time out; a legitimate client's SYNs
# are dropped meanwhile and resent: it gets in.
try:
    must_get("after the flood", 120)
finally:
    done()
