//! 100 MiB through a pipe from a child to its parent: every byte at the
//! right offset, the exact length, then EOF; the child exits 0.

use crate::util::{check, close, errname, errno, fork, pipe, wait_ok};

const TOTAL: u64 = 100 << 20;

/// The byte at offset `i` of the stream.
#[inline]
fn byte(i: u64) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ (i >> 20) as u8
}

/// FNV-1a over the stream, to report alongside the per-byte check.
fn fnv(h: u64, b: &[u8]) -> u64 {
    b.iter()
        .fold(h, |h, &x| (h ^ x as u64).wrapping_mul(0x100_0000_01b3))
}

pub fn run(_: &[String]) -> Result<(), String> {
    let (r, w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        close(r);
        // Chunk sizes vary (small, odd, larger than the pipe buffer).
        let sizes = [65536usize, 1, 4096, 4095, 100_000, 512, 131_072, 7];
        let mut buf = vec![0u8; 131_072];
        let mut off = 0u64;
        let mut k = 0;
        while off < TOTAL {
            let n = sizes[k % sizes.len()].min((TOTAL - off) as usize);
            k += 1;
            for (j, b) in buf[..n].iter_mut().enumerate() {
                *b = byte(off + j as u64);
            }
            let mut done = 0;
            while done < n {
                // SAFETY: buf[done..n] is valid.
                let m = unsafe { libc::write(w, buf[done..].as_ptr().cast(), n - done) };
                if m < 0 {
                    if errno() == libc::EINTR {
                        continue;
                    }
                    crate::say!("child: write failed at {}: {}", off, errname(errno()));
                    crate::util::child_exit(1);
                }
                done += m as usize;
            }
            off += n as u64;
        }
        crate::util::child_exit(0);
    }
    close(w);
    let want = {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut chunk = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < TOTAL {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = byte(off + j as u64);
            }
            h = fnv(h, &chunk);
            off += chunk.len() as u64;
        }
        h
    };
    let sizes = [4096usize, 1, 65536, 3, 131_072, 1000];
    let mut buf = vec![0u8; 131_072];
    let mut off = 0u64;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut first_bad: Option<u64> = None;
    let mut k = 0;
    loop {
        let n = sizes[k % sizes.len()];
        k += 1;
        // SAFETY: buf[..n] is valid.
        let m = unsafe { libc::read(r, buf.as_mut_ptr().cast(), n) };
        if m < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(format!("read failed at offset {off}: {}", errname(errno())));
        }
        if m == 0 {
            break;
        }
        let got = &buf[..m as usize];
        if first_bad.is_none() {
            if let Some(j) = got
                .iter()
                .enumerate()
                .position(|(j, &b)| b != byte(off + j as u64))
            {
                first_bad = Some(off + j as u64);
            }
        }
        h = fnv(h, got);
        off += m as u64;
    }
    close(r);
    check(
        off == TOTAL,
        format_args!("read {off} bytes before EOF, expected {TOTAL}"),
    )?;
    check(
        first_bad.is_none(),
        format_args!("every byte matches the pattern (first mismatch at {first_bad:?})"),
    )?;
    check(
        h == want,
        format_args!("FNV-1a checksum {h:#018x} equals the sender's {want:#018x}"),
    )?;
    wait_ok(pid, "writer exited 0")
}
