//! The sockets ABI: socket(2), socketpair(2), bind, listen, accept(4),
//! connect, shutdown, get{sock,peer}name, {get,set}sockopt, sendto,
//! recvfrom, sendmsg, recvmsg, and read/write/readv/writev on sockets.
//! Family-independent: user memory (addresses, iovecs, control messages)
//! is copied here and the family ([`crate::net::socket::Socket`]) sees
//! kernel buffers.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::fs::file::{self, Kind, OpenFile};
use crate::net::mem::InFlight;
use crate::net::socket::{self as sk, Ancillary, Socket, Ucred};
use crate::proc::sched::current;
use crate::uaccess;

/// sockaddr_storage: the largest address a call takes.
const MAX_ADDR: usize = 128;
/// Most iovecs in one call (UIO_MAXIOV).
const MAX_IOV: u64 = 1024;
/// Most control bytes sendmsg takes (Linux's optmem_max is 20480).
const MAX_CONTROL: u64 = 20480;
/// Most descriptors one SCM_RIGHTS message carries (SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;
/// A stream send copies user data through a kernel buffer this large.
const SEND_CHUNK: usize = 64 * 1024;
/// Most bytes one receive hands over (the queue holds less anyway).
const RECV_MAX: usize = 1 << 20;

fn socket_of(fd: u64) -> KResult<(Arc<OpenFile>, Arc<dyn Socket>)> {
    let f = current().files().lock().get(fd as i32)?;
    let s = f.socket().ok_or(Errno::ENOTSOCK)?.clone();
    Ok((f, s))
}

/// `flags` plus MSG_DONTWAIT if the file is non-blocking.
fn with_nonblock(f: &OpenFile, flags: u32) -> u32 {
    if f.nonblock() {
        flags | sk::MSG_DONTWAIT
    } else {
        flags
    }
}

fn install(s: Arc<dyn Socket>, flags: u32) -> KResult<i32> {
    let f = OpenFile::new(Kind::Socket(s), file::O_RDWR | (flags & file::O_NONBLOCK));
    current()
        .files()
        .lock()
        .insert(f, flags & file::O_CLOEXEC != 0)
}

/// Splits socket(2)'s type into the type and SOCK_NONBLOCK|SOCK_CLOEXEC.
fn split_type(ty: u64) -> KResult<(u32, u32)> {
    let ty = ty as u32;
    let flags = ty & !sk::SOCK_TYPE_MASK;
    // Linux: unknown flags, or a type past SOCK_PACKET (SOCK_MAX 11).
    if flags & !(file::O_NONBLOCK | file::O_CLOEXEC) != 0 || ty & sk::SOCK_TYPE_MASK >= 11 {
        return Err(Errno::EINVAL);
    }
    Ok((ty & sk::SOCK_TYPE_MASK, flags))
}

/// socket(2).
pub fn socket(domain: u64, ty: u64, proto: u64) -> KResult<u64> {
    let (ty, flags) = split_type(ty)?;
    let s = sk::create(domain as u32, ty, proto as u32)?;
    install(s, flags).map(|fd| fd as u64)
}

/// socketpair(2).
pub fn socketpair(domain: u64, ty: u64, proto: u64, sv: u64) -> KResult<u64> {
    let (ty, flags) = split_type(ty)?;
    let [a, b] = sk::pair(domain as u32, ty, proto as u32)?;
    let fa = install(a, flags)?;
    let fb = match install(b, flags) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = current().files().lock().remove(fa);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fa.to_le_bytes());
    out[4..].copy_from_slice(&fb.to_le_bytes());
    if let Err(e) = uaccess::copy_out(sv, &out) {
        let files = current().files();
        let mut t = files.lock();
        let (x, y) = (t.remove(fa), t.remove(fb));
        drop(t);
        drop((x, y));
        return Err(e);
    }
    Ok(0)
}

