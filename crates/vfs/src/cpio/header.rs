//! The 110-byte ASCII header of a newc entry: a 6-byte magic then thirteen
//! 8-digit hexadecimal fields (cpio(5), "New ASCII Format").

use abi::{Errno, KResult};

/// Bytes in a newc header.
pub const HEADER_LEN: usize = 110;

/// A parsed newc header. `check` is the CRC-format checksum, which Linux
/// does not verify and neither do we.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub namesize: u32,
    pub check: u32,
}

impl Header {
    /// Parses the header at the start of `b`: magic `070701` (newc) or
    /// `070702` (newc with checksum). `EINVAL` if short or malformed.
    pub fn parse(b: &[u8]) -> KResult<Header> {
        let b = b.get(..HEADER_LEN).ok_or(Errno::EINVAL)?;
        if &b[..6] != b"070701" && &b[..6] != b"070702" {
            return Err(Errno::EINVAL);
        }
        let mut f = [0u32; 13];
        for (i, v) in f.iter_mut().enumerate() {
            *v = hex8(&b[6 + 8 * i..14 + 8 * i])?;
        }
        let [ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check] =
            f;
        Ok(Header {
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            filesize,
            devmajor,
            devminor,
            rdevmajor,
            rdevminor,
            namesize,
            check,
        })
    }
}

/// Eight hexadecimal digits, either case, as a u32.
fn hex8(s: &[u8]) -> KResult<u32> {
    s.iter().try_fold(0u32, |acc, &c| {
        let d = (c as char).to_digit(16).ok_or(Errno::EINVAL)?;
        Ok((acc << 4) | d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_rejects_junk() {
        let mut h = b"070701".to_vec();
        for i in 1..=13u32 {
            h.extend_from_slice(alloc::format!("{:08X}", i * 0x11).as_bytes());
        }
        let p = Header::parse(&h).unwrap();
        assert_eq!(
            (p.ino, p.mode, p.namesize, p.check),
            (0x11, 0x22, 0xcc, 0xdd)
        );
        h[10] = b'g';
        assert_eq!(Header::parse(&h), Err(Errno::EINVAL));
        assert_eq!(Header::parse(&h[..50]), Err(Errno::EINVAL));
        assert_eq!(Header::parse(&[b'0'; 110]), Err(Errno::EINVAL));
    }
}
