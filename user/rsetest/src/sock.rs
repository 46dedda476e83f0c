//! Socket helpers for the socket tests: raw calls returning errno, and
//! sockaddr_un building.

use crate::util::{errname, errno};

/// A syscall-style result: Ok(value) or Err(errno).
pub type R = Result<isize, i32>;

pub fn r(v: isize) -> R {
    if v < 0 {
        Err(errno())
    } else {
        Ok(v)
    }
}

/// errname, with the networking errors.
pub fn errname_net(e: i32) -> String {
    let n = match e {
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ENOTCONN => "ENOTCONN",
        libc::EISCONN => "EISCONN",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECONNRESET => "ECONNRESET",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::ELOOP => "ELOOP",
        libc::EPERM => "EPERM",
        _ => return errname(e),
    };
    n.to_string()
}

pub fn socket(domain: i32, ty: i32) -> R {
    // SAFETY: plain syscall.
    r(unsafe { libc::socket(domain, ty, 0) } as isize)
}

pub fn pair(ty: i32) -> Result<(i32, i32), String> {
    let mut sv = [0; 2];
    // SAFETY: sv is a valid out-array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) } != 0
    {
        return Err(format!("socketpair: {}", errname_net(errno())));
    }
    Ok((sv[0], sv[1]))
}

/// A sockaddr_un for `name` (a leading NUL makes it abstract) and its
/// length: the family plus the path and its NUL, or the abstract bytes.
pub fn addr(name: &[u8]) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all zeroes is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    let len = if name.first() == Some(&0) {
        2 + name.len()
    } else {
        2 + name.len() + 1
    };
    (a, len as libc::socklen_t)
}

pub fn bind(fd: i32, name: &[u8]) -> R {
    let (a, len) = addr(name);
    // SAFETY: a is a valid sockaddr_un of at least len bytes.
    r(unsafe { libc::bind(fd, (&a as *const libc::sockaddr_un).cast(), len) } as isize)
}

pub fn connect(fd: i32, name: &[u8]) -> R {
    let (a, len) = addr(name);
    // SAFETY: as bind.
    r(unsafe { libc::connect(fd, (&a as *const libc::sockaddr_un).cast(), len) } as isize)
}

pub fn listen(fd: i32, backlog: i32) -> R {
    // SAFETY: plain syscall.
    r(unsafe { libc::listen(fd, backlog) } as isize)
}

pub fn accept(fd: i32, flags: i32) -> R {
    // SAFETY: null address pointers are allowed.
    r(unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) } as isize)
}

pub fn send(fd: i32, data: &[u8], flags: i32) -> R {
    // SAFETY: data is valid for its length.
    r(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) })
}

pub fn recv(fd: i32, buf: &mut [u8], flags: i32) -> R {
    // SAFETY: buf is valid for its length.
    r(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// Receives into a fresh buffer of `max` bytes: the bytes, or the errno.
pub fn recv_vec(fd: i32, max: usize, flags: i32) -> Result<Vec<u8>, i32> {
    let mut b = vec![0u8; max];
    let n = recv(fd, &mut b, flags)?;
    b.truncate(n as usize);
    Ok(b)
}

/// getsockname / getpeername as (bytes of the address, its length).
pub fn name(fd: i32, peer: bool) -> Result<Vec<u8>, i32> {
    // SAFETY: sockaddr_un is plain data.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let p = (&mut a as *mut libc::sockaddr_un).cast();
    // SAFETY: a and len are valid out-parameters.
    let rv = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    r(rv as isize)?;
    // SAFETY: a is plain bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts((&a as *const libc::sockaddr_un).cast::<u8>(), len as usize)
    };
    Ok(bytes.to_vec())
}

pub fn getsockopt_int(fd: i32, level: i32, opt: i32) -> R {
    let mut v: libc::c_int = 0;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: v and len are valid out-parameters.
    r(unsafe { libc::getsockopt(fd, level, opt, (&mut v as *mut i32).cast(), &mut len) } as isize)?;
    Ok(v as isize)
}

pub fn setsockopt_int(fd: i32, level: i32, opt: i32, v: i32) -> R {
    // SAFETY: v is a valid int.
    r(unsafe { libc::setsockopt(fd, level, opt, (&v as *const i32).cast(), 4) } as isize)
}

/// A unique temporary path for a socket (removed first).
pub fn tmp_path(tag: &str) -> Vec<u8> {
    let p = format!("/tmp/rsetest-{tag}-{}.sock", std::process::id());
    let _ = std::fs::remove_file(&p);
    p.into_bytes()
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblock(fd: i32) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// poll(2) events of `fd` now (timeout 0).
pub fn revents(fd: i32, events: i16) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents
}