/// A sockaddr from user memory (EINVAL beyond sockaddr_storage).
fn read_addr(ptr: u64, len: u64) -> KResult<Vec<u8>> {
    if len as i32 as i64 != len as i64 || (len as i32) < 0 || len as usize > MAX_ADDR {
        return Err(Errno::EINVAL);
    }
    uaccess::read_vec(ptr, len as usize)
}

/// Writes an address out as accept/getsockname/recvfrom do: at most
/// `*lenp` bytes of it, and its full length to `*lenp`.
fn write_addr(addr: &[u8], ptr: u64, lenp: u64) -> KResult<()> {
    if ptr == 0 || lenp == 0 {
        return Ok(());
    }
    let room = uaccess::read_u32(lenp)? as i32;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = addr.len().min(room as usize);
    uaccess::copy_out(ptr, &addr[..n])?;
    uaccess::write_u32(lenp, addr.len() as u32)
}

/// bind(2).
pub fn bind(fd: u64, addr: u64, len: u64) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    let a = read_addr(addr, len)?;
    s.bind(&a).map(|()| 0)
}

/// listen(2).
pub fn listen(fd: u64, backlog: u64) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    s.listen(backlog as i32).map(|()| 0)
}

/// accept4(2) (accept(2) with flags 0).
pub fn accept4(fd: u64, addr: u64, lenp: u64, flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if flags & !(file::O_NONBLOCK | file::O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = socket_of(fd)?;
    let new = s.accept(with_nonblock(&f, 0))?;
    let peer = new.peer_name().unwrap_or_default();
    let nfd = install(new, flags)?;
    if let Err(e) = write_addr(&peer, addr, lenp) {
        let g = current().files().lock().remove(nfd);
        drop(g);
        return Err(e);
    }
    Ok(nfd as u64)
}

/// connect(2).
pub fn connect(fd: u64, addr: u64, len: u64) -> KResult<u64> {
    let (f, s) = socket_of(fd)?;
    let a = read_addr(addr, len)?;
    s.connect(&a, with_nonblock(&f, 0)).map(|()| 0)
}

/// shutdown(2).
pub fn shutdown(fd: u64, how: u64) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    s.shutdown(how as u32).map(|()| 0)
}

/// getsockname(2) / getpeername(2).
pub fn getname(fd: u64, addr: u64, lenp: u64, peer: bool) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    let a = if peer {
        s.peer_name()?
    } else {
        s.local_name()?
    };
    write_addr(&a, addr, lenp).map(|()| 0)
}

/// getsockopt(2).
pub fn getsockopt(fd: u64, level: u64, name: u64, val: u64, lenp: u64) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    let room = uaccess::read_u32(lenp)? as i32;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let v = if level as u32 == sk::SOL_SOCKET && name as u32 == sk::SO_DOMAIN {
        sk::int_opt(s.family() as i32)
    } else {
        s.getsockopt(level as u32, name as u32)?
    };
    let n = v.len().min(room as usize);
    uaccess::copy_out(val, &v[..n])?;
    uaccess::write_u32(lenp, n as u32).map(|()| 0)
}

