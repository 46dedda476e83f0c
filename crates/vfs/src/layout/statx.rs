//! `struct statx` as statx(2) fills it (256 bytes).

use core::mem::{offset_of, size_of};

use abi::{Errno, KResult};

use super::put;
use crate::devnum::{major, minor};
use crate::lx;
use crate::lx::statx as X;
use crate::{Stat, Timespec};

/// `sizeof(struct statx)`.
pub const STATX_SIZE: usize = size_of::<X>();
const _: () = assert!(STATX_SIZE == 256);

/// Encodes `st` as a `struct statx` answering a request for `mask`.
///
/// Like Linux for tmpfs, we fill every basic field whatever was asked and
/// say so in `stx_mask` (statx(2): the kernel may return more than
/// requested); birth time and the other extras are not known and stay
/// clear. A mask with `STATX__RESERVED` set is `EINVAL`.
pub fn encode_statx(st: &Stat, mask: u32) -> KResult<[u8; STATX_SIZE]> {
    if mask & lx::STATX__RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; STATX_SIZE];
    put(
        &mut b,
        offset_of!(X, stx_mask),
        &lx::STATX_BASIC_STATS.to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_blksize),
        &(st.blksize as u32).to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_nlink),
        &(st.nlink as u32).to_le_bytes(),
    );
    put(&mut b, offset_of!(X, stx_uid), &st.uid.to_le_bytes());
    put(&mut b, offset_of!(X, stx_gid), &st.gid.to_le_bytes());
    put(
        &mut b,
        offset_of!(X, stx_mode),
        &(st.mode as u16).to_le_bytes(),
    );
    put(&mut b, offset_of!(X, stx_ino), &st.ino.to_le_bytes());
    put(
        &mut b,
        offset_of!(X, stx_size),
        &(st.size as u64).to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_blocks),
        &(st.blocks as u64).to_le_bytes(),
    );
    put_time(&mut b, offset_of!(X, stx_atime), st.atime);
    put_time(&mut b, offset_of!(X, stx_ctime), st.ctime);
    put_time(&mut b, offset_of!(X, stx_mtime), st.mtime);
    let rdev = st.rdev as u32;
    let dev = st.dev as u32;
    put(
        &mut b,
        offset_of!(X, stx_rdev_major),
        &major(rdev).to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_rdev_minor),
        &minor(rdev).to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_dev_major),
        &major(dev).to_le_bytes(),
    );
    put(
        &mut b,
        offset_of!(X, stx_dev_minor),
        &minor(dev).to_le_bytes(),
    );
    Ok(b)
}

fn put_time(b: &mut [u8], off: usize, t: Timespec) {
    put(
        b,
        off + offset_of!(lx::statx_timestamp, tv_sec),
        &t.sec.to_le_bytes(),
    );
    put(
        b,
        off + offset_of!(lx::statx_timestamp, tv_nsec),
        &t.nsec.to_le_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnum::makedev;

    #[test]
    fn offsets_match_the_uapi_header() {
        let st = Stat {
            dev: u64::from(makedev(0, 5)),
            ino: 77,
            nlink: 2,
            mode: 0o020620,
            uid: 7,
            gid: 8,
            rdev: u64::from(makedev(4, 1)),
            size: 99,
            blksize: 4096,
            blocks: 8,
            atime: Timespec { sec: 10, nsec: 11 },
            mtime: Timespec { sec: 12, nsec: 13 },
            ctime: Timespec { sec: 14, nsec: 15 },
        };
        let b = encode_statx(&st, lx::STATX_BASIC_STATS).unwrap();
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        // Offsets from include/uapi/linux/stat.h.
        assert_eq!(u32_at(0), 0x7ff);
        assert_eq!(u32_at(4), 4096);
        assert_eq!(u32_at(16), 2);
        assert_eq!((u32_at(20), u32_at(24)), (7, 8));
        assert_eq!(u16::from_le_bytes([b[28], b[29]]), 0o020620);
        assert_eq!(u64_at(32), 77);
        assert_eq!(u64_at(40), 99);
        assert_eq!(u64_at(48), 8);
        assert_eq!((u64_at(64), u32_at(72)), (10, 11));
        assert_eq!(u64_at(80), 0, "no birth time");
        assert_eq!((u64_at(96), u32_at(104)), (14, 15));
        assert_eq!((u64_at(112), u32_at(120)), (12, 13));
        assert_eq!((u32_at(128), u32_at(132)), (4, 1));
        assert_eq!((u32_at(136), u32_at(140)), (0, 5));
        assert_eq!(encode_statx(&st, lx::STATX__RESERVED), Err(Errno::EINVAL));
    }
}
