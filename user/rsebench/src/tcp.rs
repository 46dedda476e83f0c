//! Loopback TCP throughput: a child connects to 127.0.0.1 and writes
//! 64 MiB in 128 KiB writes, the parent accepts and reads it in 128 KiB
//! reads. Time from accept to EOF.

use crate::{clock, sys, Outcome, Size};

const CHUNK: usize = 128 << 10;

/// Brings `lo` up. Linux booted with `rdinit=` starts with it down (and
/// gives it 127.0.0.1 once it is up); RSE OS has it up from the start
/// and refuses to set flags, which is fine.
fn lo_up() {
    // SAFETY: a datagram socket and one struct ifreq on the stack.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0
            && req.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short == 0
        {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        sys::close(fd);
    }
}

fn sockaddr(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    }
}

const SIN_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

pub fn bulk(size: Size) -> Outcome {
    lo_up();
    let chunks = size.n(512); // 64 MiB at full size
                              // SAFETY: plain socket calls on a sockaddr_in we own.
    let (l, port) = unsafe {
        let l = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if l < 0 {
            return Outcome::Unsupported(format!("socket errno {}", sys::errno()));
        }
        let mut a = sockaddr(0);
        if libc::bind(l, (&a as *const libc::sockaddr_in).cast(), SIN_LEN) != 0 {
            return Outcome::Unsupported(format!("bind 127.0.0.1 errno {}", sys::errno()));
        }
        let mut len = SIN_LEN;
        if libc::listen(l, 1) != 0
            || libc::getsockname(l, (&mut a as *mut libc::sockaddr_in).cast(), &mut len) != 0
        {
            sys::die("listen/getsockname");
        }
        (l, u16::from_be(a.sin_port))
    };
    let child = sys::fork(|| {
        sys::close(l);
        let a = sockaddr(port);
        // SAFETY: a valid sockaddr_in.
        let c = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        if c < 0
            // SAFETY: as above.
            || unsafe { libc::connect(c, (&a as *const libc::sockaddr_in).cast(), SIN_LEN) } != 0
        {
            sys::die("connect 127.0.0.1");
        }
        let buf = vec![0x5au8; CHUNK];
        for _ in 0..chunks {
            sys::write_all(c, &buf);
        }
        sys::close(c);
        0
    });
    // SAFETY: null address out-parameters are allowed.
    let a = unsafe { libc::accept(l, std::ptr::null_mut(), std::ptr::null_mut()) };
    if a < 0 {
        sys::die("accept");
    }
    let t = clock::now_ns();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(a, buf.as_mut_ptr().cast(), CHUNK) };
        if n <= 0 {
            break;
        }
        total += n as u64;
    }
    let secs = (clock::now_ns() - t) as f64 / 1e9;
    sys::wait(child);
    sys::close(a);
    sys::close(l);
    if total != chunks * CHUNK as u64 {
        sys::die("tcp loopback lost data");
    }
    Outcome::MBps(total as f64 / 1e6 / secs)
}