/// setsockopt(2).
pub fn setsockopt(fd: u64, level: u64, name: u64, val: u64, len: u64) -> KResult<u64> {
    let (_, s) = socket_of(fd)?;
    if (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    // Every option we know fits in 64 bytes; read no more.
    let v = uaccess::read_vec(val, (len as u32 as usize).min(64))?;
    s.setsockopt(level as u32, name as u32, &v).map(|()| 0)
}

/// (base, len) pairs of an iovec array, with their total (EMSGSIZE for
/// too many, EINVAL for a total beyond ssize_t).
fn iovecs(iov: u64, cnt: u64) -> KResult<(Vec<(u64, usize)>, usize)> {
    if cnt > MAX_IOV {
        return Err(Errno::EMSGSIZE);
    }
    let raw = uaccess::read_vec(iov, cnt as usize * 16)?;
    let mut v = Vec::with_capacity(cnt as usize);
    let mut total: u64 = 0;
    for c in raw.chunks(16) {
        let base = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
        let len = u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
        if len > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        v.push((base, len as usize));
    }
    if total > isize::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    Ok((v, total as usize))
}

/// Walks the iovecs' bytes from `off` bytes in, `len` of them: calls
/// `f(user address, range of the caller's buffer)` for each piece.
fn each_piece(
    vecs: &[(u64, usize)],
    mut off: usize,
    len: usize,
    mut f: impl FnMut(u64, core::ops::Range<usize>) -> KResult<()>,
) -> KResult<()> {
    let mut done = 0;
    for &(base, vlen) in vecs {
        if done == len {
            break;
        }
        if off >= vlen {
            off -= vlen;
            continue;
        }
        let n = (vlen - off).min(len - done);
        f(base + off as u64, done..done + n)?;
        done += n;
        off = 0;
    }
    Ok(())
}

/// Copies `out.len()` bytes starting `off` bytes into the iovecs' data.
fn gather(vecs: &[(u64, usize)], off: usize, out: &mut [u8]) -> KResult<()> {
    each_piece(vecs, off, out.len(), |a, r| {
        uaccess::copy_in(a, &mut out[r])
    })
}

/// Appends `len` bytes starting `off` bytes into the iovecs' data to
/// `out` (no zeroed staging buffer).
fn gather_append(vecs: &[(u64, usize)], off: usize, len: usize, out: &mut Vec<u8>) -> KResult<()> {
    each_piece(vecs, off, len, |a, r| uaccess::append_in(out, a, r.len()))
}

/// Copies `data` into the iovecs from `off` bytes in.
fn scatter(vecs: &[(u64, usize)], off: usize, data: &[u8]) -> KResult<()> {
    each_piece(vecs, off, data.len(), |a, r| uaccess::copy_out(a, &data[r]))
}

/// Sends the iovecs' data: a record in one piece; a stream in chunks
/// until all is sent, MSG_DONTWAIT stops it, or an error after some
/// bytes (their count is returned). EPIPE with nothing sent raises
/// SIGPIPE unless MSG_NOSIGNAL.
fn send_iov(
    s: &dyn Socket,
    vecs: &[(u64, usize)],
    total: usize,
    anc: Option<Ancillary>,
    to: Option<&[u8]>,
    flags: u32,
) -> KResult<u64> {
    if s.sock_type() != sk::SOCK_STREAM {
        // Larger than any socket buffer: no copy of it is made.
        if total > 2 * sk::BUF_MAX {
            return Err(Errno::EMSGSIZE);
        }
        let mut data = Vec::new();
        data.try_reserve_exact(total).map_err(|_| Errno::ENOMEM)?;
        data.resize(total, 0);
        gather(vecs, 0, &mut data)?;
        return sk::send_all(s, &data, anc, to, flags).map(|n| n as u64);
    }
    let mut done = 0;
    // One buffer, no ancillary data, no address: straight from user
    // memory into the socket's buffer where the family can.
    if let ([(base, _)], None, None, true) = (vecs, &anc, to, total > 0) {
        while done < total {
            match s.send_user(base + done as u64, total - done, flags) {
                None => break,
                Some(Ok(n)) => {
                    done += n;
                    if n == 0 {
                        return Ok(done as u64);
                    }
                }
                Some(Err(_)) if done > 0 => return Ok(done as u64),
                Some(Err(e)) => {
                    sk::sigpipe(e, flags);
                    return Err(e);
                }
            }
        }
        if done >= total {
            return Ok(done as u64);
        }
    }
    // Filled straight from user memory: not zeroed first.
    let mut chunk = Vec::new();
    chunk
        .try_reserve_exact(total.clamp(1, SEND_CHUNK))
        .map_err(|_| Errno::ENOMEM)?;
    let mut anc = anc;
    loop {
        let n = (total - done).min(SEND_CHUNK);
        chunk.clear();
        let r = gather_append(vecs, done, n, &mut chunk)
            .and_then(|()| sk::send_all(s, &chunk, anc.take(), to, flags));
        match r {
            Ok(w) => {
                done += w;
                if w < n || done >= total {
                    return Ok(done as u64);
                }
            }
            Err(_) if done > 0 => return Ok(done as u64),
            Err(e) => return Err(e),
        }
    }
}

/// What a receive gathered.
struct Got {
    n: usize,
    full_len: usize,
    from: Option<Vec<u8>>,
    anc: Option<Ancillary>,
}

/// Receives into the iovecs: one record, or for a stream what is there
/// (all `total` bytes with MSG_WAITALL unless the stream ends, a signal
/// comes or ancillary data arrives). The buffers are checked writable
/// first, so a bad one gets EFAULT and the data stays queued.
fn recv_iov(s: &dyn Socket, vecs: &[(u64, usize)], total: usize, flags: u32) -> KResult<Got> {
    // As far as the first receive can fill (Linux writes no further).
    let mut left = RECV_MAX;
    for &(base, len) in vecs {
        let n = len.min(left);
        uaccess::check_writable(base, n)?;
        left -= n;
    }
    let stream = s.sock_type() == sk::SOCK_STREAM;
    // One buffer and no flag but MSG_DONTWAIT: straight from the
    // socket's buffer into user memory where the family can.
    if let (true, [(base, _)]) = (stream && flags & !sk::MSG_DONTWAIT == 0, vecs) {
        if let Some(r) = s.recv_user(*base, total.min(RECV_MAX), flags) {
            let n = r?;
            return Ok(Got {
                n,
                full_len: n,
                from: None,
                anc: None,
            });
        }
    }
    let waitall = stream && flags & sk::MSG_WAITALL != 0 && flags & sk::MSG_PEEK == 0;
    let mut got = Got {
        n: 0,
        full_len: 0,
        from: None,
        anc: None,
    };
    loop {
        let want = (total - got.n).min(RECV_MAX);
        let r = match s.recv(want, flags & !sk::MSG_WAITALL) {
            Ok(r) => r,
            Err(_) if got.n > 0 => break,
            Err(e) => return Err(e),
        };
        scatter(vecs, got.n, &r.data)?;
        let first = got.n == 0;
        got.n += r.data.len();
        if first {
            got.full_len = r.full_len;
            got.from = r.from;
        } else {
            got.full_len = got.n;
        }
        let had_anc = r.anc.is_some();
        if got.anc.is_none() {
            got.anc = r.anc;
        }
        if !waitall || r.data.is_empty() || got.n >= total || had_anc {
            break;
        }
    }
    Ok(got)
}

/// sendto(2) (send(2) is sendto with no address).
pub fn sendto(fd: u64, buf: u64, len: u64, flags: u64, addr: u64, alen: u64) -> KResult<u64> {
    let (f, s) = socket_of(fd)?;
    let to = if addr != 0 && alen != 0 {
        Some(read_addr(addr, alen)?)
    } else {
        None
    };
    let len = (len as usize).min(isize::MAX as usize);
    send_iov(
        &*s,
        &[(buf, len)],
        len,
        None,
        to.as_deref(),
        with_nonblock(&f, flags as u32),
    )
}

/// recvfrom(2) (recv(2) is recvfrom with no address).
pub fn recvfrom(fd: u64, buf: u64, len: u64, flags: u64, addr: u64, lenp: u64) -> KResult<u64> {
    let (f, s) = socket_of(fd)?;
    let flags = with_nonblock(&f, flags as u32);
    let len = (len as usize).min(isize::MAX as usize);
    let got = recv_iov(&*s, &[(buf, len)], len, flags)?;
    drop(got.anc);
    if addr != 0 {
        write_addr(got.from.as_deref().unwrap_or(&[]), addr, lenp)?;
    }
    Ok(
        if flags & sk::MSG_TRUNC != 0 && s.sock_type() != sk::SOCK_STREAM {
            got.full_len
        } else {
            got.n
        } as u64,
    )
}

/// struct msghdr's fields.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(p: u64) -> KResult<MsgHdr> {
    let b = uaccess::read_vec(p, 56)?;
    let q = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    Ok(MsgHdr {
        name: q(0),
        namelen: q(8) as u32,
        iov: q(16),
        iovlen: q(24),
        control: q(32),
        controllen: q(40),
    })
}

