//! PipeBuffer against pipe(7): capacity, partial writes, PIPE_BUF
//! atomicity, EOF, EPIPE, poll readiness; and a FIFO-order model check.

use std::collections::VecDeque;

use abi::Errno;
use proptest::prelude::*;
use vfs::pipe::{PipeBuffer, PIPE_BUF, PIPE_CAPACITY};

const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const POLLERR: u16 = 8;
const POLLHUP: u16 = 16;

fn open_pipe() -> PipeBuffer {
    let mut p = PipeBuffer::new();
    p.add_reader();
    p.add_writer();
    p
}

#[test]
fn capacity_and_partial_writes() {
    let mut p = open_pipe();
    assert_eq!(p.capacity(), 65536);
    assert_eq!(p.write(&vec![1; 70000]), PIPE_CAPACITY);
    assert_eq!((p.len(), p.space()), (PIPE_CAPACITY, 0));
    assert_eq!(p.write(b"x"), 0);
    let mut buf = vec![0; 100];
    assert_eq!(p.read(&mut buf), 100);
    assert_eq!(p.space(), 100);
}

#[test]
fn atomic_writes_go_whole_or_not_at_all() {
    let mut p = open_pipe();
    p.write(&vec![0; PIPE_CAPACITY - 100]);
    assert!(!p.can_write_atomically(101));
    assert!(p.can_write_atomically(100));
    assert_eq!(
        p.try_write(&[1; 200]),
        Err(Errno::EAGAIN),
        "≤ PIPE_BUF: no partial write"
    );
    assert!(
        p.can_write_atomically(PIPE_BUF + 1),
        "large writes may be split"
    );
    assert_eq!(p.try_write(&[1; PIPE_BUF + 1]), Ok(100));
    assert_eq!(p.try_write(&[1; PIPE_BUF + 1]), Err(Errno::EAGAIN));
}

#[test]
fn eof_and_epipe() {
    let mut p = open_pipe();
    let mut buf = [0; 8];
    assert_eq!(p.try_read(&mut buf), Err(Errno::EAGAIN));
    p.try_write(b"abc").unwrap();
    assert_eq!(p.drop_writer(), 0);
    assert_eq!(p.try_read(&mut buf), Ok(3), "data first");
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(p.try_read(&mut buf), Ok(0), "then end of file");
    p.add_writer();
    p.drop_reader();
    assert_eq!(p.try_write(b"x"), Err(Errno::EPIPE));
    assert_eq!(p.try_write(b""), Err(Errno::EPIPE));
    assert_eq!((p.readers(), p.writers()), (0, 1));
}

#[test]
fn poll_readiness() {
    let mut p = open_pipe();
    assert_eq!(p.poll(true) & (POLLIN | POLLHUP), 0);
    assert_ne!(p.poll(false) & POLLOUT, 0);
    p.write(b"x");
    assert_ne!(p.poll(true) & POLLIN, 0);
    p.write(&vec![0; PIPE_CAPACITY - PIPE_BUF]);
    assert_eq!(
        p.poll(false) & POLLOUT,
        0,
        "less than PIPE_BUF free is not writable"
    );
    p.drop_writer();
    assert_ne!(p.poll(true) & POLLHUP, 0);
    p.drop_reader();
    assert_ne!(p.poll(false) & POLLERR, 0);
}

#[test]
fn set_capacity() {
    let mut p = open_pipe();
    p.write(&[0; 10000]);
    assert_eq!(p.set_capacity(8192), Err(Errno::EBUSY));
    p.set_capacity(1 << 20).unwrap();
    assert_eq!(p.write(&vec![0; 1 << 20]), (1 << 20) - 10000);
    assert_eq!(PipeBuffer::with_capacity(1).capacity(), PIPE_BUF);
}

proptest! {
    #[test]
    fn behaves_like_a_bounded_fifo(ops in prop::collection::vec((any::<bool>(), 0usize..9000, any::<u8>()), 1..200)) {
        let mut p = open_pipe();
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut counter = 0u8;
        for (is_write, n, _) in ops {
            if is_write {
                let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                let before = p.space();
                let r = p.try_write(&data);
                match r {
                    Ok(w) => {
                        prop_assert!(w <= n && (w > 0 || n == 0));
                        if n <= PIPE_BUF { prop_assert_eq!(w, n); }
                        prop_assert_eq!(w, n.min(before));
                        model.extend(&data[..w]);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, Errno::EAGAIN);
                        prop_assert!(n > 0 && !p.can_write_atomically(n));
                    }
                }
            } else {
                let mut buf = vec![0; n];
                match p.try_read(&mut buf) {
                    Ok(r) => {
                        let want: Vec<u8> = model.drain(..r).collect();
                        prop_assert_eq!(&buf[..r], &want[..]);
                        prop_assert!(r == n.min(r + model.len()));
                    }
                    Err(e) => {
                        prop_assert_eq!(e, Errno::EAGAIN);
                        prop_assert!(model.is_empty());
                    }
                }
            }
            prop_assert_eq!(p.len(), model.len());
            prop_assert!(p.len() <= p.capacity());
        }
    }
}
