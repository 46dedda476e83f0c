//! `struct linux_dirent64` records for getdents64(2): `d_ino` u64, `d_off`
//! i64, `d_reclen` u16, `d_type` u8, then the NUL-terminated name, each
//! record padded to 8 bytes.

use core::mem::offset_of;

use abi::{Errno, KResult};

use super::put;
use crate::lx::linux_dirent64 as D;
use crate::tmpfs::{Ino, Tmpfs};

const NAME_OFF: usize = offset_of!(D, d_name);

/// The record length of an entry named `name_len` bytes.
pub fn dirent64_reclen(name_len: usize) -> usize {
    (NAME_OFF + name_len + 1).next_multiple_of(8)
}

/// Packs records into a user-sized buffer until one does not fit.
pub struct DirentWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> DirentWriter<'a> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> DirentWriter<'a> {
        DirentWriter { buf, len: 0 }
    }

    /// Appends one record. `Ok(false)` when it does not fit: the caller
    /// stops and returns what is written, leaving its cookie before this
    /// entry so the next call starts with it. If not even the first record
    /// fits, getdents64 fails with `EINVAL` ("Result buffer is too small").
    pub fn push(&mut self, ino: Ino, next_off: u64, d_type: u8, name: &[u8]) -> KResult<bool> {
        let reclen = dirent64_reclen(name.len());
        if self.buf.len() - self.len < reclen {
            return if self.len == 0 {
                Err(Errno::EINVAL)
            } else {
                Ok(false)
            };
        }
        let rec = &mut self.buf[self.len..self.len + reclen];
        rec.fill(0);
        put(rec, offset_of!(D, d_ino), &ino.to_le_bytes());
        put(rec, offset_of!(D, d_off), &next_off.to_le_bytes());
        put(rec, offset_of!(D, d_reclen), &(reclen as u16).to_le_bytes());
        put(rec, offset_of!(D, d_type), &[d_type]);
        put(rec, NAME_OFF, name);
        self.len += reclen;
        Ok(true)
    }

    /// Bytes written so far (getdents64's return value).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One getdents64(2) call on tmpfs directory `dir` at file offset `cookie`:
/// fills `buf` and returns the bytes written (0 at the end) and the new
/// file offset to store.
pub fn fill_getdents64(
    fs: &Tmpfs,
    dir: Ino,
    mut cookie: u64,
    buf: &mut [u8],
) -> KResult<(usize, u64)> {
    let mut w = DirentWriter::new(buf);
    while let Some((e, next)) = fs.readdir(dir, cookie)? {
        if !w.push(e.ino, next, e.kind.dirent_type(), e.name)? {
            break;
        }
        cookie = next;
    }
    Ok((w.len(), cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout() {
        assert_eq!(NAME_OFF, 19);
        assert_eq!(dirent64_reclen(1), 24);
        assert_eq!(dirent64_reclen(4), 24);
        assert_eq!(dirent64_reclen(5), 32);
        let mut buf = [0xffu8; 48];
        let mut w = DirentWriter::new(&mut buf);
        assert_eq!(w.push(7, 3, 8, b"abc"), Ok(true));
        assert_eq!(w.push(8, 4, 4, b"defghijklmnop"), Ok(false));
        assert_eq!(w.len(), 24);
        assert_eq!(u64::from_le_bytes(buf[0..8].try_into().unwrap()), 7);
        assert_eq!(i64::from_le_bytes(buf[8..16].try_into().unwrap()), 3);
        assert_eq!(u16::from_le_bytes([buf[16], buf[17]]), 24);
        assert_eq!(buf[18], 8);
        assert_eq!(&buf[19..24], b"abc\0\0");
        assert_eq!(buf[24], 0xff, "nothing written past the record");
    }

    #[test]
    fn first_entry_too_big_is_einval() {
        let mut buf = [0u8; 23];
        let mut w = DirentWriter::new(&mut buf);
        assert_eq!(w.push(1, 1, 4, b"."), Err(Errno::EINVAL));
    }
}