/// The ancillary data of a sendmsg control buffer: SCM_RIGHTS
/// descriptors (EBADF for a bad one, EINVAL beyond SCM_MAX_FD) and
/// SCM_CREDENTIALS; malformed headers are EINVAL.
fn parse_control(ptr: u64, len: u64) -> KResult<Option<Ancillary>> {
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_CONTROL {
        return Err(Errno::ENOBUFS);
    }
    let buf = uaccess::read_vec(ptr, len as usize)?;
    let mut files: Vec<Arc<OpenFile>> = Vec::new();
    let mut creds = None;
    let mut off = 0;
    while off + 16 <= buf.len() {
        let clen = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap_or([0; 8])) as usize;
        let level = u32::from_le_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
        let ty = u32::from_le_bytes(buf[off + 12..off + 16].try_into().unwrap_or([0; 4]));
        if clen < 16 || clen > buf.len() - off {
            return Err(Errno::EINVAL);
        }
        let data = &buf[off + 16..off + clen];
        if level == sk::SOL_SOCKET {
            match ty {
                sk::SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if files.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    let t = current().files();
                    let t = t.lock();
                    for c in data.chunks_exact(4) {
                        let fd = i32::from_le_bytes(c.try_into().unwrap_or([0; 4]));
                        files.push(t.get(fd)?);
                    }
                }
                sk::SCM_CREDENTIALS => {
                    let c = Ucred::from_bytes(data).ok_or(Errno::EINVAL)?;
                    // Every process is root: any pid that exists, any ids.
                    if c.pid != current().tgid as i32 && crate::proc::lookup(c.pid as _).is_none() {
                        return Err(Errno::ESRCH);
                    }
                    creds = Some(c);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += (clen + 7) & !7;
    }
    let rights = if files.is_empty() {
        None
    } else {
        Some(InFlight::new(files)?)
    };
    Ok(Some(Ancillary { rights, creds }).filter(|a| !a.is_empty()))
}

/// sendmsg(2).
pub fn sendmsg(fd: u64, msg: u64, flags: u64) -> KResult<u64> {
    let (f, s) = socket_of(fd)?;
    let m = read_msghdr(msg)?;
    let to = if m.name != 0 && m.namelen != 0 {
        Some(read_addr(m.name, m.namelen as u64)?)
    } else {
        None
    };
    let (vecs, total) = iovecs(m.iov, m.iovlen)?;
    let anc = parse_control(m.control, m.controllen)?;
    send_iov(
        &*s,
        &vecs,
        total,
        anc,
        to.as_deref(),
        with_nonblock(&f, flags as u32),
    )
}

/// Writes the control messages of a receive into the user's control
/// buffer as Linux's put_cmsg/scm_detach_fds do: credentials first, then
/// as many descriptors as fit (the rest are closed). Returns the bytes
/// used and whether anything was cut (MSG_CTRUNC).
fn put_control(anc: Ancillary, ptr: u64, room: usize, cloexec: bool) -> KResult<(usize, bool)> {
    let mut used = 0;
    let mut trunc = false;
    let put = |level: u32, ty: u32, data: &[u8], used: &mut usize| -> KResult<bool> {
        let left = room - *used;
        if ptr == 0 || left < 16 {
            return Ok(false);
        }
        let clen = 16 + data.len();
        let mut b = Vec::with_capacity(clen);
        b.extend_from_slice(&(clen as u64).to_le_bytes());
        b.extend_from_slice(&level.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(data);
        let n = clen.min(left);
        uaccess::copy_out(ptr + *used as u64, &b[..n])?;
        *used += ((clen + 7) & !7).min(left);
        Ok(n == clen)
    };
    if let Some(c) = anc.creds {
        trunc |= !put(
            sk::SOL_SOCKET,
            sk::SCM_CREDENTIALS,
            &c.to_bytes(),
            &mut used,
        )?;
    }
    let files = anc.files();
    if !files.is_empty() {
        let left = room.saturating_sub(used);
        let fit = if ptr == 0 || left < 16 {
            0
        } else {
            ((left - 16) / 4).min(files.len())
        };
        let mut fds: Vec<u8> = Vec::new();
        {
            let t = current().files();
            let mut t = t.lock();
            for f in &files[..fit] {
                match t.insert(f.clone(), cloexec) {
                    Ok(fd) => fds.extend_from_slice(&fd.to_le_bytes()),
                    Err(_) => break,
                }
            }
        }
        if fds.len() / 4 < files.len() {
            trunc = true;
        }
        if !fds.is_empty() {
            put(sk::SOL_SOCKET, sk::SCM_RIGHTS, &fds, &mut used)?;
        }
    }
    // The files not installed are closed with the last reference.
    drop(anc);
    Ok((used, trunc))
}

/// recvmsg(2).
pub fn recvmsg(fd: u64, msg: u64, flags: u64) -> KResult<u64> {
    let (f, s) = socket_of(fd)?;
    let m = read_msghdr(msg)?;
    let flags = with_nonblock(&f, flags as u32);
    let (vecs, total) = iovecs(m.iov, m.iovlen)?;
    if (m.namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let got = recv_iov(&*s, &vecs, total, flags)?;
    let mut out_flags = 0u32;
    if got.full_len > got.n && s.sock_type() != sk::SOCK_STREAM {
        out_flags |= sk::MSG_TRUNC;
    }
    let namelen = match (&got.from, m.name) {
        (Some(a), p) if p != 0 => {
            let n = a.len().min(m.namelen as usize);
            uaccess::copy_out(p, &a[..n])?;
            a.len()
        }
        _ => 0,
    };
    let room = (m.controllen as usize).min(MAX_CONTROL as usize * 4);
    let used = match got.anc {
        Some(a) => {
            let (used, trunc) = put_control(a, m.control, room, flags & sk::MSG_CMSG_CLOEXEC != 0)?;
            if trunc {
                out_flags |= sk::MSG_CTRUNC;
            }
            used
        }
        None => 0,
    };
    uaccess::write_u32(msg + 8, namelen as u32)?;
    uaccess::write_u64(msg + 40, used as u64)?;
    uaccess::write_u32(msg + 48, out_flags)?;
    Ok(
        if flags & sk::MSG_TRUNC != 0 && s.sock_type() != sk::SOCK_STREAM {
            got.full_len
        } else {
            got.n
        } as u64,
    )
}

/// read(2) / readv(2) on a socket.
pub fn read_iov(f: &OpenFile, s: &dyn Socket, iov: &[(u64, usize)]) -> KResult<u64> {
    let total = iov.iter().map(|v| v.1).sum::<usize>();
    if total == 0 {
        return Ok(0);
    }
    let got = recv_iov(s, iov, total, with_nonblock(f, 0))?;
    Ok(got.n as u64)
}

/// write(2) / writev(2) on a socket.
pub fn write_iov(f: &OpenFile, s: &dyn Socket, iov: &[(u64, usize)]) -> KResult<u64> {
    let total = iov.iter().map(|v| v.1).sum::<usize>();
    send_iov(s, iov, total, None, None, with_nonblock(f, 0))
}
