//! Device numbers: the 32-bit `dev_t` encoding Linux uses in `st_rdev` and
//! `st_dev` (12-bit major, 20-bit minor; see makedev(3) and the kernel's
//! `new_encode_dev`), so numbers shown by `ls -l` match Linux.

/// Packs `major`/`minor` the way glibc's `makedev` does for values that fit
/// 32 bits: minor's low byte, then major, then minor's high bits.
pub fn makedev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The major number of an encoded device.
pub fn major(dev: u32) -> u32 {
    (dev & 0xfff00) >> 8
}

/// The minor number of an encoded device.
pub fn minor(dev: u32) -> u32 {
    (dev & 0xff) | ((dev >> 12) & 0xfff00)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_devices() {
        // /dev/null is 1:3 and /dev/console 5:1 on Linux.
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(5, 1), 0x501);
        let d = makedev(0xabc, 0xfffff);
        assert_eq!((major(d), minor(d)), (0xabc, 0xfffff));
    }
}
