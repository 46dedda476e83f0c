//! Pipe throughput: a child writes 64 KiB chunks, the parent reads them.

use crate::{clock, sys, Outcome, Size};

pub fn throughput(size: Size) -> Outcome {
    const CHUNK: usize = 64 << 10;
    let chunks = size.n(1024); // 64 MiB at full size
    let (r, w) = sys::pipe();
    let t = clock::now_ns();
    let child = sys::fork(|| {
        sys::close(r);
        let buf = vec![0x5au8; CHUNK];
        for _ in 0..chunks {
            sys::write_all(w, &buf);
        }
        0
    });
    sys::close(w);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(r, buf.as_mut_ptr().cast(), CHUNK) };
        if n <= 0 {
            break;
        }
        total += n as u64;
    }
    sys::wait(child);
    let secs = (clock::now_ns() - t) as f64 / 1e9;
    sys::close(r);
    if total != chunks * CHUNK as u64 {
        sys::die("pipe lost data");
    }
    Outcome::MBps(total as f64 / 1e6 / secs)
}
